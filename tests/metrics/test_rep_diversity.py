"""rep-n and diversity (Su et al. 2022): hand-computed worked example, with and without SimCTG's quirks."""

from __future__ import annotations

import random

import pytest

from harness.params import resolve_params
from harness.scoring import score_metric
from harness_plugins.metrics.diversity import Diversity
from harness_plugins.metrics.rep_n import RepN

TEXTS = ["a b a b a", "c c c d", "x y z w v u t s"]


def _recs(texts):
    return [{"prompt_id": f"p{i}", "output_text": t} for i, t in enumerate(texts)]


def _simctg_reference(texts: list[str]) -> tuple[float, float, float, float]:
    """SimCTG's published procedure, restated independently: per text, a sliding window whose end index must
    stay strictly below the number of words (so the last n-gram is never taken), distinct n-grams per text,
    both counts summed over the corpus, rep-n in percent rounded to 2 decimals, diversity from the rounded values."""
    reps = []
    for n in (2, 3, 4):
        unique_sum = total_sum = 0
        for text in texts:
            words = text.strip().split()
            seen = set()
            count = 0
            start = 0
            while start + n < len(words):
                seen.add(" ".join(words[start : start + n]))
                count += 1
                start += 1
            unique_sum += len(seen)
            total_sum += count
        reps.append(round((1 - unique_sum / total_sum) * 100, 2))
    div = (1 - reps[0] / 100) * (1 - reps[1] / 100) * (1 - reps[2] / 100)
    return reps[0], reps[1], reps[2], div


def test_worked_example_definition():
    # per text (distinct / total) for n = 2, 3, 4:
    #   "a b a b a": ab ba ab ba → 2/4;  aba bab aba → 2/3;  abab baba → 2/2
    #   "c c c d":   cc cc cd → 2/3;     ccc ccd → 2/2;      cccd → 1/1
    #   8 distinct words: 7/7; 6/6; 5/5
    # pooled: n=2 11/14, n=3 10/11, n=4 8/8
    # rep-2 = 100·(1 − 11/14) = 300/14 = 21.428571...; rep-3 = 100/11 = 9.0909...; rep-4 = 0
    # diversity = (11/14)·(10/11)·1 = 10/14 = 0.714285714...
    recs = _recs(TEXTS)
    assert RepN({"n": 2}).score_corpus(recs) == pytest.approx(300 / 14, abs=1e-12)
    assert RepN({"n": 3}).score_corpus(recs) == pytest.approx(100 / 11, abs=1e-12)
    assert RepN({"n": 4}).score_corpus(recs) == pytest.approx(0.0, abs=1e-12)
    assert Diversity().score_corpus(recs) == pytest.approx(5 / 7, abs=1e-12)


def test_word_unit_explicit_equals_the_default_and_ignores_output_ids():
    # unit=words is rep-n's default: the same worked example with the unit spelled out and junk output_ids
    recs = [dict(r, output_ids=[1, 1, 1, 1]) for r in _recs(TEXTS)]
    assert RepN({"n": 2, "unit": "words"}).score_corpus(recs) == pytest.approx(300 / 14, abs=1e-12)
    assert RepN({"n": 2, "unit": "words"}).requires == ("output_text",)
    # words are case-sensitive with punctuation attached: "Go go go. go" → Go go, go go., go. go: 3 distinct
    # bigrams of 3 → 0; "go go go go" → 1 distinct of 3 → pooled 100·(1 − 4/6) = 100/3
    two = _recs(["Go go go. go", "go go go go"])
    assert RepN({"n": 2, "unit": "words"}).score_corpus(two) == pytest.approx(100 / 3, abs=1e-12)


def test_worked_example_simctg_compat():
    # SimCTG's loop skips each text's last n-gram:
    #   "a b a b a": ab ba ab → 2/3;  aba bab → 2/2;  abab → 1/1
    #   "c c c d":   cc cc → 1/2;     ccc → 1/1;      (none) 0/0
    #   8 distinct words: 6/6; 5/5; 4/4
    # pooled: n=2 9/11, n=3 8/8, n=4 5/5
    # rep-2 = 100·2/11 = 18.1818... → rounded 18.18; rep-3 = rep-4 = 0; diversity = 1 − 0.1818 = 0.8182
    recs = _recs(TEXTS)
    compat = {"simctg_compat": True}
    assert RepN({"n": 2, **compat}).score_corpus(recs) == 18.18
    assert RepN({"n": 3, **compat}).score_corpus(recs) == 0.0
    assert RepN({"n": 4, **compat}).score_corpus(recs) == 0.0
    assert Diversity(compat).score_corpus(recs) == pytest.approx(0.8182, abs=1e-12)
    rep2, rep3, rep4, div = _simctg_reference(TEXTS)
    assert (rep2, rep3, rep4) == (18.18, 0.0, 0.0)
    assert Diversity(compat).score_corpus(recs) == pytest.approx(div, abs=1e-12)


def test_compat_matches_the_simctg_procedure_on_random_corpora():
    rng = random.Random(7)
    vocab = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran"]
    for _ in range(40):
        texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(5, 30))) for _ in range(rng.randint(1, 6))]
        rep2, rep3, rep4, div = _simctg_reference(texts)
        recs = _recs(texts)
        got = [RepN({"n": n, "simctg_compat": True}).score_corpus(recs) for n in (2, 3, 4)]
        assert got == pytest.approx([rep2, rep3, rep4], abs=1e-9)
        assert Diversity({"simctg_compat": True}).score_corpus(recs) == pytest.approx(div, abs=1e-12)


def test_token_id_unit_and_no_ngrams():
    # ids [1,2,1,2] → bigrams 12 21 12: 2/3 → rep-2 = 100/3; with compat 12 21: 2/2 → 0
    recs = [{"output_ids": [1, 2, 1, 2]}]
    assert RepN({"unit": "token-ids"}).score_corpus(recs) == pytest.approx(100 / 3, abs=1e-12)
    assert RepN({"unit": "token-ids", "simctg_compat": True}).score_corpus(recs) == 0.0
    # texts shorter than n everywhere: no n-grams → rep 0, diversity 1
    assert RepN({"n": 4}).score_corpus(_recs(["a b", "c"])) == 0.0
    assert Diversity().score_corpus(_recs(["a b", "c"])) == 1.0


def test_bootstrap_reuses_cached_counts_consistently():
    rng = random.Random(3)
    texts = [" ".join(rng.choice("abcde") for _ in range(rng.randint(3, 20))) for _ in range(12)]
    recs = _recs(texts)
    m = RepN()
    iv = score_metric(m, recs, bootstrap=30, seed=0)
    assert iv.value == RepN().score_corpus(recs)
    assert iv.ci_low <= iv.value <= iv.ci_high
    # a cached instance gives the same numbers as a fresh one on a resample
    sub = [recs[i] for i in (0, 0, 3, 5, 5, 5)]
    assert m.score_corpus(sub) == RepN().score_corpus(sub)


def test_params_and_metadata():
    assert resolve_params(RepN.params, {})[0] == {"n": 2, "unit": "words", "simctg_compat": False}
    assert resolve_params(Diversity.params, {})[0] == {"unit": "words", "simctg_compat": False}
    assert RepN.level == Diversity.level == "corpus"
    assert RepN.higher_is_better is False and Diversity.higher_is_better is True
