"""Confidence intervals for metric results (numpy only, no torch).

Sample-level metrics get a normal-approximation interval of the mean (:func:`mean_interval`); corpus-level
metrics, whose value is not a mean of independent per-record values, get a seeded percentile bootstrap that
resamples whole prompts (:func:`bootstrap_interval`), so several continuations of one prompt move together.

**Every interval contains its value** (``ci_low <= value <= ci_high``). A normal interval is centred on it. A
percentile bootstrap need not be: for a biased statistic (MAUVE at small n, a maximum) or a skewed one, the
2.5-97.5 % percentiles of the resampled statistic can both lie on one side of the value computed on the full
set. The bootstrap interval is then widened to reach the value ("percentile, widened to the value") rather than
reported as a range that excludes the number it qualifies; ``Interval.method`` says how each was made, and a
metric may supply its own spread instead (MAUVE's spread over its seeds at small n, see :func:`spread_interval`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence

#: key added to every record copy in a bootstrap resample: the position of its drawn unit in the resample
DRAW_KEY = "_draw"
#: key added to every record copy in a bootstrap resample: the record's index in the original ``samples``
INDEX_KEY = "_index"

_Z95 = 1.96

#: Interval.method values
NORMAL = "normal"  # mean ± 1.96·stderr
BOOTSTRAP = "bootstrap"  # seeded percentile bootstrap over prompts, widened to contain the value
SEEDS = "seeds"  # min-max of the statistic over the metric's own seeds (not a sampling interval)
POINT = "point"  # no interval: a single record, or no resamples asked for


@dataclass(frozen=True)
class Interval:
    """A point estimate with its interval and the number of records it was computed from.

    ``method`` is how the interval was made (NORMAL, BOOTSTRAP, SEEDS or POINT); ``warning`` is empty, or one
    sentence a reader must see next to the value (e.g. a sample too small for the metric): show it as a mark.
    """

    value: float
    ci_low: float
    ci_high: float
    n: int
    method: str = NORMAL
    warning: str = ""


def containing(value: float, low: float, high: float) -> tuple[float, float]:
    """(low, high) widened just enough to contain ``value`` (NaN bounds are left to the caller's checks)."""
    return min(low, value), max(high, value)


def spread_interval(value: float, values: Sequence[float], n: int, warning: str = "") -> Interval:
    """The value with the min-max range of ``values`` (the statistic recomputed under other seeds) as its
    interval, ``method`` SEEDS; the range always includes ``value`` itself."""
    import numpy as np

    arr = np.asarray([value, *values], dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"spread_interval got non-finite values: {arr.tolist()}")
    return Interval(float(value), float(arr.min()), float(arr.max()), n, SEEDS, warning)


def mean_interval(values: Sequence[float]) -> Interval:
    """Mean ± 1.96 · stderr, stderr = sample std (ddof=1) / sqrt(n); a single value has a zero-width interval.

    Raises ValueError on an empty or non-finite input: a NaN mean would silently hide a broken metric.
    """
    import numpy as np

    arr = np.asarray(list(values), dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("mean_interval needs at least one value, got none")
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise ValueError(f"mean_interval got {bad} non-finite value(s) among {arr.size}")
    n = int(arr.size)
    mean = float(arr.mean())
    if n == 1:
        return Interval(mean, mean, mean, 1, POINT)
    half = _Z95 * float(arr.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, NORMAL)


def _group_by_unit(samples: list[dict[str, Any]], unit: str) -> list[list[tuple[int, dict[str, Any]]]]:
    """Group (index, record) pairs by ``record[unit]`` (the index when missing), in first-seen order."""
    groups: dict[Hashable, list[tuple[int, dict[str, Any]]]] = {}
    for i, rec in enumerate(samples):
        key: Hashable = ("value", _hashable(rec[unit])) if unit in rec else ("index", i)
        groups.setdefault(key, []).append((i, rec))
    return list(groups.values())


def _hashable(value: Any) -> Hashable:
    """Unit values come from JSON; lists (e.g. ids) are turned into tuples so they can key a dict."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def bootstrap_interval(
    samples: list[dict[str, Any]],
    statistic: Callable[[list[dict[str, Any]]], float],
    n_resamples: int,
    seed: int,
    unit: str = "prompt_id",
    confidence: float = 0.95,
) -> Interval:
    """Percentile bootstrap of ``statistic`` over units (prompts), seeded and deterministic, widened to the value.

    ``value`` is ``statistic(samples)``. Each resample draws as many units as there are, with replacement
    (``numpy.random.default_rng(seed)``), and scores the concatenated records of the drawn units. Every record
    in a resample is a shallow copy carrying ``"_draw": k`` (k = position of its unit's draw in the resample,
    shared by all records of that draw) and ``"_index"`` (its position in ``samples``), so leave-one-out
    metrics can tell a duplicated draw from a genuinely different record. ``n`` is ``len(samples)``.
    The interval is the (alpha/2, 1 - alpha/2) percentiles of the resampled statistics, then widened to contain
    ``value`` where both percentiles fall on one side of it (a biased or skewed statistic): ``[min(low, value),
    max(high, value)]``. Exceptions from ``statistic`` propagate: dropping failed resamples would bias the interval.
    """
    import numpy as np

    if not samples:
        raise ValueError("bootstrap_interval needs at least one sample, got none")
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be >= 0, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    value = float(statistic(samples))
    if n_resamples == 0:
        return Interval(value, value, value, len(samples), POINT)

    groups = _group_by_unit(samples, unit)
    n_groups = len(groups)
    rng = np.random.default_rng(seed)
    stats = np.empty(n_resamples, dtype=float)
    for r in range(n_resamples):
        drawn = rng.integers(0, n_groups, size=n_groups)
        resample = [
            {**rec, DRAW_KEY: k, INDEX_KEY: i} for k, g in enumerate(drawn.tolist()) for i, rec in groups[g]
        ]
        stats[r] = float(statistic(resample))
    bad = int(np.count_nonzero(~np.isfinite(stats)))
    if bad:
        raise ValueError(f"bootstrap statistic was non-finite on {bad} of {n_resamples} resamples")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(stats, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    low, high = containing(value, float(low), float(high))
    return Interval(value, low, high, len(samples), BOOTSTRAP)
