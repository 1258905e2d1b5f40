"""Self-BLEU with tokenize=ids: BLEU over token ids, equal to sacrebleu on the space-joined id strings."""

from __future__ import annotations

import math
import random

import pytest

from harness.params import resolve_params
from harness_plugins.metrics.self_bleu import SelfBLEU

sacrebleu = pytest.importorskip("sacrebleu")
from sacrebleu.metrics.bleu import BLEU  # noqa: E402


def _recs(id_lists, prompt_ids=None):
    pids = prompt_ids or [f"p{i}" for i in range(len(id_lists))]
    return [{"prompt_id": pid, "output_ids": ids} | ({} if ids else {"stopped_at_eos": True})
            for pid, ids in zip(pids, id_lists)]  # fmt: skip


def test_hand_example_on_ids():
    # the "a b c" / "a b d" / "e f" example of test_self_bleu.py with ids: [1,2,3], [1,2,4], [5,6], BLEU-2
    # [1,2,3] vs {[1,2,4], [5,6]}: unigrams 2/3, bigrams 1/2, BP 1 → 100/sqrt(3); same for [1,2,4]; [5,6] → 0
    m = SelfBLEU({"tokenize": "ids", "max_order": 2})
    recs = _recs([[1, 2, 3], [1, 2, 4], [5, 6]])
    assert m.score_per_text(recs) == pytest.approx([100 / math.sqrt(3), 100 / math.sqrt(3), 0.0], abs=1e-12)
    # id 12 is one token, not "1" followed by "2": [12] vs [1, 2] shares nothing
    assert SelfBLEU({"tokenize": "ids"}).score_per_text(_recs([[12], [1, 2]])) == [0.0, 0.0]


def test_ids_mode_reads_output_ids_and_ignores_output_text():
    m = SelfBLEU({"tokenize": "ids"})
    assert m.requires == ("output_ids",)
    recs = [{"prompt_id": "a", "output_ids": [1, 2, 3, 4], "output_text": "x"},
            {"prompt_id": "b", "output_ids": [1, 2, 3, 4], "output_text": "y"}]  # fmt: skip
    assert m.score_per_text(recs) == pytest.approx([100.0, 100.0], abs=1e-12)
    with pytest.raises(TypeError, match="output_ids"):
        m.score_per_text([{"output_ids": "1 2"}, {"output_ids": [1]}])
    assert not resolve_params(SelfBLEU.params, {"tokenize": "ids"})[1].items


@pytest.mark.parametrize("smooth", ["floor", "exp"])
def test_matches_sacrebleu_on_random_id_corpora(smooth):
    rng = random.Random(f"ids/{smooth}")
    for _ in range(25):
        n = rng.randint(2, 8)
        ids = [[rng.randrange(12) * rng.choice([1, 7, 101]) for _ in range(rng.randint(0, 14))] for _ in range(n)]
        pids = [f"p{rng.randint(0, n - 1)}" for _ in ids]
        pids[0], pids[1] = "first", "second"
        max_order = rng.choice([1, 2, 4])
        bleu = BLEU(tokenize="none", smooth_method=smooth, smooth_value=0.1, max_ngram_order=max_order,
                    effective_order=True)  # fmt: skip
        ids[0] = ids[0] or [5]  # two prompts with a non-empty text
        ids[1] = ids[1] or [7]
        strings = [" ".join(map(str, x)) for x in ids]
        # an empty continuation is neither hypothesis nor reference; the rest are scaled by N / (non-empty)
        scale = len(ids) / sum(1 for x in ids if x)
        expected = [
            bleu.sentence_score(h, [s for s, p in zip(strings, pids) if s and p != pids[i]]).score * scale if h else 0.0
            for i, h in enumerate(strings)
        ]
        got = SelfBLEU({"tokenize": "ids", "smooth": smooth, "max_order": max_order}).score_per_text(_recs(ids, pids))
        assert got == pytest.approx(expected, abs=1e-9, rel=0)
