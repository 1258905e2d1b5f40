"""TTR over the last `window` generated ids (hyperfitting repo definition)."""

from __future__ import annotations

import pytest

from harness.params import resolve_params
from harness_plugins.metrics.ttr import TypeTokenRatio


def _score(ids_list: list[list[int]], **config) -> list[float]:
    return TypeTokenRatio(config).score_samples([{"output_ids": ids} for ids in ids_list])


def test_ttr_hand_values():
    # [1,1,2,3]: 3 types / 4 tokens = 0.75; all distinct = 1.0; one id repeated = 1/5
    assert _score([[1, 1, 2, 3], [4, 5, 6], [9, 9, 9, 9, 9]]) == [0.75, 1.0, 0.2]


def test_ttr_window_keeps_the_tail():
    ids = [5, 5, 5, 1, 2, 3]
    assert _score([ids], window=3) == [1.0]  # [1,2,3]
    assert _score([ids], window=5) == [0.8]  # [5,5,1,2,3]: 4/5
    assert _score([ids], window=6) == [pytest.approx(4 / 6)]  # whole: {5,1,2,3}
    assert _score([ids], window=100) == [pytest.approx(4 / 6)]  # shorter than window: used whole


def test_ttr_default_window_is_96():
    # 4 distinct ids then 96 copies of 7: the last 96 ids are all 7 → 1/96
    ids = [0, 1, 2, 3] + [7] * 96
    assert _score([ids]) == [pytest.approx(1 / 96)]
    assert dict(resolve_params(TypeTokenRatio.params, {})[0]) == {"window": 96, "unit": "token-ids"}


def test_ttr_empty_output_is_not_scored():
    assert _score([[]]) == []
    assert _score([[1, 1], [], [1, 2]]) == [0.5, 1.0]


def test_ttr_a_row_that_stopped_at_eos_needs_a_full_window():
    # under eval.stop_at_eos a row that stopped early has a higher TTR only because it is short: not scored
    recs = [
        {"output_ids": [1, 2, 1, 2, 1, 2]},  # full length (ran to new_tokens): 2/4 over the last 4
        {"output_ids": [7, 8, 9], "stopped_at_eos": True},  # stopped before a full window: excluded
        {"output_ids": [3, 3, 4, 4, 5], "stopped_at_eos": True},  # stopped, but a full window: 3/4
    ]
    assert TypeTokenRatio({"window": 4}).score_samples(recs) == [0.5, 0.75]  # not [0.5, 1.0, 0.75]
    # a stopped row with exactly `window` tokens has a full window
    assert TypeTokenRatio({"window": 3}).score_samples(recs) == [pytest.approx(2 / 3), 1.0, pytest.approx(2 / 3)]
    # a row that ran its full length but is shorter than the window (new_tokens < window) is used whole
    assert TypeTokenRatio({"window": 96}).score_samples(recs[:1]) == [pytest.approx(2 / 6)]
    # with unit=words the same rule counts words
    words = [{"output_text": "a b", "stopped_at_eos": True}, {"output_text": "a a b"}]
    assert TypeTokenRatio({"window": 3, "unit": "words"}).score_samples(words) == [pytest.approx(2 / 3)]


def test_ttr_params_schema():
    _, problems = resolve_params(TypeTokenRatio.params, {"window": 0})
    assert problems.items and problems.items[0][0] == "window"
    _, problems = resolve_params(TypeTokenRatio.params, {"window": 32})
    assert not problems.items


def test_ttr_metadata():
    assert TypeTokenRatio.name == "ttr"
    assert TypeTokenRatio.level == "sample"
    assert TypeTokenRatio.higher_is_better is True
    assert TypeTokenRatio.requires == ("output_ids",)
    assert "window" in TypeTokenRatio.definition


def test_ttr_word_unit_uses_whitespace_words_of_output_text():
    # "a b a  c\n" → words a,b,a,c: 3 types / 4 = 0.75; window 2 → "a c": 1.0; output_ids are ignored
    rec = {"output_text": "a b a  c\n", "output_ids": [1, 1, 1]}
    assert TypeTokenRatio({"unit": "words"}).score_samples([rec]) == [0.75]
    assert TypeTokenRatio({"unit": "words", "window": 2}).score_samples([rec]) == [1.0]
    # the default still reads token ids: 1 type / 3
    assert TypeTokenRatio().score_samples([rec]) == [pytest.approx(1 / 3)]
    assert TypeTokenRatio({"unit": "words"}).requires == ("output_text",)
    _, problems = resolve_params(TypeTokenRatio.params, {"unit": "chars"})
    assert problems.items and problems.items[0][0] == "unit"
