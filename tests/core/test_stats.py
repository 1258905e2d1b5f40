"""Interval helpers: the normal interval of a mean and the seeded prompt-level bootstrap."""

from __future__ import annotations

import dataclasses
import math

import pytest

from harness.stats import POINT, Interval, bootstrap_interval, mean_interval


def _mean_of(key: str):
    def stat(records: list[dict]) -> float:
        return sum(r[key] for r in records) / len(records)

    return stat


# ------------------------------------------------------------------ mean_interval


def test_mean_interval_hand_computed():
    # values 1,2,3,4: mean 2.5; sample var (ddof=1) = (2.25+0.25+0.25+2.25)/3 = 5/3;
    # stderr = sqrt(5/3)/sqrt(4) = 0.6454972...; half width = 1.96 * stderr = 1.2651745...
    iv = mean_interval([1.0, 2.0, 3.0, 4.0])
    half = 1.96 * math.sqrt(5 / 3) / 2
    assert iv.value == pytest.approx(2.5)
    assert iv.ci_low == pytest.approx(2.5 - half)
    assert iv.ci_high == pytest.approx(2.5 + half)
    assert iv.n == 4
    assert half == pytest.approx(1.2651745, abs=1e-7)


def test_mean_interval_single_value_has_zero_width():
    assert mean_interval([0.3]) == Interval(0.3, 0.3, 0.3, 1, POINT)


def test_mean_interval_constant_values_zero_width():
    iv = mean_interval([2.0, 2.0, 2.0])
    assert (iv.value, iv.ci_low, iv.ci_high, iv.n) == (2.0, 2.0, 2.0, 3)


def test_mean_interval_rejects_empty_and_nan():
    with pytest.raises(ValueError, match="at least one"):
        mean_interval([])
    with pytest.raises(ValueError, match="non-finite"):
        mean_interval([1.0, float("nan")])


def test_interval_is_frozen():
    iv = mean_interval([1.0, 2.0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        iv.value = 3.0  # type: ignore[misc]


# ------------------------------------------------------------------ bootstrap_interval


def _samples(n_prompts: int = 20, per_prompt: int = 1) -> list[dict]:
    return [
        {"prompt_id": f"p{p}", "x": float((p * 7919 + s * 31) % 17)}
        for p in range(n_prompts)
        for s in range(per_prompt)
    ]


def test_bootstrap_deterministic_per_seed():
    samples = _samples()
    a = bootstrap_interval(samples, _mean_of("x"), n_resamples=200, seed=3)
    b = bootstrap_interval(samples, _mean_of("x"), n_resamples=200, seed=3)
    c = bootstrap_interval(samples, _mean_of("x"), n_resamples=200, seed=4)
    assert a == b
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)


def test_bootstrap_contains_value_for_mean():
    samples = _samples()
    iv = bootstrap_interval(samples, _mean_of("x"), n_resamples=500, seed=0)
    assert iv.value == pytest.approx(_mean_of("x")(samples))
    assert iv.ci_low < iv.value < iv.ci_high
    assert iv.n == len(samples)
    # a 95% percentile interval of a mean is close to the normal one for 20 well-behaved values
    normal = mean_interval([s["x"] for s in samples])
    assert iv.ci_high - iv.ci_low == pytest.approx(normal.ci_high - normal.ci_low, rel=0.35)


def test_bootstrap_zero_resamples_is_point():
    samples = _samples()
    calls = []

    def stat(records: list[dict]) -> float:
        calls.append(len(records))
        return 1.5

    assert bootstrap_interval(samples, stat, n_resamples=0, seed=0) == Interval(1.5, 1.5, 1.5, len(samples), POINT)
    assert calls == [len(samples)]


def test_bootstrap_value_uses_original_records():
    samples = _samples(5)
    seen: list[list[dict]] = []

    def stat(records: list[dict]) -> float:
        seen.append(records)
        return 0.0

    bootstrap_interval(samples, stat, n_resamples=3, seed=0)
    assert seen[0] is samples
    assert all("_draw" not in r for r in samples)  # copies are annotated, never the caller's dicts


def test_bootstrap_resamples_whole_prompts_with_draw_keys():
    samples = _samples(n_prompts=6, per_prompt=3)
    resamples: list[list[dict]] = []

    def stat(records: list[dict]) -> float:
        resamples.append(records)
        return float(len(records))

    bootstrap_interval(samples, stat, n_resamples=50, seed=1)
    for rs in resamples[1:]:
        assert len(rs) == len(samples)  # 6 prompts drawn, 3 records each
        by_draw: dict[int, list[dict]] = {}
        for r in rs:
            by_draw.setdefault(r["_draw"], []).append(r)
        assert sorted(by_draw) == list(range(6))
        for k, group in by_draw.items():
            assert len(group) == 3 and len({r["prompt_id"] for r in group}) == 1
            # _index points back at the original record
            assert all(samples[r["_index"]]["x"] == r["x"] for r in group)
    # with 50 resamples of 6 prompts, some prompt is surely drawn twice: distinct _draw, same prompt
    assert any(len({r["prompt_id"] for r in rs}) < 6 for rs in resamples[1:])


def test_bootstrap_falls_back_to_index_without_unit():
    samples = [{"x": float(i)} for i in range(10)]
    sizes = []

    def stat(records: list[dict]) -> float:
        sizes.append(len({r.get("_draw") for r in records}))
        return _mean_of("x")(records)

    iv = bootstrap_interval(samples, stat, n_resamples=20, seed=0)
    assert iv.value == 4.5
    assert sizes[1:] == [10] * 20  # every record is its own unit


def test_bootstrap_confidence_widens_interval():
    samples = _samples(30)
    narrow = bootstrap_interval(samples, _mean_of("x"), 400, seed=2, confidence=0.5)
    wide = bootstrap_interval(samples, _mean_of("x"), 400, seed=2, confidence=0.99)
    assert wide.ci_low < narrow.ci_low < narrow.ci_high < wide.ci_high


def test_bootstrap_rejects_bad_arguments():
    with pytest.raises(ValueError):
        bootstrap_interval([], _mean_of("x"), 10, seed=0)
    with pytest.raises(ValueError):
        bootstrap_interval(_samples(), _mean_of("x"), -1, seed=0)
    with pytest.raises(ValueError):
        bootstrap_interval(_samples(), _mean_of("x"), 10, seed=0, confidence=1.0)
