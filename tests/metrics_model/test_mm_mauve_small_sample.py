"""mauve below `small_n` texts per side: the value, marked, with its spread over MAUVE seeds as the interval."""

from __future__ import annotations

import pytest
from harness_plugins.metrics.model_based import Mauve
from harness_plugins.metrics.model_based import mauve_metric
from harness_plugins.metrics.model_based.mauve_metric import SMALL_N, SPREAD_SEEDS
from mm_helpers import use_table
from test_mm_mauve import corpus, metric

from harness.scoring import score_metric


@pytest.fixture(autouse=True)
def _own_warned_sizes(monkeypatch):
    """The once-per-size log warning keeps a process-wide set: leave it as the other mauve tests expect."""
    monkeypatch.setattr(mauve_metric, "_WARNED_SIZES", set())


def direct_mauve(table: dict, records: list[dict], seed: int) -> float:
    import mauve
    import numpy as np

    p = np.asarray([table[r["output_text"]] for r in records], dtype=np.float32)
    q = np.asarray([table[r["reference_text"]] for r in records], dtype=np.float32)
    return mauve.compute_mauve(p_features=p, q_features=q, device_id=-1, verbose=False, seed=seed).mauve


def test_documented_defaults():
    assert SMALL_N == 100 and SPREAD_SEEDS == 10
    params = {p.name: p.default for p in Mauve.params}
    assert params["small_n"] == SMALL_N and params["spread_seeds"] == SPREAD_SEEDS
    assert "small_n" in Mauve.definition and "spread_seeds" in Mauve.definition


def test_small_sample_reports_the_spread_over_mauve_seeds(monkeypatch):
    table, records = corpus(n=12, shift=0.5, seed=1)
    cls = use_table(monkeypatch, table)
    interval = score_metric(metric(spread_seeds=4), records, bootstrap=50, seed=0)
    by_seed = [direct_mauve(table, records, 25 + k) for k in range(4)]
    assert interval.value == by_seed[0], "the value is MAUVE at the configured seed, as without the spread"
    assert (interval.ci_low, interval.ci_high) == (min(by_seed), max(by_seed))
    assert interval.ci_low <= interval.value <= interval.ci_high
    assert interval.ci_low < interval.ci_high, "at 12 texts the seeds disagree: the spread is real"
    assert interval.method == "seeds" and interval.n == 12
    assert interval.warning.startswith("small sample: 12 texts per side (< 100)")
    assert len(cls.calls) == 1, "features are computed once; only PCA + k-means rerun per seed"


def test_at_or_above_small_n_the_prompt_bootstrap_is_used(monkeypatch):
    table, records = corpus(n=20)
    use_table(monkeypatch, table)
    interval = score_metric(metric(small_n=20), records, bootstrap=8, seed=0)
    assert interval.method == "bootstrap" and interval.warning == ""
    assert interval.ci_low <= interval.value <= interval.ci_high


@pytest.mark.parametrize("shift", [0.0, 1.0, 2.0])
def test_every_small_sample_interval_contains_its_value(monkeypatch, shift):
    table, records = corpus(n=12, shift=shift, seed=0)
    use_table(monkeypatch, table)
    for small_n in (2, 100):  # forced bootstrap, then the seed spread
        interval = score_metric(metric(small_n=small_n), records, bootstrap=20, seed=0)
        assert interval.ci_low <= interval.value <= interval.ci_high, (small_n, interval)
