"""Paired comparisons between two cells on the same prompts: the difference B − A with a paired bootstrap.

Per-cell intervals (``scores.csv``) cannot say whether one cell beats another beyond noise: two cells scored on
the same prompts are correlated, and overlapping intervals are neither necessary nor sufficient. Here both
cells are scored on the prompts they share and the *prompts* are resampled together (definitions pinned in
``docs/comparisons.md``):

* **difference** = value(B) − value(A), where A is the first cell named (``harness compare RESULTS A B``; for a
  benchmark's ``baselines`` A is the baseline). Which cell is *better* follows the metric's ``higher_is_better``.
* **pairing**: per eval dataset, only prompts present in both cells count. Several draws of one prompt
  (``sample_idx``) are averaged per prompt, so the unit of resampling is a prompt, never a draw.
* **paired method** (sample-level metrics, and corpus metrics that define ``score_per_text``, whose value is
  the mean of per-text contributions computed once on the whole set, e.g. Self-BLEU): each side's per-prompt
  mean a_i, b_i; value(A) = mean a_i, value(B) = mean b_i; each resample draws n prompts with replacement and
  takes the mean of d_i = b_i − a_i over them. This is how the per-cell intervals treat those metrics too
  (recomputing a leave-one-out statistic inside a resample would bias it).
* **recomputed method** (other corpus metrics: MAUVE, diversity, rep-n, ...): the metric on each side's records
  of the shared prompts; each resample draws one prompt multiset and recomputes the metric on *both* cells'
  records of those prompts; capped at the metric's ``max_bootstrap`` resamples (MAUVE: 50).
* **interval**: 2.5/97.5 percentiles of the resampled differences (numpy linear interpolation), widened to
  contain the difference (an interval always contains its value).
* **p-value** (two-sided): p = min(1, 2 · min(1 + #{δ* ≤ 0}, 1 + #{δ* ≥ 0}) / (R + 1)) over the R resampled
  differences δ*: the share of resamples at or beyond 0 on the rarer side, doubled, with a +1 correction so
  that p is never 0 (the smallest possible p is 2 / (R + 1)); identical cells give p = 1. NaN without resamples.
* **seed**: ``derive_seed(benchmark seed, "paired-bootstrap", dataset, metric)``; resample r draws
  ``numpy.random.default_rng(seed).integers(0, n, size=n)`` (the r-th call) over the shared prompts sorted
  by their canonical JSON, so the result does not depend on the order of the records, nor on which cell is A.

Metrics that need what a results folder does not hold (the evaluated model, a second fitted model) are reported
as ``skipped`` with the metric's own message. numpy and the metric plugins are only used inside functions.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from harness.api import Metric, MetricContext
from harness.errors import HarnessError, InputError, did_you_mean
from harness.sampling import derive_seed
from harness.scoring import check_requirements
from harness.stats import DRAW_KEY, INDEX_KEY, containing
from harness.store import atomic_write_text, canonical_json, read_user_jsonl

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from harness.registry import Registry
    from harness.run_record import RunRecord

#: how the difference is taken, as printed and stored
DIRECTION = "B - A"
CONFIDENCE = 0.95
#: Comparison.method values
PAIRED = "paired"  # per-prompt differences resampled
RECOMPUTED = "recomputed"  # the corpus metric recomputed on both cells for each resampled prompt set
POINT = "point"  # no resamples asked for: no interval, no p-value
SKIPPED = "skipped"  # not computed; ``note`` says why
COMPARISONS_FILE = "comparisons.csv"
#: what a metric may raise when it cannot score these records here (no model, a missing field, too few texts)
_CANNOT_SCORE = (HarnessError, ValueError, TypeError, ImportError, OSError, NotImplementedError, RuntimeError,
                 LookupError)


@dataclass(frozen=True)
class Comparison:
    """One metric on one eval dataset: cell A against cell B on their shared prompts (``difference`` = B − A)."""

    dataset: str
    metric: str
    cell_a: str
    cell_b: str
    value_a: float
    value_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    #: prompts paired (present in both cells and scored on both sides)
    n: int
    #: bootstrap resamples behind the interval and p (0 for POINT and SKIPPED)
    resamples: int
    method: str
    higher_is_better: bool | None
    note: str = ""

    @property
    def computed(self) -> bool:
        return self.method != SKIPPED and not math.isnan(self.difference)

    @property
    def excludes_zero(self) -> bool:
        """True when the paired interval lies entirely on one side of 0 (a difference beyond resampling noise)."""
        return self.computed and self.resamples > 0 and (self.ci_low > 0 or self.ci_high < 0)

    @property
    def better(self) -> str:
        """"A" or "B" by the point difference and ``higher_is_better``; "tie"; "" for a descriptive metric."""
        if not self.computed or self.higher_is_better is None:
            return ""
        if self.difference == 0:
            return "tie"
        return "B" if (self.difference > 0) == self.higher_is_better else "A"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("value_a", "value_b", "difference", "ci_low", "ci_high", "p_value"):
            out[key] = None if math.isnan(out[key]) else out[key]
        out["better"] = self.better
        out["excludes_zero"] = self.excludes_zero
        return out


COMPARISON_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Comparison))


# --------------------------------------------------------------------------- the bootstrap


def paired_seed(seed: int, dataset: str, metric: str) -> int:
    """The bootstrap seed of one (dataset, metric) comparison, derived from the benchmark seed as the runner does."""
    return derive_seed(seed, "paired-bootstrap", dataset, metric)


def p_value(resampled: Sequence[float]) -> float:
    """Two-sided bootstrap p: min(1, 2 · min(1 + #{δ* ≤ 0}, 1 + #{δ* ≥ 0}) / (R + 1)); NaN when R = 0."""
    values = list(resampled)
    if not values:
        return math.nan
    at_or_below = sum(1 for v in values if v <= 0)
    at_or_above = sum(1 for v in values if v >= 0)
    return min(1.0, 2.0 * min(1 + at_or_below, 1 + at_or_above) / (len(values) + 1))


def summarize(difference: float, resampled: Sequence[float]) -> tuple[float, float, float]:
    """(ci_low, ci_high, p) from the resampled differences: percentile interval widened to ``difference``."""
    import numpy as np

    arr = np.asarray(list(resampled), dtype=float)
    if arr.size == 0:
        return difference, difference, math.nan
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise ValueError(f"the resampled difference was non-finite on {bad} of {arr.size} resamples")
    alpha = (1.0 - CONFIDENCE) / 2.0
    low, high = np.percentile(arr, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    low, high = containing(difference, float(low), float(high))
    return low, high, p_value(arr.tolist())


def resamples(n: int, count: int, seed: int) -> "Iterable[np.ndarray]":
    """``count`` draws of n prompt indices with replacement: call r is ``default_rng(seed).integers(0, n, size=n)``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield rng.integers(0, n, size=n)


def paired_differences(a: Sequence[float], b: Sequence[float], count: int, seed: int) -> tuple[float, list[float]]:
    """Mean of d_i = b_i − a_i, and that mean on each of ``count`` seeded resamples of the prompts."""
    import numpy as np

    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    return float(d.mean()), [float(d[idx].mean()) for idx in resamples(len(d), count, seed)]


# --------------------------------------------------------------------------- pairing


def prompt_key(record: dict[str, Any], where: str) -> str:
    """A record's prompt as a sortable, hashable string (its prompt_id in canonical JSON)."""
    if record.get("prompt_id") is None:
        raise InputError(f"{where}: a record has no prompt_id, so it cannot be paired with the other cell's")
    return canonical_json(record["prompt_id"])


def by_dataset(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """dataset → its records in their order, datasets in first-seen order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        out.setdefault(str(record.get("dataset", "")), []).append(record)
    return out


def shared_prompts(records_a: Iterable[dict[str, Any]], records_b: Iterable[dict[str, Any]], cells: tuple[str, str]) -> set[str]:
    """The prompt keys both record sets have."""
    return {prompt_key(r, f"cell {cells[0]}") for r in records_a} & {prompt_key(r, f"cell {cells[1]}") for r in records_b}


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


class _Side:
    """One cell's records on one dataset, restricted to the shared prompts and kept in their file order (so a
    value computed on them equals the cell's scores.csv value when every prompt is shared), with the positions
    of each shared prompt's records (``groups[i]``: prompt i of the sorted shared keys)."""

    def __init__(self, records: Sequence[dict[str, Any]], keys: Sequence[str], where: str):
        slot = {k: i for i, k in enumerate(keys)}
        self.records: list[dict[str, Any]] = []
        self.groups: list[list[int]] = [[] for _ in keys]
        for record in records:
            i = slot.get(prompt_key(record, where))
            if i is not None:
                self.groups[i].append(len(self.records))
                self.records.append(record)

    def prompt_means(self, values: Sequence[float]) -> list[float]:
        return [_mean([values[pos] for pos in group]) for group in self.groups]

    def resample(self, idx: Sequence[int]) -> list[dict[str, Any]]:
        """The records of the drawn prompts, each copy marked with its draw and original index (as harness.stats)."""
        return [{**self.records[pos], DRAW_KEY: k, INDEX_KEY: pos} for k, g in enumerate(idx) for pos in self.groups[g]]


def _prompt_values(metric: Metric, side: _Side) -> list[float | None]:
    """Per prompt: the mean of the metric's per-record values over its draws (None: no scored row).

    A sample metric returns one value per record it can score; when it skipped some (short rows under
    ``stop_at_eos``), it is asked again prompt by prompt so every value stays with its prompt.
    """
    if metric.level == "sample":
        values = [float(v) for v in metric.score_samples(side.records)]
        if len(values) == len(side.records):
            return list(side.prompt_means(values))
        out: list[float | None] = []
        for group in side.groups:
            own = [float(v) for v in metric.score_samples([side.records[pos] for pos in group])]
            out.append(_mean(own) if own else None)
        return out
    values = [float(v) for v in metric.score_per_text(side.records)]  # type: ignore[attr-defined]
    if len(values) != len(side.records):
        raise ValueError(f"score_per_text returned {len(values)} values for {len(side.records)} records")
    return list(side.prompt_means(values))


def _use(metric: Metric, context: MetricContext | None) -> Metric:
    if context is not None:
        metric.context = context
    return metric


def _skipped(dataset: str, key: str, cells: tuple[str, str], hib: bool | None, note: str, n: int = 0) -> Comparison:
    nan = math.nan
    return Comparison(dataset, key, cells[0], cells[1], nan, nan, nan, nan, nan, nan, n, 0, SKIPPED, hib, note)


def compare_metric(
    metric: Metric,
    key: str,
    dataset: str,
    records_a: Sequence[dict[str, Any]],
    records_b: Sequence[dict[str, Any]],
    bootstrap: int,
    seed: int,
    cells: tuple[str, str] = ("A", "B"),
    contexts: tuple[MetricContext | None, MetricContext | None] = (None, None),
) -> Comparison:
    """One metric on one dataset: each cell's records of that dataset; only the prompts both have are used.

    ``seed`` is this comparison's own seed (see :func:`paired_seed`). A metric that cannot score these records
    here (no model in a results folder, a missing field) gives a SKIPPED row carrying its message.
    """
    hib = metric.higher_is_better
    keys_a = {prompt_key(r, f"cell {cells[0]}") for r in records_a}
    keys_b = {prompt_key(r, f"cell {cells[1]}") for r in records_b}
    keys = sorted(keys_a & keys_b)
    if not keys:
        return _skipped(dataset, key, cells, hib, "no prompts in common")
    if metric.level not in ("sample", "corpus"):
        return _skipped(dataset, key, cells, hib, f"unknown metric level {metric.level!r}")
    side_a, side_b = _Side(records_a, keys, f"cell {cells[0]}"), _Side(records_b, keys, f"cell {cells[1]}")
    count = bootstrap
    if metric.level == "corpus" and getattr(metric, "max_bootstrap", None) is not None:
        count = min(count, int(metric.max_bootstrap))  # type: ignore[arg-type]
    method = PAIRED if metric.level == "sample" or callable(getattr(metric, "score_per_text", None)) else RECOMPUTED
    notes: list[str] = []
    if count < bootstrap:
        notes.append(f"resamples capped at {count} by the metric")
    if len(keys_a ^ keys_b):
        notes.append(f"{len(keys_a ^ keys_b)} prompt(s) in only one cell left out")
    try:
        for side, cell, context in ((side_a, cells[0], contexts[0]), (side_b, cells[1], contexts[1])):
            check_requirements(_use(metric, context), side.records, f"cell {cell}")
        if method == PAIRED:
            a = _prompt_values(_use(metric, contexts[0]), side_a)
            b = _prompt_values(_use(metric, contexts[1]), side_b)
            kept = [i for i in range(len(keys)) if a[i] is not None and b[i] is not None]
            if len(kept) < len(keys):
                notes.append(f"{len(keys) - len(kept)} prompt(s) with no scored row on one side left out")
            if not kept:
                return _skipped(dataset, key, cells, hib, "; ".join(notes + ["no prompt scored on both sides"]))
            a_kept = [float(a[i]) for i in kept]  # type: ignore[arg-type]
            b_kept = [float(b[i]) for i in kept]  # type: ignore[arg-type]
            value_a, value_b = _mean(a_kept), _mean(b_kept)
            difference, stats = paired_differences(a_kept, b_kept, count, seed)
            n = len(kept)
        else:
            value_a = float(_use(metric, contexts[0]).score_corpus(side_a.records))
            value_b = float(_use(metric, contexts[1]).score_corpus(side_b.records))
            difference = value_b - value_a
            stats = []
            for idx in resamples(len(keys), count, seed):
                drawn = idx.tolist()
                stat_a = float(_use(metric, contexts[0]).score_corpus(side_a.resample(drawn)))
                stat_b = float(_use(metric, contexts[1]).score_corpus(side_b.resample(drawn)))
                stats.append(stat_b - stat_a)
            n = len(keys)
            own = getattr(metric, "own_interval", None)
            if callable(own) and (_use(metric, contexts[0]).own_interval(side_a.records) or {}).get("warning"):  # type: ignore[attr-defined]
                notes.append("small sample: this metric's per-cell interval is a seed spread here, and this paired "
                             "interval, recomputed on few duplicated texts, is rough")  # fmt: skip
        if not all(math.isfinite(v) for v in (value_a, value_b, difference)):
            raise ValueError(f"non-finite value (A {value_a}, B {value_b})")
        low, high, p = summarize(difference, stats)
    except _CANNOT_SCORE as exc:
        return _skipped(dataset, key, cells, hib, f"skipped: {exc}")
    if any(len(g) > 1 for g in side_a.groups + side_b.groups):
        notes.append("several draws per prompt: averaged per prompt" if method == PAIRED else "all draws of each prompt used")
    final = (PAIRED if method == PAIRED else RECOMPUTED) if stats else POINT
    return Comparison(dataset, key, cells[0], cells[1], value_a, value_b, difference, low, high, p, n, len(stats),
                      final, hib, "; ".join(notes))  # fmt: skip


def compare_cells(
    records_a: Sequence[dict[str, Any]],
    records_b: Sequence[dict[str, Any]],
    metrics: Mapping[str, Metric],
    bootstrap: int,
    seed: int,
    *,
    cell_a: str = "A",
    cell_b: str = "B",
    contexts: tuple[MetricContext | None, MetricContext | None] = (None, None),
    datasets: Sequence[str] | None = None,
) -> list[Comparison]:
    """Every metric on every eval dataset the two cells share: B − A on their shared prompts.

    ``metrics`` maps the benchmark's metric names to instantiated plugins; ``seed`` is the benchmark seed (each
    comparison derives its own, :func:`paired_seed`); ``contexts`` are the MetricContexts of A and B (training
    sequences, feature cache), set on the plugin before it scores that side. Rows come dataset by dataset (A's
    order), metrics in ``metrics`` order. Raises InputError when the cells share no prompt at all.
    """
    if bootstrap < 0:
        raise InputError(f"bootstrap must be >= 0, got {bootstrap}")
    a_sets, b_sets = by_dataset(records_a), by_dataset(records_b)
    shared = [d for d in a_sets if d in b_sets and (datasets is None or d in datasets)]
    if not any(shared_prompts(a_sets[d], b_sets[d], (cell_a, cell_b)) for d in shared):
        raise InputError(
            f'cells "{cell_a}" and "{cell_b}" share no prompts: A has datasets {", ".join(a_sets) or "none"}, '
            f'B has {", ".join(b_sets) or "none"}; only prompts present in both cells can be compared'
        )
    out: list[Comparison] = []
    for dataset in shared:
        for name, metric in metrics.items():
            out.append(compare_metric(metric, name, dataset, a_sets[dataset], b_sets[dataset], bootstrap,
                                      paired_seed(seed, dataset, name), (cell_a, cell_b), contexts))  # fmt: skip
    return out


# --------------------------------------------------------------------------- at record time: the baselines


def record_comparisons(record: "RunRecord") -> list[Comparison]:
    """Every cell against each of the benchmark's ``baselines`` (A = baseline, B = the cell), from the records
    in memory; each (baseline, cell, metric) result is stored in the stage cache so a warm run recomputes none."""
    from harness.code_identity import module_source_hash
    from harness.store import StageCache, content_key

    bench = record.bench
    baselines = list(bench.baselines)
    if not baselines:
        return []
    cells = {cell.id: (cell, records) for cell, records in record.generations}
    train = {(r.model, r.recipe): [list(s.token_ids) for s in r.train_samples] for r in record.recipes}
    cache = StageCache(Path(record.cache_dir)) if record.cache_dir else None
    code = module_source_hash("harness.paired")
    digests: dict[str, str] = {}

    def digest(cell_id: str) -> str:
        if cell_id not in digests:
            cell, records = cells[cell_id]
            payload = canonical_json([records, train.get((cell.model, cell.recipe))])
            digests[cell_id] = hashlib.sha256(payload.encode("utf-8")).hexdigest()
        return digests[cell_id]

    def context(cell_id: str) -> MetricContext:
        cell, _ = cells[cell_id]
        features = Path(record.cache_dir) / "features" if record.cache_dir else None
        return MetricContext(train_sequences=train.get((cell.model, cell.recipe)), codec=record.codecs.get(cell.model),
                             cache_dir=features)

    out: list[Comparison] = []
    for baseline in baselines:
        if baseline not in cells:
            continue
        for cell_id in cells:
            if cell_id == baseline:
                continue
            pair: list[Comparison] = []
            for name, component in bench.metrics.items():
                key = content_key("compare", digest(baseline), digest(cell_id), name, component.identity(),
                                  bench.eval.bootstrap, bench.seed, code)  # fmt: skip
                stored = None if cache is None or record.fresh else cache.get("compare", key)
                if stored is not None:
                    pair.extend(_from_json(row) for row in stored)
                    continue
                try:
                    rows = compare_cells(cells[baseline][1], cells[cell_id][1], {name: component.instantiate()},
                                         bench.eval.bootstrap, bench.seed, cell_a=baseline, cell_b=cell_id,
                                         contexts=(context(baseline), context(cell_id)))  # fmt: skip
                except InputError as exc:  # no shared prompts: said in the table, the run's results still stand
                    metric_cls = component.registration.cls
                    rows = [_skipped("", name, (baseline, cell_id), metric_cls.higher_is_better, f"skipped: {exc}")]
                if cache is not None and all(r.method != SKIPPED for r in rows):
                    cache.put("compare", key, [r.to_json() for r in rows])
                pair.extend(rows)
            datasets = {d: i for i, d in enumerate(dict.fromkeys(r.dataset for r in pair))}
            out.extend(sorted(pair, key=lambda r: datasets[r.dataset]))  # dataset by dataset, metrics in order
    return out


def _from_json(row: Mapping[str, Any]) -> Comparison:
    values = {f.name: row.get(f.name) for f in fields(Comparison)}
    for key in ("value_a", "value_b", "difference", "ci_low", "ci_high", "p_value"):
        values[key] = math.nan if values[key] is None else float(values[key])
    values["n"], values["resamples"] = int(values["n"]), int(values["resamples"])
    values["note"] = str(values.get("note") or "")
    return Comparison(**values)


# --------------------------------------------------------------------------- comparisons.csv


def _csv_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def comparisons_csv(rows: Sequence[Comparison]) -> str:
    """The long table of comparisons at full precision (``repr`` floats; empty for NaN or no direction)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COMPARISON_COLUMNS)
    for row in rows:
        writer.writerow([_csv_value(getattr(row, c)) for c in COMPARISON_COLUMNS])
    return out.getvalue()


def write_comparisons(root: Path, rows: Sequence[Comparison]) -> None:
    """Write ``comparisons.csv``, or remove a stale one when the run compares nothing (no baselines)."""
    path = Path(root) / COMPARISONS_FILE
    if rows:
        atomic_write_text(path, comparisons_csv(rows))
    else:
        path.unlink(missing_ok=True)


def load_comparisons(results_dir: Path) -> list[Comparison]:
    """The comparisons stored in ``RESULTS_DIR/comparisons.csv`` ([] when the run had no baselines)."""
    path = Path(results_dir) / COMPARISONS_FILE
    if not path.is_file():
        return []
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            raw = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read CSV: {exc}") from None
    out = []
    for number, row in enumerate(raw, start=2):
        missing = [c for c in COMPARISON_COLUMNS if c not in row]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
        try:
            hib = {"true": True, "false": False, "": None}[row["higher_is_better"]]
            floats = {c: float(row[c]) if row[c] != "" else math.nan
                      for c in ("value_a", "value_b", "difference", "ci_low", "ci_high", "p_value")}  # fmt: skip
            out.append(Comparison(row["dataset"], row["metric"], row["cell_a"], row["cell_b"], **floats,
                                  n=int(row["n"]), resamples=int(row["resamples"]), method=row["method"],
                                  higher_is_better=hib, note=row["note"]))  # fmt: skip
        except (KeyError, ValueError) as exc:
            raise InputError(f"{path}:{number}: malformed row ({exc})") from None
    return out


# --------------------------------------------------------------------------- harness compare


@dataclass
class CompareResult:
    """What ``harness compare`` prints: the two cells, the settings, and one row per dataset × metric."""

    results_dir: Path
    cell_a: str
    cell_b: str
    bootstrap: int
    seed: int
    rows: list[Comparison]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [record for _, record in read_user_jsonl(path)]


def _train_sequences(results_dir: Path, cell_id: str) -> list[list[int]] | None:
    """The cell's recipe's training token ids from ``recipes/<model>__<recipe>/train_samples.jsonl``, if kept."""
    parts = cell_id.split("__")
    if len(parts) != 3:
        return None
    path = results_dir / "recipes" / f"{parts[0]}__{parts[1]}" / "train_samples.jsonl"
    if not path.is_file():
        return None
    return [list(r["token_ids"]) for r in _read_jsonl(path) if isinstance(r.get("token_ids"), list)]


def _instantiate(key: str, info: Mapping[str, Any], registry: "Registry") -> Metric | str:
    """The metric plugin a manifest entry names, with its recorded params; or why it cannot be built here."""
    from harness.params import resolve_params

    plugin = str(info.get("plugin", key))
    registration = registry.find("metric", plugin)
    if registration is None:
        return f'skipped: metric plugin "{plugin}" is not installed' + did_you_mean(plugin, registry.names("metric"))
    params, problems = resolve_params(registration.cls.params, dict(info.get("params") or {}))
    if problems.items:
        return "skipped: recorded params no longer valid: " + "; ".join(f"{n}: {m}" for n, m in problems.items)
    return registration.cls(params)


def compare_results(
    results_dir: Path,
    cell_a: str,
    cell_b: str,
    registry: "Registry",
    *,
    dataset: str | None = None,
    metric: str | None = None,
    bootstrap: int | None = None,
    cache_dir: Path | None = None,
) -> CompareResult:
    """``harness compare``: recompute every metric of ``manifest.json`` for two cells of a results folder and
    compare them (B − A). ``bootstrap`` defaults to the run's ``eval.bootstrap``; the seed is the run's.
    Bad cell, dataset or metric names are InputErrors with a "did you mean"."""
    results_dir = Path(results_dir)
    manifest_path = results_dir / "manifest.json"
    if not manifest_path.is_file():
        raise InputError(f"{manifest_path}: file not found (is {results_dir} the output of `harness run`?)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{manifest_path}: cannot read manifest JSON: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("metrics"), dict):
        raise InputError(f'{manifest_path}: expected an object with a "metrics" object')
    available = sorted(p.parent.name for p in (results_dir / "cells").glob("*/generations.jsonl"))
    for name in (cell_a, cell_b):
        if name not in available:
            raise InputError(f'{results_dir}: no cell "{name}"' + did_you_mean(name, available))
    infos: dict[str, Mapping[str, Any]] = manifest["metrics"]
    if metric is not None and metric not in infos:
        raise InputError(f'--metric "{metric}": no such metric in {manifest_path}' + did_you_mean(metric, infos))
    records = {c: _read_jsonl(results_dir / "cells" / c / "generations.jsonl") for c in (cell_a, cell_b)}
    if dataset is not None:
        present = {str(r.get("dataset", "")) for c in (cell_a, cell_b) for r in records[c]}
        if dataset not in present:
            raise InputError(f'--dataset "{dataset}": not a dataset of these cells' + did_you_mean(dataset, present))
    config = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    if bootstrap is None:
        bootstrap = int((config.get("eval") or {}).get("bootstrap", 1000))
    seed = int(manifest.get("seed", config.get("seed", 0)) or 0)
    features = Path(cache_dir) / "features" if cache_dir is not None else None
    contexts = tuple(MetricContext(train_sequences=_train_sequences(results_dir, c), cache_dir=features)
                     for c in (cell_a, cell_b))  # fmt: skip
    plugins: dict[str, Metric] = {}
    unusable: dict[str, str] = {}
    for key, info in infos.items():
        if metric is not None and key != metric:
            continue
        built = _instantiate(key, info, registry)
        if isinstance(built, str):
            unusable[key] = built
        else:
            plugins[key] = built
    rows = compare_cells(records[cell_a], records[cell_b], plugins, bootstrap, seed, cell_a=cell_a, cell_b=cell_b,
                         contexts=contexts, datasets=[dataset] if dataset else None)  # type: ignore[arg-type]
    if unusable:  # a row per dataset saying why, in the manifest's metric order
        a_sets, b_sets = by_dataset(records[cell_a]), by_dataset(records[cell_b])
        shared = [d for d in a_sets if d in b_sets and dataset in (None, d)
                  and shared_prompts(a_sets[d], b_sets[d], (cell_a, cell_b))]  # fmt: skip
        for d in shared:
            for key, note in unusable.items():
                hib = infos[key].get("higher_is_better")
                rows.append(_skipped(d, key, (cell_a, cell_b), hib if isinstance(hib, bool) else None, note))
        place = {d: i for i, d in enumerate(shared)}
        order = {k: i for i, k in enumerate(infos)}
        rows.sort(key=lambda r: (place.get(r.dataset, len(place)), order.get(r.metric, len(order))))
    return CompareResult(results_dir, cell_a, cell_b, bootstrap, seed, rows)


# --------------------------------------------------------------------------- rendering


def format_number(value: float, signed: bool = False) -> str:
    """Three decimals (one from 100 up), as the leaderboard; ``signed`` puts + on a positive difference."""
    if math.isnan(value):
        return "nan"
    text = f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    if float(text) == 0:
        return text.lstrip("-")  # no sign on what rounds to zero
    return ("+" + text) if signed and value > 0 else text


def format_p(p: float) -> str:
    if math.isnan(p):
        return "-"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def format_difference(row: Comparison, interval: bool = True) -> str:
    """``+0.201 [+0.102, +0.300]*``: * when the paired interval excludes 0; ``-`` when not computed."""
    if not row.computed:
        return "-"
    text = format_number(row.difference, signed=True)
    if interval and row.resamples:
        text += f" [{format_number(row.ci_low, signed=True)}, {format_number(row.ci_high, signed=True)}]"
    return text + ("*" if row.excludes_zero else "")


def _arrow(hib: bool | None) -> str:
    return "" if hib is None else (" ↑" if hib else " ↓")


def _better_text(row: Comparison) -> str:
    return {"A": "A", "B": "B", "tie": "tie"}.get(row.better, "-")


HEADER = ("metric", "A", "B", "B − A", "95% CI", "p", "n", "better")


def _table_rows(rows: Sequence[Comparison]) -> list[list[str]]:
    out = []
    for r in rows:
        if not r.computed:
            out.append([r.metric + _arrow(r.higher_is_better), "-", "-", "-", "-", "-", str(r.n or "-"), "-"])
            continue
        ci = f"[{format_number(r.ci_low, signed=True)}, {format_number(r.ci_high, signed=True)}]" if r.resamples else "-"
        out.append([r.metric + _arrow(r.higher_is_better), format_number(r.value_a), format_number(r.value_b),
                    format_number(r.difference, signed=True), ci + ("*" if r.excludes_zero else ""), format_p(r.p_value),
                    str(r.n), _better_text(r)])  # fmt: skip
    return out


def _notes(rows: Sequence[Comparison]) -> list[str]:
    return [f"{r.dataset} / {r.metric}: {r.note}" for r in rows if r.note]


def legend(result: CompareResult) -> str:
    return (
        f"difference = B − A on the prompts both cells have; 95% paired bootstrap interval over prompts "
        f"({result.bootstrap} resamples unless noted, seed derived from {result.seed}), * = it excludes 0; p two-sided "
        f"from the bootstrap distribution; n = prompts paired; better = by the point difference and the metric's "
        f"↑/↓ (see docs/comparisons.md)"
    )


def _sections(result: CompareResult) -> list[tuple[str, list[Comparison]]]:
    groups: dict[str, list[Comparison]] = {}
    for row in result.rows:
        groups.setdefault(row.dataset, []).append(row)
    return list(groups.items())


def render_markdown(result: CompareResult) -> str:
    lines = [f"# {result.cell_a} (A) vs {result.cell_b} (B)", ""]
    for dataset, rows in _sections(result):
        lines += [f"## {dataset}", "", "| " + " | ".join(HEADER) + " |", "|---|" + "---:|" * 6 + "---|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|").replace("*", "\\*") for c in cells) + " |" for cells in _table_rows(rows)]
        lines.append("")
        lines += [f"- {note}" for note in _notes(rows)] + ([""] if _notes(rows) else [])
    lines.append(f"_{legend(result)}._")
    return "\n".join(lines) + "\n"


def render_json(result: CompareResult) -> str:
    return json.dumps({
        "results_dir": str(result.results_dir), "cell_a": result.cell_a, "cell_b": result.cell_b,
        "difference": DIRECTION, "bootstrap": result.bootstrap, "seed": result.seed, "confidence": CONFIDENCE,
        "comparisons": [r.to_json() for r in result.rows],
    }, indent=2, ensure_ascii=False) + "\n"  # fmt: skip


def render_rich(result: CompareResult) -> Any:
    """rich tables, one per dataset (a Group to print on a Console)."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    items: list[Any] = [Text(f"A = {result.cell_a}   B = {result.cell_b}", style="bold")]
    for dataset, rows in _sections(result):
        table = Table(title=dataset, box=box.SIMPLE_HEAVY, title_justify="left")
        for i, header in enumerate(HEADER):
            table.add_column(header, justify="left" if i in (0, len(HEADER) - 1) else "right")
        for row, cells in zip(rows, _table_rows(rows)):
            table.add_row(*cells, style="bold" if row.excludes_zero else "")
        items.append(table)
        items += [Text(note, style="dim") for note in _notes(rows)] + [Text("")]
    items.append(Text(legend(result), style="dim"))
    return Group(*items)


FORMATS = ("rich", "md", "json")
