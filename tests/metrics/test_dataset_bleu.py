"""dataset-bleu: hand values, exact agreement with sacrebleu against the whole training set, and its errors."""

from __future__ import annotations

import math
import random

import pytest

from harness.api import MetricContext
from harness.params import resolve_params
from harness_plugins.metrics.dataset_bleu import DatasetBLEU

sacrebleu = pytest.importorskip("sacrebleu")
from sacrebleu.metrics.bleu import BLEU  # noqa: E402


def _metric(train, codec=None, **config):
    m = DatasetBLEU(config)
    m.context = MetricContext(train_sequences=train, codec=codec)
    return m


def _recs(id_lists):
    return [{"prompt_id": f"p{i}", "output_ids": ids} for i, ids in enumerate(id_lists)]


def test_hand_values():
    # training set {[1,2,3,4], [1,2]}, BLEU-2, floor 0.1
    # [1,2,3]: unigrams 3/3, bigrams 12 23 → 2/2; hyp len 3, ref lens 4 and 2 both 1 away → the shorter (2),
    #   BP = 1 → 100
    # [2,1]: unigrams 2/2, bigram 21 unseen → floor 0.1/1 → 100·sqrt(1 · 0.1) = 31.6227766...; len 2 = ref 2
    # [9]: no unigram match → 0
    m = _metric([[1, 2, 3, 4], [1, 2]], max_order=2)
    scores = m.score_samples(_recs([[1, 2, 3], [2, 1], [9]]))
    assert scores == pytest.approx([100.0, 100 * math.sqrt(0.1), 0.0], abs=1e-12)


def test_clipping_by_the_largest_count_in_one_reference():
    # hyp [5,5,5] vs {[5,5], [5]}: unigram 5 ×3 clipped by max(2, 1) = 2 → 2/3 (not 3/3: counts are not summed
    # over references); bigram 55 ×2 clipped by 1 → 1/2; hyp longer than every ref → BP 1 → 100·sqrt(1/3)
    m = _metric([[5, 5], [5]], max_order=2)
    assert m.score_samples(_recs([[5, 5, 5]])) == [pytest.approx(100 / math.sqrt(3), abs=1e-12)]


def test_brevity_penalty_from_the_closest_training_length():
    # hyp [1,2] vs {[1,2,3,4,5,6]}: all n-grams match, BP = exp(1 − 6/2) = e^-2
    m = _metric([[1, 2, 3, 4, 5, 6]], max_order=2, brevity_penalty=True)
    assert m.score_samples(_recs([[1, 2]])) == [pytest.approx(100 * math.exp(-2), abs=1e-12)]
    # by default there is no brevity penalty: the n-gram precisions alone (a verbatim copy scores 100)
    assert _metric([[1, 2, 3, 4, 5, 6]], max_order=2).score_samples(_recs([[1, 2]])) == [pytest.approx(100.0, abs=1e-12)]


def test_without_brevity_penalty_a_short_copy_is_not_scaled_by_a_constant():
    # the case: 96-token continuations against 256-token training sequences. With BP every score is
    # multiplied by exp(1 − 256/96) ≈ 0.189, so a verbatim 96-token copy scores ≈ 18.9 instead of 100.
    rng = random.Random(96)
    train = [[rng.randrange(5000) for _ in range(256)] for _ in range(4)]
    copy, fresh = train[2][50:146], [rng.randrange(5000, 6000) for _ in range(96)]
    with_bp = _metric(train, brevity_penalty=True).score_samples(_recs([copy, fresh]))
    without = _metric(train).score_samples(_recs([copy, fresh]))
    assert with_bp[0] == pytest.approx(100 * math.exp(1 - 256 / 96), abs=1e-9)
    assert without[0] == pytest.approx(100.0, abs=1e-9)
    assert without[1] == with_bp[1] == 0.0


def test_empty_continuations_are_not_scored():
    m = _metric([[1, 2, 3, 4]], max_order=2)
    assert m.score_samples(_recs([[1, 2, 3], [], [9, 9]])) == m.score_samples(_recs([[1, 2, 3], [9, 9]]))
    assert len(m.score_samples(_recs([[1, 2, 3], [], [9, 9]]))) == 2
    assert m.score_samples(_recs([[]])) == []


def _sacrebleu(bleu, hyp, refs, brevity_penalty):
    """sacrebleu's sentence BLEU; without the brevity penalty, that score divided by sacrebleu's own BP."""
    score = bleu.sentence_score(hyp, refs)
    return score.score if brevity_penalty else score.score / score.bp


@pytest.mark.parametrize("brevity_penalty", [False, True])
@pytest.mark.parametrize("smooth", ["floor", "none", "add-k", "exp"])
def test_matches_sacrebleu_on_random_cases(smooth, brevity_penalty):
    rng = random.Random(f"dataset-bleu/{smooth}")
    for _ in range(25):
        vocab = rng.randint(2, 9)
        train = [[rng.randrange(vocab) for _ in range(rng.randint(0, 20))] for _ in range(rng.randint(1, 12))]
        hyps = [[rng.randrange(vocab + 2) for _ in range(rng.randint(0, 15))] for _ in range(rng.randint(1, 6))]
        if rng.random() < 0.5 and train[0]:
            hyps.append(list(train[0]))  # a verbatim copy
        max_order = rng.choice([1, 2, 3, 4, 6])
        smooth_value = rng.choice([0.1, 1.0])
        bleu = BLEU(tokenize="none", smooth_method=smooth, smooth_value=smooth_value, max_ngram_order=max_order,
                    effective_order=True)  # fmt: skip
        refs = [" ".join(map(str, r)) for r in train]
        expected = [
            _sacrebleu(bleu, " ".join(map(str, h)), refs, brevity_penalty)
            for h in hyps if h  # an empty continuation is not scored
        ]
        m = _metric(train, max_order=max_order, smooth=smooth, smooth_value=smooth_value, brevity_penalty=brevity_penalty)
        assert m.score_samples(_recs(hyps)) == pytest.approx(expected, abs=1e-9, rel=0), (train, hyps)


class _WordCodec:
    """A toy codec: token id i is the i-th word."""

    words = ["The", "cat", "sat", "on", "the", "mat", ".", "A", "dog", "ran", "away", "!"]

    def decode(self, ids):
        return " ".join(self.words[i] for i in ids)


def test_text_tokenizer_decodes_training_with_the_codec_and_matches_sacrebleu():
    rng = random.Random(4)
    codec = _WordCodec()
    train = [[rng.randrange(len(codec.words)) for _ in range(rng.randint(3, 12))] for _ in range(8)]
    texts = [codec.decode([rng.randrange(len(codec.words)) for _ in range(rng.randint(2, 10))]) for _ in range(5)]
    for lowercase, bp in ((False, True), (True, True), (False, False)):
        bleu = BLEU(tokenize="13a", smooth_method="floor", smooth_value=0.1, lowercase=lowercase,
                    effective_order=True)  # fmt: skip
        refs = [codec.decode(r) for r in train]
        expected = [_sacrebleu(bleu, t, refs, bp) for t in texts]
        m = _metric(train, codec=codec, tokenize="13a", lowercase=lowercase, brevity_penalty=bp)
        assert m.requires == ("output_text",)
        got = m.score_samples([{"output_text": t} for t in texts])
        assert got == pytest.approx(expected, abs=1e-9, rel=0)
    with pytest.raises(ValueError, match="codec"):
        _metric(train, tokenize="13a").score_samples([{"output_text": "a"}])


def test_needs_training_sequences():
    with pytest.raises(ValueError) as err:
        DatasetBLEU().score_samples(_recs([[1, 2]]))
    assert str(err.value) == (
        "dataset-bleu needs the recipe's training sequences: use it on a cell whose recipe trains, "
        "or pass --train to harness score"
    )


def test_params_and_metadata():
    resolved, problems = resolve_params(DatasetBLEU.params, {})
    assert not problems.items
    assert resolved == {"max_order": 4, "tokenize": "ids", "smooth": "floor", "smooth_value": 0.1,
                        "lowercase": False, "brevity_penalty": False}  # fmt: skip
    assert DatasetBLEU.level == "sample" and DatasetBLEU.higher_is_better is False
    assert DatasetBLEU.requires == ("output_ids",)
