"""``layer-geometry``: effective dimension and base-model similarity of every layer's hidden states.

The follow-up work reads hyperfitting as a late-stage geometric expansion: the change concentrates in the
last blocks, whose feature dimension rises. Per layer (embedding output + every block output) this metric
measures, on the human texts, the participation ratio of the evaluated model's hidden states and their
linear CKA with the base model's; its value is one of them at the last layer (``statistic``), and it writes
the whole per-layer table (CSV) and a plot (PNG) into the results folder (docs/metrics-probes.md).
torch, numpy and matplotlib are imported inside the functions.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

from harness.api import Metric, Param, atomic_write_bytes, atomic_write_text, padded_forward

from ._featurizers import model_handle, scratch
from ._teacher_forced import reference_ids
from .rank_probes import _digest, _load_base, _pad, base_param

log = logging.getLogger("harness")

STATISTICS = ("pr-ratio-last", "pr-last", "cka-last")
#: bootstrap keys added to resampled records (harness.stats: DRAW_KEY); a draw's records share one prompt
DRAW_KEY = "_draw"
COLUMNS = ("layer", "name", "pr_model", "pr_base", "pr_ratio", "cka")


# --------------------------------------------------------------------------- the definitions, as plain functions


def _centered(x: Any) -> Any:
    import torch

    x = torch.as_tensor(x).double()
    return x - x.mean(0, keepdim=True)


def _gram_norm(x: Any) -> Any:
    """‖XᵀX‖_F of a centered [n, d] matrix, by whichever of XᵀX (d × d) and XXᵀ (n × n) is smaller."""
    g = x.T @ x if x.shape[1] <= x.shape[0] else x @ x.T
    return g.norm()


def participation_ratio(x: Any) -> float:
    """PR = (Σλ)² / Σλ² of the covariance of the rows of ``x`` [n, d] (centered), = ‖X‖_F⁴ / ‖XᵀX‖_F²."""
    xc = _centered(x)
    if xc.shape[0] < 2:
        raise ValueError("participation ratio needs at least 2 tokens")
    total = (xc * xc).sum()
    if float(total) == 0.0:
        raise ValueError("participation ratio of identical hidden states is undefined (zero covariance)")
    return float(total * total / _gram_norm(xc) ** 2)


def linear_cka(x: Any, y: Any) -> float:
    """CKA(X, Y) = ‖YᵀX‖_F² / (‖XᵀX‖_F ‖YᵀY‖_F) on centered X [n, d1], Y [n, d2] (the same n tokens)."""
    xc, yc = _centered(x), _centered(y)
    if xc.shape[0] != yc.shape[0]:
        raise ValueError(f"linear CKA needs the same tokens on both sides ({xc.shape[0]} vs {yc.shape[0]})")
    if xc.shape[0] < 2:
        raise ValueError("linear CKA needs at least 2 tokens")
    if max(xc.shape[1], yc.shape[1]) <= xc.shape[0]:
        cross = (yc.T @ xc).norm() ** 2
    else:  # ‖YᵀX‖_F² = ⟨XXᵀ, YYᵀ⟩_F, cheaper when the features outnumber the tokens
        cross = ((xc @ xc.T) * (yc @ yc.T)).sum()
    denom = _gram_norm(xc) * _gram_norm(yc)
    if float(denom) == 0.0:
        raise ValueError("linear CKA of identical hidden states is undefined (zero covariance)")
    return float(cross / denom)


def chosen_positions(lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Per sequence, the positions whose hidden states are used: 1 … len − 1, or where their total exceeds
    ``max_tokens``, q = max(1, ⌊max_tokens / #sequences⌋) evenly spaced ones, 1 + ⌊i·m / q⌋ (i < q, m = len − 1)."""
    counts = [max(0, n - 1) for n in lengths]
    if sum(counts) <= max_tokens:
        return [list(range(1, m + 1)) for m in counts]
    q = max(1, max_tokens // max(1, sum(1 for m in counts if m)))
    return [list(range(1, m + 1)) if m <= q else [1 + (i * m) // q for i in range(q)] for m in counts]


# --------------------------------------------------------------------------- the metric


class LayerGeometry(Metric):
    """Participation ratio per layer and linear CKA with the base model; value at the last layer."""

    name = "layer-geometry"
    description = (
        "Per layer, the participation ratio (effective dimension) of the evaluated model's hidden states on the human "
        "texts and their linear CKA with the base model's; the value is PR ratio, PR or CKA at the last layer "
        "(`statistic`), and a per-layer CSV and PNG go to the results folder."
    )
    level = "corpus"
    higher_is_better = None
    requires = ("context_ids", "reference_text")
    modalities = ("text",)
    version = "1"
    #: every resample recomputes the last layer's statistics on up to max_tokens tokens
    max_bootstrap = 50
    params = (
        base_param(),
        Param("statistic", str, default="pr-ratio-last", choices=STATISTICS,
              help="pr-ratio-last: PR(evaluated) / PR(base) at the last layer; pr-last: PR(evaluated) there; "
                   "cka-last: linear CKA of the two models there"),
        Param("max_tokens", int, default=2048, min=2, help="cap on the tokens (hidden states per layer) used"),
        Param("batch_size", int, default=8, min=1, help="sequences per teacher-forced forward pass"),
    )  # fmt: skip
    definition = (
        "Tokens: for each distinct prompt among the records, the sequence context_ids + reference ids (the drawn human "
        "continuation) is run teacher-forced, right-padded, with output_hidden_states, through the evaluated model F "
        "and the model of recipe `base` (B). Used positions: 1 … len − 1 of every sequence (position 0 is left out: "
        "its state is an attention-sink outlier in most LMs); if they number more than max_tokens, each sequence keeps "
        "q = max(1, ⌊max_tokens / #sequences⌋) of its m = len − 1 positions, 1 + ⌊i·m / q⌋ for i < q. Layers: entry ℓ "
        "of hidden_states, ℓ = 0 the embedding output and ℓ = 1 … L the outputs of the L blocks (for Llama-type models "
        "transformers gives the last one after the final norm). Per layer, X (F) and Y (B) are the [n, d] float64 "
        "states of the same n tokens, centered per feature: PR(X) = (Σλ)² / Σλ² over the eigenvalues λ of X's "
        "covariance = ‖X‖_F⁴ / ‖XᵀX‖_F² (between 1 and min(n − 1, d)), and CKA(X, Y) = ‖YᵀX‖_F² / (‖XᵀX‖_F ‖YᵀY‖_F) "
        "(in [0, 1], 1 for Y = X·R with R orthogonal or a scalar). Value, at the last layer L: pr-ratio-last = "
        "PR(X_L) / PR(Y_L); pr-last = PR(X_L); cka-last = CKA(X_L, Y_L). Interval: percentile bootstrap over prompts "
        "(at most 50 resamples), each resample pooling its drawn prompts' tokens. When the run has a results folder, "
        "the per-layer table (layer, name, pr_model, pr_base, pr_ratio, cka) is written as "
        "probes/layer-geometry/<fit>/<dataset>.vs-<base>.csv with a PNG plot beside it."
    )

    def recipe_dependencies(self) -> tuple[str, ...]:
        return (str(self.option("base")),)

    # ----------------------------------------------------------------- hidden states

    def _sequences(self, samples: list[dict[str, Any]], codec: Any) -> list[str]:
        """The digest of each record's context + reference sequence (records of one prompt share it)."""
        return [_digest([int(t) for t in r.get("context_ids") or []] + reference_ids(r, codec)) for r in samples]

    def geometry(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        """Stored per-prompt hidden states of both models (every layer) for these records, computed once."""
        codec = self.context.codec or model_handle(self.context, f"metric {self.name}").codec
        seqs: dict[str, list[int]] = {}
        for r in samples:
            ids = [int(t) for t in r.get("context_ids") or []] + reference_ids(r, codec)
            seqs.setdefault(_digest(ids), ids)
        base, cap = str(self.option("base")), int(self.option("max_tokens"))
        memo = scratch(self.context, "layer-geometry")
        key = _digest(base, cap, list(seqs))
        if key not in memo:
            keys = list(seqs)
            positions = chosen_positions([len(seqs[k]) for k in keys], cap)
            wanted = {k: p for k, p in zip(keys, positions) if p}
            if sum(len(p) for p in wanted.values()) < 2:
                raise ValueError(f"{self.name}: the texts give fewer than 2 tokens to measure hidden states on")
            own = self._states(model_handle(self.context, f"metric {self.name}"), seqs, wanted)
            other = self._states(_load_base(self, base), seqs, wanted)
            entry: dict[str, Any] = {"model": own, "base": other, "order": [k for k in keys if k in wanted]}
            entry["table"] = self._table(entry)
            memo[key] = entry
            self._write_files(samples, entry["table"])
        return memo[key]

    def _states(self, handle: Any, seqs: dict[str, list[int]], wanted: dict[str, list[int]]) -> dict[str, Any]:
        """Per sequence digest, float32 CPU hidden states [layers, positions, d] at its chosen positions."""
        import torch

        order = sorted(wanted, key=lambda k: len(seqs[k]))
        batch_size = int(self.option("batch_size"))
        out: dict[str, Any] = {}
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            forward = padded_forward(handle.module, [seqs[k] for k in chunk], _pad(handle.codec), side="right", hidden_states=True)
            if not forward.hidden_states:
                raise ValueError(f"{self.name}: the model returned no hidden states (output_hidden_states)")
            layers = torch.stack([h.float() for h in forward.hidden_states])  # [L+1, B, W, d]
            for row, k in enumerate(chunk):
                index = torch.tensor(wanted[k], dtype=torch.long, device=layers.device)
                out[k] = layers[:, row].index_select(1, index).cpu()
        return out

    def _stacked(self, entry: dict[str, Any], side: str, units: list[str], layer: int) -> Any:
        import torch

        return torch.cat([entry[side][k][layer] for k in units if k in entry[side]], dim=0)

    def _table(self, entry: dict[str, Any]) -> list[dict[str, Any]]:
        units = entry["order"]
        n_layers = next(iter(entry["model"].values())).shape[0]
        if next(iter(entry["base"].values())).shape[0] != n_layers:
            raise ValueError(f"{self.name}: the evaluated and the base model have different numbers of layers")
        rows = []
        for layer in range(n_layers):
            x, y = self._stacked(entry, "model", units, layer), self._stacked(entry, "base", units, layer)
            pr_x, pr_y = participation_ratio(x), participation_ratio(y)
            rows.append({"layer": layer, "name": "embeddings" if layer == 0 else f"block {layer}", "pr_model": pr_x,
                         "pr_base": pr_y, "pr_ratio": pr_x / pr_y, "cka": linear_cka(x, y)})  # fmt: skip
        return rows

    # ----------------------------------------------------------------- value and interval

    def score_corpus(self, samples: list[dict[str, Any]]) -> float:
        statistic = str(self.option("statistic"))
        resampled = any(DRAW_KEY in r for r in samples)
        if not resampled:
            entry = self._full = self.geometry(samples)
            last = entry["table"][-1]
            return float({"pr-ratio-last": last["pr_ratio"], "pr-last": last["pr_model"], "cka-last": last["cka"]}[statistic])
        # a bootstrap resample (scored after the full set): the full set's stored states, the drawn prompts' tokens
        entry = getattr(self, "_full", None) or self.geometry(samples)
        codec = self.context.codec or model_handle(self.context, f"metric {self.name}").codec
        units: list[str] = []
        seen: set[tuple[Any, str]] = set()
        for record, digest in zip(samples, self._sequences(samples, codec)):
            if (record.get(DRAW_KEY), digest) not in seen:
                seen.add((record.get(DRAW_KEY), digest))
                units.append(digest)
        layer = len(entry["table"]) - 1
        x = self._stacked(entry, "model", units, layer)
        if statistic == "pr-last":
            return participation_ratio(x)
        y = self._stacked(entry, "base", units, layer)
        if statistic == "cka-last":
            return linear_cka(x, y)
        return participation_ratio(x) / participation_ratio(y)

    # ----------------------------------------------------------------- files

    def output_paths(self, samples: list[dict[str, Any]]) -> tuple[str, str] | None:
        """(csv, png) paths relative to the results folder, or None when there is no results folder."""
        if self.context.results_dir is None:
            return None
        if self.context.cell:  # inside a run: one folder per cell (model__recipe__decoder)
            who = self.context.cell
        else:
            who = f"fit-{self.context.model_key[:16]}" if self.context.model_key else "model"
        dataset = self.context.dataset or (str(samples[0].get("dataset") or "data") if samples else "data")
        stem = f"probes/layer-geometry/{_safe(who)}/{_safe(dataset)}.vs-{_safe(str(self.option('base')))}"
        return f"{stem}.csv", f"{stem}.png"

    def _write_files(self, samples: list[dict[str, Any]], table: list[dict[str, Any]]) -> None:
        paths = self.output_paths(samples)
        if paths is None:
            return
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()} for row in table)
        title = f"layer geometry: {paths[0].split('/')[2]} on {samples[0].get('dataset', '')} vs {self.option('base')}"
        files = {paths[0]: out.getvalue().encode("utf-8"), paths[1]: plot_table(table, title)}
        write = self.context.write_artifact  # inside a run: kept with the score, so a warm run writes them too
        for relative, data in files.items():
            if callable(write):
                write(relative, data)
            elif relative.endswith(".csv"):
                atomic_write_text(Path(self.context.results_dir) / relative, data.decode("utf-8"))
            else:
                atomic_write_bytes(Path(self.context.results_dir) / relative, data)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"


def plot_table(table: list[dict[str, Any]], title: str) -> bytes:
    """PNG bytes: PR per layer (evaluated, base) on the left, CKA per layer on the right (matplotlib, Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    layers = [row["layer"] for row in table]
    figure = Figure(figsize=(9, 3.4), dpi=100)
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    left.plot(layers, [row["pr_model"] for row in table], marker="o", label="evaluated")
    left.plot(layers, [row["pr_base"] for row in table], marker="s", label="base")
    left.set_xlabel("layer (0 = embeddings)")
    left.set_ylabel("participation ratio")
    left.legend()
    right.plot(layers, [row["cka"] for row in table], marker="o", color="tab:green")
    right.set_xlabel("layer (0 = embeddings)")
    right.set_ylabel("linear CKA with base")
    right.set_ylim(0, 1.05)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
