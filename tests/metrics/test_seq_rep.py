"""seq-rep-n (Welleck et al.): hand-computed values on token ids."""

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
    assert resolve_params(SeqRepN.params, {})[0] == {"n": 4}
    assert SeqRepN.higher_is_better is False and SeqRepN.level == "sample"
    assert SeqRepN.requires == ("output_ids",)
    _, problems = resolve_params(SeqRepN.params, {"n": 0})
    assert problems.items
