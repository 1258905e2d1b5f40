"""ttr-curve: windowed TTR along each continuation, its per-text mean and the per-position curve."""

from __future__ import annotations

import pytest

from harness.params import resolve_params
from harness_plugins.metrics.ttr_curve import TTRCurve, window_positions

RECS = [
    {"output_ids": [1, 2, 3, 1, 2, 3, 4, 5]},
    {"output_ids": [7, 7]},
    {"output_ids": [1, 1, 1, 1, 2]},
]


def test_positions_grid():
    assert window_positions(8, 4, 2) == [4, 6, 8]
    assert window_positions(9, 4, 2) == [4, 6, 8]  # 10 > 9: the tail after the last grid point is not measured
    assert window_positions(2, 4, 2) == [2]  # shorter than the window: one point, the whole text
    assert window_positions(0, 4, 2) == [0]


def test_hand_values_per_text():
    # window 4, stride 2
    # text 1 (L=8): p=4 [1,2,3,1] 3/4; p=6 [3,1,2,3] 3/4; p=8 [2,3,4,5] 4/4 → (0.75+0.75+1)/3 = 5/6
    # text 2 (L=2 < 4): the whole text [7,7] → 1/2
    # text 3 (L=5): p=4 [1,1,1,1] → 1/4 (p=6 > 5)
    m = TTRCurve({"window": 4, "stride": 2})
    assert m.score_samples(RECS) == pytest.approx([5 / 6, 0.5, 0.25], abs=1e-15)


def test_curve_averages_the_texts_that_reach_each_position():
    # p=4: texts 1 and 3 → (0.75 + 0.25)/2 = 0.5; p=6, p=8: text 1 only → 0.75, 1.0; text 2 is too short
    assert TTRCurve({"window": 4, "stride": 2}).curve(RECS) == [(4, 0.5), (6, 0.75), (8, 1.0)]


def test_defaults_window_96_stride_16():
    assert resolve_params(TTRCurve.params, {})[0] == {"window": 96, "stride": 16, "unit": "token-ids"}
    # 128 distinct ids then the positions are 96, 112, 128, each window all distinct → 1.0
    m = TTRCurve()
    assert m.score_samples([{"output_ids": list(range(128))}]) == [1.0]
    # 96 distinct ids then 32 copies of 0: p=96 → 1; p=112 window ids[16:112] = 80 distinct + 16 zeros, where
    # id 0 is not among ids 16..95 → 81/96; p=128: ids[32:128] = 64 distinct + 32 zeros → 65/96
    ids = list(range(96)) + [0] * 32
    assert m.score_samples([{"output_ids": ids}]) == [pytest.approx((1 + 81 / 96 + 65 / 96) / 3, abs=1e-15)]
    assert m.curve([{"output_ids": ids}]) == [(96, 1.0), (112, 81 / 96), (128, 65 / 96)]


def test_empty_and_early_stopped_continuations_are_not_scored_and_metadata():
    assert TTRCurve().score_samples([{"output_ids": []}]) == []
    recs = [
        {"output_ids": [1, 2, 1, 2, 1, 2]},  # p = 4, 6: 0.5, 0.5
        {"output_ids": [7, 8, 9], "stopped_at_eos": True},  # stopped before a full window: not scored
        {"output_ids": [1, 2, 3, 4, 5], "stopped_at_eos": True},  # stopped at 5: p = 4 only → 1.0
    ]
    assert TTRCurve({"window": 4, "stride": 2}).score_samples(recs) == [0.5, 1.0]
    # a full-length row shorter than the window (new_tokens < window) is still used whole
    assert TTRCurve({"window": 96}).score_samples([{"output_ids": [1, 1]}]) == [0.5]
    assert TTRCurve.level == "sample" and TTRCurve.higher_is_better is True
    assert TTRCurve.requires == ("output_ids",)
    _, problems = resolve_params(TTRCurve.params, {"stride": 0})
    assert problems.items


def test_word_unit_counts_words():
    # the words of RECS' texts mirror their ids ("w1 w2 w3 w1 ..."), so unit=words gives the same hand values:
    # window 4, stride 2 → [5/6, 1/2, 1/4] (see test_hand_values_per_text); the output_ids are ignored
    recs = [{"output_text": " ".join(f"w{i}" for i in r["output_ids"]), "output_ids": [0]} for r in RECS]
    m = TTRCurve({"window": 4, "stride": 2, "unit": "words"})
    assert m.requires == ("output_text",)
    assert m.score_samples(recs) == pytest.approx([5 / 6, 0.5, 0.25], abs=1e-15)
    assert m.curve(recs) == [(4, 0.5), (6, 0.75), (8, 1.0)]
    # "a b, a b" → a, b,, a, b: 3 types in the window of 4 (punctuation attached) → 0.75
    assert TTRCurve({"window": 4, "unit": "words"}).score_samples([{"output_text": "a b, a b"}]) == [0.75]
