"""An interval always contains its value: a percentile bootstrap of a biased statistic is widened to reach it,
a metric's own interval is too, and scoring refuses an interval that still misses its value."""

from __future__ import annotations

import pytest

from harness.api import Metric
from harness.scoring import score_metric
from harness.stats import BOOTSTRAP, SEEDS, bootstrap_interval, spread_interval


def distinct_share(records: list[dict]) -> float:
    """Share of distinct prompts: 1.0 on the full set, about 0.65 on any with-replacement resample of it."""
    return len({r["prompt_id"] for r in records}) / len(records)


RECORDS = [{"prompt_id": f"p{i}", "output_text": f"text {i}"} for i in range(12)]


def test_a_biased_bootstrap_is_widened_to_contain_its_value():
    interval = bootstrap_interval(RECORDS, distinct_share, n_resamples=200, seed=0)
    assert interval.value == 1.0
    # every resample repeats some prompt, so both percentiles lie below 1.0: the plain percentile interval
    # would be about [0.5, 0.8], excluding the value; widened, it reaches it
    assert interval.ci_low < 0.9
    assert interval.ci_low <= interval.value <= interval.ci_high
    assert interval.ci_high == 1.0
    assert interval.method == BOOTSTRAP


class DistinctShare(Metric):
    name = "distinct-share"
    level = "corpus"
    requires = ("prompt_id",)

    def score_corpus(self, samples: list[dict]) -> float:
        return distinct_share(samples)


def test_scored_corpus_metric_contains_its_value():
    interval = score_metric(DistinctShare({}), RECORDS, bootstrap=100, seed=1)
    assert interval.ci_low <= interval.value == 1.0 <= interval.ci_high


class OwnSpread(DistinctShare):
    name = "own-spread"
    calls = 0

    def own_interval(self, samples: list[dict]) -> dict | None:
        type(self).calls += 1
        if len(samples) >= 10:
            return None
        return {"ci_low": 0.2, "ci_high": 0.4, "method": "seeds", "warning": "small sample: few texts"}


def test_a_metrics_own_interval_replaces_the_bootstrap_and_is_widened_too():
    small = score_metric(OwnSpread({}), RECORDS[:5], bootstrap=100, seed=0)
    assert (small.value, small.ci_low, small.ci_high) == (1.0, 0.2, 1.0)
    assert small.method == "seeds" and small.warning == "small sample: few texts"
    assert small.n == 5
    large = score_metric(OwnSpread({}), RECORDS, bootstrap=100, seed=0)
    assert large.method == BOOTSTRAP and large.warning == ""


class NanOnFullSet(DistinctShare):
    name = "nan-on-full-set"

    def score_corpus(self, samples: list[dict]) -> float:
        return float("nan") if len({r["prompt_id"] for r in samples}) == len(samples) else 0.5


def test_an_interval_that_cannot_contain_its_value_is_refused():
    with pytest.raises(ValueError, match="does not contain its value"):
        score_metric(NanOnFullSet({}), RECORDS, bootstrap=20, seed=0)


def test_spread_interval_includes_the_value_itself():
    interval = spread_interval(0.9, [0.3, 0.5], n=12, warning="w")
    assert (interval.value, interval.ci_low, interval.ci_high, interval.n) == (0.9, 0.3, 0.9, 12)
    assert interval.method == SEEDS and interval.warning == "w"
    with pytest.raises(ValueError):
        spread_interval(0.5, [float("nan")], n=3)
