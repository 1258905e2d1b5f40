"""Apply one metric to a set of generation records and attach its interval.

Sample-level metrics: the mean with mean ± 1.96·stderr. Corpus-level metrics: the statistic on the
whole set with a seeded percentile bootstrap over prompts, widened to contain the value. A corpus metric may
replace the bootstrap with its own spread by defining ``own_interval(records)`` (MAUVE at small n: its
spread over MAUVE seeds). Whatever the method, every interval returned here contains its value (checked).
Used by the runner and ``harness score``.
"""

from __future__ import annotations

from typing import Any

from harness.api import Metric
from harness.errors import InputError
from harness.stats import Interval, bootstrap_interval, containing, mean_interval


def check_modality(metric: Metric, records: list[dict[str, Any]], source: str) -> None:
    """Fail with one message if the records are of a modality the metric does not declare.

    A record with ``image_shape`` is an image generation; one without is text.
    """
    allowed = tuple(getattr(metric, "modalities", ("text",)))
    for i, record in enumerate(records):
        modality = "image" if record.get("image_shape") is not None else "text"
        if modality not in allowed:
            raise InputError(
                f'{source}: record {i + 1} is a generation of a{"n" if modality == "image" else ""} {modality} model, '
                f'but metric "{metric.name}" handles {"/".join(allowed)} only'
            )


def check_requirements(metric: Metric, records: list[dict[str, Any]], source: str) -> None:
    """Fail with one message if the records' modality is not the metric's, or a record lacks a field it reads."""
    check_modality(metric, records, source)
    for i, record in enumerate(records):
        for field_name in metric.requires:
            if record.get(field_name) is None:
                raise InputError(
                    f'{source}: record {i + 1} has no "{field_name}", which metric "{metric.name}" needs '
                    f"(it reads: {', '.join(metric.requires)})"
                )


def _bootstrap_contributions(values: list[float], records: list[dict[str, Any]], bootstrap: int, seed: int) -> Interval:
    """Bootstrap over prompts of per-text contributions computed once against the full corpus.

    Recomputing a leave-one-out statistic (Self-BLEU) inside a resample shrinks each text's reference
    set to the ~63% distinct prompts drawn and biases the interval low; resampling the contributions
    keeps the interval centred on the reported value.
    """
    units = [{"prompt_id": r.get("prompt_id", i), "_value": v} for i, (r, v) in enumerate(zip(records, values))]
    return bootstrap_interval(units, lambda rs: sum(r["_value"] for r in rs) / len(rs), n_resamples=bootstrap, seed=seed)


def point_value(metric: Metric, records: list[dict[str, Any]]) -> float:
    """The metric's value on a set of records, without an interval (used per sampling draw)."""
    if metric.level == "sample":
        values = metric.score_samples(records)
        return sum(values) / len(values)
    per_text = getattr(metric, "score_per_text", None)
    if callable(per_text):
        values = per_text(records)
        return sum(values) / len(values)
    return metric.score_corpus(records)


def _own_interval(metric: Metric, records: list[dict[str, Any]]) -> Interval | None:
    """The metric's own interval, if it defines ``own_interval(records)`` and that returns one.

    The hook returns None (use the bootstrap) or a mapping with ``ci_low``, ``ci_high``, ``method`` and optionally
    ``warning``; plugins need nothing from harness.stats. The value is ``score_corpus(records)``, as always; the
    bounds are widened to it if they miss it.
    """
    own = getattr(metric, "own_interval", None)
    if not callable(own):
        return None
    spec = own(records)
    if spec is None:
        return None
    value = float(metric.score_corpus(records))
    low, high = containing(value, float(spec["ci_low"]), float(spec["ci_high"]))
    return Interval(value, low, high, len(records), str(spec["method"]), str(spec.get("warning") or ""))


def score_metric(metric: Metric, records: list[dict[str, Any]], bootstrap: int, seed: int) -> Interval:
    interval = _score(metric, records, bootstrap, seed)
    if not interval.ci_low <= interval.value <= interval.ci_high:  # NaN fails too
        raise ValueError(
            f'metric "{metric.name}": interval [{interval.ci_low}, {interval.ci_high}] does not contain its value '
            f"{interval.value} ({interval.method})"
        )
    return interval


def _score(metric: Metric, records: list[dict[str, Any]], bootstrap: int, seed: int) -> Interval:
    if not records:
        raise InputError(f'metric "{metric.name}": no generations to score')
    if metric.level == "sample":
        return mean_interval(metric.score_samples(records))
    if metric.level == "corpus":
        own = _own_interval(metric, records)
        if own is not None:
            return own
        if getattr(metric, "max_bootstrap", None) is not None:  # expensive corpus metrics cap the resamples
            bootstrap = min(bootstrap, metric.max_bootstrap)
        per_text = getattr(metric, "score_per_text", None)
        if callable(per_text):
            return _bootstrap_contributions(per_text(records), records, bootstrap, seed)
        return bootstrap_interval(records, metric.score_corpus, n_resamples=bootstrap, seed=seed)
    raise InputError(f'metric "{metric.name}" declares an unknown level {metric.level!r} (use "sample" or "corpus")')
