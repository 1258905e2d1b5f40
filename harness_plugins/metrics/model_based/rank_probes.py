"""Rank probes of what hyperfitting changes: ``base-rank`` and ``base-divergence`` (docs/metrics-probes.md).

* ``base-rank``: where the tokens a model generated sit in the *base* model's ranking, given the same prefix
  (does the fitted model pick tokens from deep in the base model's tail?).
* ``base-divergence``: how far the evaluated model's next-token distributions are from the base model's on
  held-out human text (KL both ways, and a rank correlation over the evaluated model's top-k tokens).

Both read a second recipe's weights through ``MetricContext.model_for`` (the pool holds one model at a
time): whatever the evaluated model contributes is computed first, then the base model is loaded. Every
statistic of one probe comes from the same passes, shared through the metric context (one entry per
statistic costs no extra pass). torch and numpy are imported inside the functions.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from harness.api import Metric, Param, log_probs, padded_forward

from ._featurizers import model_handle, scratch
from ._teacher_forced import scored_sequences, teacher_forced_params

log = logging.getLogger("harness")

RANK_STATISTICS = ("mean-log-rank", "outside-top1", "outside-top10", "outside-top100")
DIVERGENCE_STATISTICS = ("kl-fitted-base", "kl-base-fitted", "topk-spearman")


def base_param() -> Param:
    return Param("base", str, default="base",
                 help="the recipe (same model) whose weights are the reference, by its name in the benchmark's "
                      "recipes; usually the `none` recipe called base")  # fmt: skip


# --------------------------------------------------------------------------- the definitions, as plain functions


def token_ranks(logits: Any, targets: Any, eos: int | None) -> Any:
    """Rank of each target among the vocabulary: #{v ≠ target, v ≠ EOS : logits[v] > logits[target]} per row.

    ``logits`` [n, V] (any float dtype, compared in float32), ``targets`` [n]; rank 0 = the argmax (ties count in
    the target's favour); EOS is never counted above the target (an output never contains EOS).
    """
    z = logits.float()
    chosen = z.gather(-1, targets.long().unsqueeze(-1))
    above = z > chosen
    if eos is not None and 0 <= eos < z.shape[-1]:
        above[:, eos] = False
    return above.sum(-1)


def rank_statistic(ranks: Any, statistic: str) -> float:
    """One record's value from its ranks (numpy ints): mean ln(1 + rank), or the share with rank ≥ k."""
    import numpy as np

    ranks = np.asarray(ranks, dtype=np.float64)
    if statistic == "mean-log-rank":
        return float(np.log1p(ranks).mean())
    k = int(statistic.removeprefix("outside-top"))
    return float((ranks >= k).mean())


def kl_rows(logp: Any, logq: Any) -> Any:
    """KL(p‖q) = Σ_v p(v) (ln p(v) − ln q(v)) per row, from log-probabilities [n, V] (0·ln 0 = 0)."""
    import torch

    p = logp.exp()
    terms = torch.where(p > 0, p * (logp - logq), torch.zeros_like(p))
    return terms.sum(-1)


def average_ranks(x: Any) -> Any:
    """1-based ranks along the last dimension, ties sharing their average rank (as scipy's rankdata)."""
    less = (x.unsqueeze(-1) > x.unsqueeze(-2)).sum(-1)  # how many entries each one exceeds
    equal = (x.unsqueeze(-1) == x.unsqueeze(-2)).sum(-1)  # including itself
    return less.double() + (equal.double() + 1.0) / 2.0


def spearman_rows(a: Any, b: Any) -> Any:
    """Spearman's ρ between a[i] and b[i] per row ([n, k]): the Pearson correlation of their average ranks.

    A row where both sides are constant has ρ = 1 (the same, all-tied, order); where only one side is, ρ = 0.
    """
    import torch

    ra, rb = average_ranks(a), average_ranks(b)
    ra = ra - ra.mean(-1, keepdim=True)
    rb = rb - rb.mean(-1, keepdim=True)
    va, vb = (ra * ra).sum(-1), (rb * rb).sum(-1)
    num = (ra * rb).sum(-1)
    rho = num / torch.sqrt(va * vb).clamp(min=1e-300)
    both_flat = (va == 0) & (vb == 0)
    one_flat = (va == 0) ^ (vb == 0)
    rho = torch.where(both_flat, torch.ones_like(rho), rho)
    return torch.where(one_flat, torch.zeros_like(rho), rho)


def top_k_indices(logp: Any, k: int) -> Any:
    """The k most likely tokens per row, ties broken by the lower token id (a stable descending sort)."""
    import torch

    order = torch.sort(logp, dim=-1, descending=True, stable=True).indices
    return order[:, : min(k, logp.shape[-1])]


# --------------------------------------------------------------------------- passes


def _pad(codec: Any) -> int:
    return codec.pad_token_id if codec.pad_token_id is not None else 0


def position_logits(handle: Any, items: list[tuple[list[int], int]], batch_size: int, indices: list[int] | None = None):
    """Yield (item index, raw logits [len − first, V]) for ``items`` = (ids, first target), teacher-forced.

    Right-padded passes of ``batch_size`` similar-length sequences through ``harness.api.padded_forward``;
    position t − 1 predicts target t, so the rows are the distributions of targets first … len − 1.
    """
    chosen = list(range(len(items))) if indices is None else list(indices)
    order = sorted(chosen, key=lambda i: len(items[i][0]))
    pad = _pad(handle.codec)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        logits = padded_forward(handle.module, [items[i][0] for i in chunk], pad, side="right").logits
        for row, i in enumerate(chunk):
            seq, first = items[i]
            yield i, logits[row, first - 1 : len(seq) - 1]


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode("utf-8")).hexdigest()


def _load_base(metric: Metric, name: str) -> Any:
    load = metric.context.model_for
    if load is None:
        raise ValueError(f"{metric.name} compares with recipe {name!r}'s weights: it runs inside `harness run` only")
    return load(name)


# --------------------------------------------------------------------------- base-rank


class BaseRank(Metric):
    """The base model's rank of every generated token, given the same prefix."""

    name = "base-rank"
    description = (
        "Where the generated tokens sit in the base model's ranking given the same prefix (0 = its top-1): mean "
        "ln(1 + rank), or the share of tokens outside the base model's top 1 / 10 / 100 (`statistic`)."
    )
    level = "sample"
    higher_is_better = None
    requires = ("context_ids", "output_ids")
    modalities = ("text",)
    version = "1"
    params = (
        base_param(),
        Param("statistic", str, default="mean-log-rank", choices=RANK_STATISTICS,
              help="mean-log-rank: mean of ln(1 + rank); outside-topK: share of generated tokens with rank ≥ K"),
        Param("batch_size", int, default=8, min=1, help="sequences per teacher-forced forward pass"),
    )  # fmt: skip
    definition = (
        "For each record, the sequence context_ids + output_ids is run teacher-forced through the model of recipe "
        "`base` (B; float32 raw logits z). For every generated token x_j (output_ids[j], predicted from the context "
        "and output_ids[:j]) its base rank is r_j = #{v ≠ x_j, v ≠ EOS : z(v) > z(x_j)} (0 = B's argmax; ties count "
        "in the token's favour; EOS is left out of the ranking, since an output never contains it). The record's "
        "value is, by `statistic`: mean-log-rank = mean_j ln(1 + r_j); outside-top1 / outside-top10 / "
        "outside-top100 = the share of its tokens with r_j ≥ 1 / 10 / 100. Records without generated tokens are "
        "skipped; the metric is the mean over records (mean ± 1.96·stderr). A base-recipe cell decoded greedily "
        "scores 0 (up to float ties)."
    )

    def recipe_dependencies(self) -> tuple[str, ...]:
        return (str(self.option("base")),)

    def ranks(self, samples: list[dict[str, Any]]) -> list[Any]:
        """Per record, the numpy array of its generated tokens' base ranks (empty without generated tokens)."""
        import numpy as np
        import torch

        items = [
            ([int(t) for t in r.get("context_ids") or []] + [int(t) for t in r.get("output_ids") or []],
             max(1, len(r.get("context_ids") or [])))
            for r in samples
        ]  # fmt: skip
        base = str(self.option("base"))
        memo = scratch(self.context, "base-rank")
        key = _digest(base, items)
        if key not in memo:
            out: list[Any] = [np.zeros(0, dtype=np.int64)] * len(items)
            todo = [i for i, (ids, first) in enumerate(items) if len(ids) > first]
            if todo:
                handle = _load_base(self, base)
                eos = handle.codec.eos_token_id
                for i, logits in position_logits(handle, items, int(self.option("batch_size")), todo):
                    ids, first = items[i]
                    targets = torch.tensor(ids[first:], dtype=torch.long, device=logits.device)
                    out[i] = token_ranks(logits, targets, eos).cpu().numpy().astype(np.int64)
            memo[key] = out
        return memo[key]

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        statistic = str(self.option("statistic"))
        values = [rank_statistic(r, statistic) for r in self.ranks(samples) if len(r)]
        if not values:
            raise ValueError(f"{self.name}: no record has generated tokens to rank")
        return values


# --------------------------------------------------------------------------- base-divergence


class BaseDivergence(Metric):
    """Distance between the evaluated model's and the base model's next-token distributions on human text."""

    name = "base-divergence"
    description = (
        "How far the evaluated model's teacher-forced next-token distributions on the human texts are from the base "
        "model's: KL(fitted‖base), KL(base‖fitted), or Spearman's ρ of the two models' logits over the evaluated "
        "model's top-k tokens (`statistic`)."
    )
    level = "sample"
    higher_is_better = None
    requires = ("context_ids", "reference_text")
    modalities = ("text",)
    version = "1"
    params = (
        base_param(),
        Param("statistic", str, default="kl-fitted-base", choices=DIVERGENCE_STATISTICS,
              help="kl-fitted-base: KL(p_fitted‖p_base); kl-base-fitted: KL(p_base‖p_fitted); topk-spearman: "
                   "Spearman's ρ of the two models' logits over the evaluated model's k most likely tokens"),
        Param("k", int, default=10, min=2, help="topk-spearman: how many of the evaluated model's most likely tokens"),
        *teacher_forced_params(),
        Param("buffer_mb", int, default=2048, min=1, affects_result=False,
              help="memory (MiB) for the evaluated model's stored log-probabilities; more texts are done in rounds "
                   "(each round loads both models once)"),
    )  # fmt: skip
    definition = (
        "For each record, the sequence context_ids + reference ids (the drawn human continuation) is run "
        "teacher-forced through the evaluated model F and the model of recipe `base` (B). At every scored position t "
        "(span: continuation = the reference tokens; text = every token after the first), p_t and q_t are the "
        "float32 softmax of F's and B's raw next-token logits over the full vocabulary. kl-fitted-base: "
        "KL_t = Σ_v p_t(v) (ln p_t(v) − ln q_t(v)) in nats (0·ln 0 = 0); kl-base-fitted: the same with p and q "
        "swapped; topk-spearman: S_t = F's k most likely tokens at t (ties broken by the lower token id; k capped at "
        "the vocabulary size), ρ_t = Spearman's rank correlation between F's and B's logits over S_t (the Pearson "
        "correlation of their average ranks; 1 when both are constant on S_t, 0 when only one is). The record's "
        "value is the mean over its scored positions; the metric is the mean over records (mean ± 1.96·stderr). "
        "KL is 0 and ρ is 1 when F and B are the same weights."
    )

    def recipe_dependencies(self) -> tuple[str, ...]:
        return (str(self.option("base")),)

    def position_values(self, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Per record: numpy arrays ``kl-fitted-base``, ``kl-base-fitted``, ``topk-spearman`` over its positions."""
        codec = self.context.codec or model_handle(self.context, f"metric {self.name}").codec  # same for both models
        items = scored_sequences(samples, codec, str(self.option("span")))
        base, k = str(self.option("base")), int(self.option("k"))
        memo = scratch(self.context, "base-divergence")
        key = _digest(base, k, items)
        if key not in memo:
            memo[key] = self._compute(items, base, k)
        per_distinct = memo[key]
        out = []
        for record, item in zip(samples, items):
            values = per_distinct[_digest(item)]
            if values["kl-fitted-base"].size == 0:
                raise ValueError(f"{self.name}: prompt {record.get('prompt_id')!r} has no reference tokens to score")
            out.append(values)
        return out

    def _compute(self, items: list[tuple[list[int], int]], base: str, k: int) -> dict[str, dict[str, Any]]:
        import numpy as np

        distinct: dict[str, tuple[list[int], int]] = {}
        for item in items:
            distinct.setdefault(_digest(item), item)
        keys = list(distinct)
        seqs = [distinct[d] for d in keys]
        empty = {s: np.zeros(0) for s in DIVERGENCE_STATISTICS}
        results: dict[str, dict[str, Any]] = {d: dict(empty) for d in keys}
        pending = sorted((i for i, (ids, first) in enumerate(seqs) if len(ids) > first), key=lambda i: len(seqs[i][0]))
        batch_size = int(self.option("batch_size"))
        budget = int(self.option("buffer_mb")) * 2**20
        rounds = 0
        while pending:
            rounds += 1
            # 1. the evaluated model: full log-probabilities and top-k sets, kept on the CPU up to the budget
            own = model_handle(self.context, f"metric {self.name}")
            stored: dict[int, tuple[Any, Any]] = {}
            used = 0
            while pending and (not stored or used < budget):  # at least one batch per round
                chunk, pending = pending[:batch_size], pending[batch_size:]
                for i, logits in position_logits(own, seqs, batch_size, chunk):
                    logp = log_probs(logits)
                    stored[i] = (logp.cpu(), top_k_indices(logp, k).cpu())
                    used += logp.numel() * 4
            del own
            # 2. the base model on the same sequences
            other = _load_base(self, base)
            for i, logits in position_logits(other, seqs, batch_size, list(stored)):
                logq = log_probs(logits)
                logp, top = stored.pop(i)
                logp, top = logp.to(logq.device), top.to(logq.device)
                rho = spearman_rows(logp.gather(-1, top).double(), logq.gather(-1, top).double())
                results[keys[i]] = {
                    "kl-fitted-base": kl_rows(logp, logq).double().cpu().numpy(),
                    "kl-base-fitted": kl_rows(logq, logp).double().cpu().numpy(),
                    "topk-spearman": rho.cpu().numpy(),
                }
            del other
        if rounds > 1:
            log.info("%s: the texts took %d rounds of both models (raise buffer_mb to load each model once)", self.name, rounds)
        return results

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        statistic = str(self.option("statistic"))
        return [float(v[statistic].mean()) for v in self.position_values(samples)]
