"""dataset-overlap (mean / max / share): hand values and agreement with a brute-force search."""

from __future__ import annotations

import random

import pytest

from harness.api import MetricContext
from harness.params import resolve_params
from harness.scoring import score_metric
from harness_plugins.metrics.dataset_overlap import DatasetOverlap, longest_overlaps
from harness_plugins.metrics.dataset_overlap_max import DatasetOverlapMax
from harness_plugins.metrics.dataset_overlap_share import DatasetOverlapShare

TRAIN = [[1, 2, 3, 4, 5], [6, 7, 8]]
TEXTS = [
    [9, 2, 3, 4, 6, 7],  # 2 3 4 (in the first sequence) → 3; 6 7 → 2
    [3, 4, 5, 6, 7, 8],  # 3 4 5 → 3 and 6 7 8 → 3; "5 6" spans two sequences, so not 6
    [],  # empty: not counted (a row that stopped at EOS at once)
    [42],  # unseen id → 0
]


def _with(metric, train):
    metric.context = MetricContext(train_sequences=train)
    return metric


def _recs(id_lists):
    return [{"prompt_id": f"p{i}", "output_ids": ids} for i, ids in enumerate(id_lists)]


def _brute(text, train):
    best = 0
    for i in range(len(text)):
        for j in range(i + 1, len(text) + 1):
            run = list(text[i:j])
            if any(seq[k : k + len(run)] == run for seq in train for k in range(len(seq) - len(run) + 1)):
                best = max(best, len(run))
    return best


def test_hand_values():
    assert longest_overlaps(TEXTS, TRAIN) == [3, 3, 0, 0]
    recs = _recs(TEXTS)
    # the empty continuation (EOS at the first step) is not counted: mean over 3 texts = 2.0
    assert _with(DatasetOverlap(), TRAIN).score_samples(recs) == [3.0, 3.0, 0.0]
    assert _with(DatasetOverlapMax(), TRAIN).score_corpus(recs) == 3.0
    # share over 2 tokens: 2 of the 3 counted texts; over 3 tokens (strictly greater): none → 0.0
    share = _with(DatasetOverlapShare({"threshold": 2}), TRAIN)
    assert share.score_corpus(recs) == pytest.approx(2 / 3)
    assert sum(share.score_per_text(recs)) / len(recs) == pytest.approx(2 / 3)  # what the bootstrap resamples
    assert share.score_per_text(recs)[2] == 0.0
    assert _with(DatasetOverlapShare({"threshold": 3}), TRAIN).score_corpus(recs) == 0.0
    # nothing counted at all: no crash, no credit
    empty = _recs([[], []])
    assert _with(DatasetOverlap(), TRAIN).score_samples(empty) == []
    assert _with(DatasetOverlapMax(), TRAIN).score_corpus(empty) == 0.0
    assert _with(DatasetOverlapShare({"threshold": 0}), TRAIN).score_corpus(empty) == 0.0
    # a verbatim copy of a whole training sequence → its length
    assert longest_overlaps([[0, 6, 7, 8, 0]], TRAIN) == [3]


def test_matches_brute_force_on_random_data():
    rng = random.Random(0)
    for _ in range(150):
        vocab = rng.randint(1, 5)
        train = [[rng.randrange(vocab) for _ in range(rng.randint(0, 12))] for _ in range(rng.randint(1, 5))]
        texts = [[rng.randrange(vocab + 1) for _ in range(rng.randint(0, 10))] for _ in range(rng.randint(1, 5))]
        texts.append(list(texts[0]))  # duplicates share automaton states
        texts.append(texts[0][::-1])
        assert longest_overlaps(texts, train) == [_brute(t, train) for t in texts], (texts, train)


def test_planted_copies_at_scale():
    # 300 training sequences × 64 ids from a 5000-id vocabulary; each text plants a copied run of known length
    rng = random.Random(1)
    train = [[rng.randrange(5000) for _ in range(64)] for _ in range(300)]
    texts, planted = [], []
    for _ in range(30):
        k = rng.randint(0, 40)
        src = rng.randrange(300)
        start = rng.randrange(64 - k + 1)
        text = [5000 + rng.randrange(10**6) for _ in range(60)]  # ids never seen in training
        pos = rng.randrange(60 - k + 1)
        text[pos : pos + k] = train[src][start : start + k]
        texts.append(text)
        planted.append(k)
    got = longest_overlaps(texts, train)
    assert all(g >= k for g, k in zip(got, planted))
    assert got == [_brute(t, train) if g > k else k for t, g, k in zip(texts, got, planted)]


def test_bootstrap_and_cache():
    rng = random.Random(2)
    train = [[rng.randrange(6) for _ in range(30)] for _ in range(5)]
    recs = _recs([[rng.randrange(6) for _ in range(12)] for _ in range(10)])
    expected = [float(_brute(r["output_ids"], train)) for r in recs]
    for metric in (DatasetOverlapMax(), DatasetOverlapShare({"threshold": 4})):
        _with(metric, train)
        iv = score_metric(metric, recs, bootstrap=30, seed=0)
        assert iv.ci_low <= iv.value <= iv.ci_high
    assert score_metric(_with(DatasetOverlapMax(), train), recs, 0, 0).value == max(expected)
    share = _with(DatasetOverlapShare({"threshold": 4}), train)
    assert share.score_per_text(recs) == [1.0 if v > 4 else 0.0 for v in expected]
    # a new training set invalidates the cached overlaps
    mean = _with(DatasetOverlap(), train)
    assert mean.score_samples(recs) == expected
    mean.context = MetricContext(train_sequences=[[99]])
    assert mean.score_samples(recs) == [0.0] * len(recs)


def test_needs_training_sequences_and_metadata():
    for cls in (DatasetOverlap, DatasetOverlapMax, DatasetOverlapShare):
        with pytest.raises(ValueError, match=f"^{cls.name} needs the recipe's training sequences"):
            (cls().score_samples if cls.level == "sample" else cls().score_corpus)(_recs([[1]]))
        assert cls.higher_is_better is False and cls.requires == ("output_ids",)
    assert DatasetOverlap.level == "sample"
    assert DatasetOverlapMax.level == DatasetOverlapShare.level == "corpus"
    assert resolve_params(DatasetOverlapShare.params, {})[0] == {"threshold": 10}
