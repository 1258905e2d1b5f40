"""seq-rep-n (Welleck et al.): hand-computed values on token ids, and on words with unit=words."""

from __future__ import annotations

import pytest

from harness.params import resolve_params
from harness_plugins.metrics.seq_rep import SeqRepN


def _score(ids_list, **config):
    return SeqRepN(config).score_samples([{"output_ids": ids} for ids in ids_list])


def test_hand_values():
    # [1,2,1,2,1,2], n=2: bigrams 12 21 12 21 12 → 5 total, 2 distinct → 1 − 2/5 = 0.6
    assert _score([[1, 2, 1, 2, 1, 2]], n=2) == [pytest.approx(0.6, abs=1e-15)]
    # same text, default n=4: 1212 2121 1212 → 3 total, 2 distinct → 1/3
    assert _score([[1, 2, 1, 2, 1, 2]]) == [pytest.approx(1 / 3, abs=1e-15)]
    # all distinct → 0; shorter than n: no n-grams, not scored (0.0 would credit it); one repeated id, n=1: 0.8
    assert _score([[1, 2, 3, 4, 5, 6], [1, 2, 3]]) == [0.0]
    assert _score([[], [1, 2, 3]]) == []
    assert _score([[9, 9, 9, 9, 9]], n=1) == [pytest.approx(0.8, abs=1e-15)]


def test_metadata_and_params():
    assert resolve_params(SeqRepN.params, {})[0] == {"n": 4, "unit": "token-ids"}
    assert SeqRepN.higher_is_better is False and SeqRepN.level == "sample"
    assert SeqRepN.requires == ("output_ids",)
    _, problems = resolve_params(SeqRepN.params, {"n": 0})
    assert problems.items


def test_word_unit_hand_values():
    # "the cat the cat the\n" → words the cat the cat the; n=2: bigrams (the cat) (cat the) (the cat) (cat the)
    # → 4 total, 2 distinct → 1 − 2/4 = 0.5; n=4: (the cat the cat) (cat the cat the) → 2 distinct of 2 → 0.0
    # "A a a. a" → case-sensitive, punctuation attached: A, a, a., a are 3 distinct unigrams of 4 → n=1: 0.25
    # "one two" has 1 bigram: n=2 → 0.0; fewer words than n → not scored; output_ids are ignored
    recs = [
        {"output_text": "the cat the cat the\n", "output_ids": [1, 1, 1, 1]},
        {"output_text": "one two", "output_ids": [7, 7, 7]},
        {"output_text": "solo"},
    ]
    assert SeqRepN({"n": 2, "unit": "words"}).score_samples(recs) == [0.5, 0.0]
    assert SeqRepN({"n": 4, "unit": "words"}).score_samples(recs) == [0.0]
    assert SeqRepN({"n": 1, "unit": "words"}).score_samples([{"output_text": "A a a. a"}]) == [0.25]
    # the default unit still reads output_ids: [1,1,1,1] n=2 → 1 − 1/3; [7,7,7] → 1 − 1/2
    assert SeqRepN({"n": 2}).score_samples(recs[:2]) == [pytest.approx(2 / 3, abs=1e-15), 0.5]


def test_word_unit_reads_only_output_text():
    assert SeqRepN({"unit": "words"}).requires == ("output_text",)
    assert SeqRepN().requires == ("output_ids",)
    with pytest.raises(TypeError, match="output_text of record 0"):
        SeqRepN({"unit": "words"}).score_samples([{"output_ids": [1, 2, 3, 4]}])
