"""distinct-n and n-gram entropy: corpus-level hand values and cache consistency under bootstrap."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from harness.params import resolve_params
from harness.scoring import score_metric
from harness_plugins.metrics.distinct_n import DistinctN
from harness_plugins.metrics.ngram_entropy import NgramEntropy


def _recs(texts):
    return [{"prompt_id": f"p{i}", "output_text": t} for i, t in enumerate(texts)]


RECS = _recs(["a b a b", "b a c"])


def test_distinct_hand_values():
    # bigrams: text 1 ab ba ab, text 2 ba ac → distinct across corpus {ab, ba, ac} = 3, total 5 → 0.6
    assert DistinctN().score_corpus(RECS) == pytest.approx(0.6, abs=1e-15)
    # unigrams: {a, b, c} = 3 of 7 words → 3/7
    assert DistinctN({"n": 1}).score_corpus(RECS) == pytest.approx(3 / 7, abs=1e-15)
    # trigrams: aba bab | bac → 3 distinct of 3
    assert DistinctN({"n": 3}).score_corpus(RECS) == 1.0
    # token ids: [1,1,1] and [1,1]: bigrams 11 11 | 11 → 1 distinct / 3
    ids = [{"output_ids": [1, 1, 1]}, {"output_ids": [1, 1]}]
    assert DistinctN({"unit": "token-ids"}).score_corpus(ids) == pytest.approx(1 / 3, abs=1e-15)
    assert DistinctN({"n": 5}).score_corpus(RECS) == 0.0  # no n-grams


def test_entropy_hand_values():
    # unigrams a:3 b:3 c:1 of 7 → H = −(2·(3/7)·log2(3/7) + (1/7)·log2(1/7)) = 1.4488156357251847
    h1 = -(2 * (3 / 7) * math.log2(3 / 7) + (1 / 7) * math.log2(1 / 7))
    assert NgramEntropy().score_corpus(RECS) == pytest.approx(h1, abs=1e-12)
    assert NgramEntropy().score_corpus(RECS) == pytest.approx(1.4488156357251847, abs=1e-12)
    # bigrams ab:2 ba:2 ac:1 of 5 → H = −(2·0.4·log2 0.4 + 0.2·log2 0.2) = 1.5219280948873621
    assert NgramEntropy({"n": 2}).score_corpus(RECS) == pytest.approx(1.5219280948873621, abs=1e-12)
    # four equally frequent words → exactly 2 bits; a single repeated word → 0 bits
    assert NgramEntropy().score_corpus(_recs(["a b", "c d"])) == pytest.approx(2.0, abs=1e-12)
    assert NgramEntropy().score_corpus(_recs(["a a a"])) == 0.0
    assert NgramEntropy({"unit": "token-ids"}).score_corpus([{"output_ids": [5, 6]}]) == pytest.approx(1.0)


def _brute(texts, n):
    grams = Counter(g for t in texts for g in zip(*(t.split()[k:] for k in range(n))))
    total = sum(grams.values())
    h = -sum(c / total * math.log2(c / total) for c in grams.values()) if total else 0.0
    return (len(grams) / total if total else 0.0), h


def test_random_corpora_and_resamples_match_a_direct_count():
    rng = random.Random(11)
    for n in (1, 2, 3):
        distinct, entropy = DistinctN({"n": n}), NgramEntropy({"n": n})  # reused: caches across calls
        for _ in range(20):
            texts = [" ".join(rng.choice("abcdef") for _ in range(rng.randint(0, 12))) for _ in range(rng.randint(1, 8))]
            texts += rng.choices(texts, k=2)  # duplicates, as in a bootstrap resample
            d, h = _brute(texts, n)
            assert distinct.score_corpus(_recs(texts)) == pytest.approx(d, abs=1e-12)
            assert entropy.score_corpus(_recs(texts)) == pytest.approx(h, abs=1e-12)


def test_per_text_contributions_hand_values_and_mean():
    # distinct-n, bigrams: corpus counts ab:2 ba:2 ac:1, total 5, N = 2
    #   text 1 (ab ba ab): 1/2 + 1/2 + 1/2 = 1.5 → ·2/5 = 0.6;  text 2 (ba ac): 1/2 + 1 = 1.5 → 0.6
    #   mean 0.6 = distinct-2
    assert DistinctN().score_per_text(RECS) == pytest.approx([0.6, 0.6], abs=1e-15)
    # entropy, unigrams: p(a) = p(b) = 3/7, p(c) = 1/7, N = 2, total 7
    #   text 1 (a b a b): 4·log2(7/3) → ·2/7;  text 2 (b a c): 2·log2(7/3) + log2 7 → ·2/7
    la, lc = math.log2(7 / 3), math.log2(7)
    per_text = NgramEntropy().score_per_text(RECS)
    assert per_text == pytest.approx([4 * la * 2 / 7, (2 * la + lc) * 2 / 7], abs=1e-12)
    assert sum(per_text) / 2 == pytest.approx(NgramEntropy().score_corpus(RECS), abs=1e-12)
    rng = random.Random(2)
    for _ in range(10):
        recs = _recs([" ".join(rng.choice("abcd") for _ in range(rng.randint(0, 9))) for _ in range(6)])
        for m in (DistinctN({"n": 2}), NgramEntropy({"n": 1})):
            values = m.score_per_text(recs)
            assert sum(values) / len(values) == pytest.approx(m.score_corpus(recs), abs=1e-12)


def test_bootstrap_interval_and_metadata():
    rng = random.Random(5)
    recs = _recs([" ".join(rng.choice("abcdefgh") for _ in range(15)) for _ in range(10)])
    for m in (DistinctN(), NgramEntropy()):
        iv = score_metric(m, recs, bootstrap=40, seed=1)
        assert iv.ci_low <= iv.value <= iv.ci_high and iv.n == 10
        assert m.level == "corpus" and m.higher_is_better is True
    assert resolve_params(DistinctN.params, {})[0] == {"n": 2, "unit": "words"}
    assert resolve_params(NgramEntropy.params, {})[0] == {"n": 1, "unit": "words"}
