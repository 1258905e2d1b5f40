"""Self-BLEU: hand-computed values, exclusion rules, and agreement with sacrebleu on random corpora."""

from __future__ import annotations

import math
import random

import pytest

from harness.params import resolve_params
from harness.stats import bootstrap_interval
from harness_plugins.metrics.self_bleu import SelfBLEU, _bleu

sacrebleu = pytest.importorskip("sacrebleu")
from sacrebleu.metrics.bleu import BLEU  # noqa: E402


def _recs(texts: list[str], prompt_ids: list[str] | None = None) -> list[dict]:
    ids = prompt_ids or [f"p{i}" for i in range(len(texts))]
    # an empty continuation is one EOS cut short (stop_at_eos): flagged as the runner flags it
    return [{"prompt_id": pid, "output_text": t} | ({"stopped_at_eos": True} if not t.strip() else {})
            for pid, t in zip(ids, texts)]  # fmt: skip


def _sacre_self_bleu(texts: list[str], prompt_ids: list[str], **kw) -> list[float]:
    """sacrebleu, leave-one-prompt-out; an empty text is neither hypothesis nor reference (it contributes 0) and the
    others are scaled by (all texts) / (non-empty texts), so that the mean is the mean over the non-empty ones."""
    bleu = BLEU(effective_order=True, **kw)
    scored = [bool(t.strip()) for t in texts]
    scale = len(texts) / sum(scored)
    out = []
    for i, hyp in enumerate(texts):
        if not scored[i]:
            out.append(0.0)
            continue
        refs = [t for t, pid, ok in zip(texts, prompt_ids, scored) if ok and pid != prompt_ids[i]]
        out.append(bleu.sentence_score(hyp, refs).score * scale)
    return out


# ------------------------------------------------------------------ hand-computed


def test_hand_example_three_texts():
    # tokenize none, BLEU-2, floor smoothing. A="a b c", B="a b d", C="e f".
    # hyp A vs {B, C}: unigrams a,b match, c not → 2/3; bigrams "a b" matches, "b c" not → 1/2;
    #   hyp len 3, ref lens {3, 2} → closest 3, BP = 1 → 100·sqrt(2/3 · 1/2) = 100/sqrt(3) = 57.7350269...
    # hyp B vs {A, C}: symmetric → 57.7350269...
    # hyp C vs {A, B}: no unigram matches → 0
    # Self-BLEU = 2 · 57.7350269 / 3 = 38.4900179...
    m = SelfBLEU({"tokenize": "none", "max_order": 2, "smooth": "floor"})
    recs = _recs(["a b c", "a b d", "e f"])
    assert m.score_per_text(recs) == pytest.approx([100 / math.sqrt(3), 100 / math.sqrt(3), 0.0], abs=1e-12)
    assert m.score_corpus(recs) == pytest.approx(200 / (3 * math.sqrt(3)), abs=1e-12)
    assert m.score_corpus(recs) == pytest.approx(38.49001794597505, abs=1e-9)


def test_hand_example_brevity_tie_goes_to_shorter_reference():
    # A="a b" vs {B="a b c" (len 3), C="x" (len 1)}: both 1 away from len 2 → the shorter (1) → BP = 1.
    #   all 2 unigrams and the 1 bigram match → 100 (BP from the longer ref would give 100·e^(1-3/2) = 60.65).
    # B="a b c" vs {A, C}: unigrams 2/3, bigrams 1/2, closest ref len 2 < 3 → BP = 1 → 57.7350269...
    # C="x" vs {A, B}: 0.   Mean = (100 + 57.7350269) / 3 = 52.5783423...
    m = SelfBLEU({"tokenize": "none", "max_order": 2})
    recs = _recs(["a b", "a b c", "x"])
    assert m.score_per_text(recs) == pytest.approx([100.0, 100 / math.sqrt(3), 0.0], abs=1e-12)
    assert m.score_corpus(recs) == pytest.approx(52.57834230632086, abs=1e-9)


def test_bleu_formula_smoothing_and_effective_order():
    # hyp "a c" vs ref "a b", BLEU-2: unigram 1/2, bigram 0/1
    #   floor 0.1: 100·sqrt(0.5 · 0.1/1) = 22.3606797...
    assert _bleu([1, 0], [2, 1], 2, 2, "floor", 0.1, 2) == pytest.approx(100 * math.sqrt(0.05))
    #   exp: first zero order gets 1/(2·total) = 0.5 → 100·sqrt(0.5·0.5) = 50
    assert _bleu([1, 0], [2, 1], 2, 2, "exp", 0.1, 2) == pytest.approx(50.0)
    #   none: a zero precision makes BLEU 0
    assert _bleu([1, 0], [2, 1], 2, 2, "none", 0.1, 2) == 0.0
    #   add-k (k=1) on orders >= 2: bigram (0+1)/(1+1) → 100·sqrt(0.5·0.5) = 50
    assert _bleu([1, 0], [2, 1], 2, 2, "add-k", 1.0, 2) == pytest.approx(50.0)
    # effective order: a 1-token hyp matching its ref under BLEU-4 uses only unigrams → 100
    assert _bleu([1, 0, 0, 0], [1, 0, 0, 0], 1, 1, "none", 0.1, 4) == pytest.approx(100.0)
    # brevity penalty: hyp len 2, ref len 4 → e^(1 - 2) · 100
    assert _bleu([2, 1], [2, 1], 2, 4, "floor", 0.1, 2) == pytest.approx(100 * math.exp(-1))


# ------------------------------------------------------------------ exclusion rules


def test_same_prompt_is_never_a_reference():
    texts = ["a b c d", "a b c d", "x y z"]
    # two continuations of prompt p are identical, but only the other prompt's text is a reference → 0
    assert SelfBLEU().score_corpus(_recs(texts, ["p", "p", "q"])) == 0.0
    # with distinct prompts the duplicates reference each other → 100 each
    assert SelfBLEU().score_per_text(_recs(texts)) == pytest.approx([100.0, 100.0, 0.0])


def test_bootstrap_copies_without_prompt_id_exclude_their_own_copy():
    m = SelfBLEU()
    # two copies of record 0 (same _index, different _draw) plus record 1
    recs = [
        {"output_text": "a b c d", "_draw": 0, "_index": 0},
        {"output_text": "a b c d", "_draw": 1, "_index": 0},
        {"output_text": "x y z", "_draw": 2, "_index": 1},
    ]
    assert m.score_corpus(recs) == 0.0
    # no prompt_id and no _index: plain leave-one-out by position
    plain = [{"output_text": "a b c d"}, {"output_text": "a b c d"}, {"output_text": "x y z"}]
    assert m.score_per_text(plain) == pytest.approx([100.0, 100.0, 0.0])


def test_bootstrap_never_scores_a_duplicated_prompt_against_itself():
    recs = _recs([f"w{i}a w{i}b w{i}c w{i}d" for i in range(8)])  # no shared tokens at all
    iv = bootstrap_interval(recs, SelfBLEU().score_corpus, n_resamples=40, seed=0)
    assert (iv.value, iv.ci_low, iv.ci_high) == (0.0, 0.0, 0.0)
    again = bootstrap_interval(recs, SelfBLEU().score_corpus, n_resamples=40, seed=0)
    assert again == iv


def test_too_few_texts_or_prompts():
    with pytest.raises(ValueError, match="at least 2 texts"):
        SelfBLEU().score_corpus(_recs(["only one"]))
    with pytest.raises(ValueError, match="at least 2 different prompts"):
        SelfBLEU().score_corpus(_recs(["a b", "a c"], ["p", "p"]))
    with pytest.raises(TypeError, match="output_text"):
        SelfBLEU().score_corpus([{"output_text": "a"}, {"output_text": None}])


def test_params_and_metadata():
    resolved, problems = resolve_params(SelfBLEU.params, {})
    assert not problems.items
    assert resolved == {"max_order": 4, "tokenize": "13a", "smooth": "floor", "smooth_value": 0.1,
                        "lowercase": False}
    _, problems = resolve_params(SelfBLEU.params, {"tokenize": "spm", "max_order": 9})
    assert {name for name, _ in problems.items} == {"tokenize", "max_order"}
    assert SelfBLEU.level == "corpus" and SelfBLEU.higher_is_better is False
    assert SelfBLEU.requires == ("output_text",)
    assert "prompt_id" in SelfBLEU.definition


# ------------------------------------------------------------------ agreement with sacrebleu

_VOCAB = ["the", "The", "cat", "sat", "on", "mat", ".", ",", "a", "dog", "ran", "away!", "1,000", "3.5",
          "(it)", "Über", "naïve", "x", "don't", "--"]


def _random_corpus(rng: random.Random) -> tuple[list[str], list[str]]:
    n = rng.randint(2, 9)
    texts = [" ".join(rng.choice(_VOCAB) for _ in range(rng.randint(1, 16))) for _ in range(n)]
    texts.append(rng.choice(_VOCAB))  # a 1-word text
    texts.append(rng.choice(texts))  # an exact duplicate
    if rng.random() < 0.3:
        texts.append("")  # an empty continuation (EOS at once): not scored, not a reference
    if rng.random() < 0.3:
        texts.append(texts[0] + "  ")  # trailing whitespace is stripped
    if rng.random() < 0.5:
        pids = [f"p{i}" for i in range(len(texts))]
    else:  # several continuations per prompt
        pids = [f"p{rng.randint(0, 3)}" for _ in texts]
        pids[0], pids[1] = "p0", "p1"
    return texts, pids


@pytest.mark.parametrize("tokenize", ["13a", "none", "intl", "char"])
@pytest.mark.parametrize("smooth", ["floor", "none", "add-k", "exp"])
def test_matches_sacrebleu_on_random_corpora(tokenize, smooth):
    rng = random.Random(f"{tokenize}/{smooth}")
    for trial in range(30):
        texts, pids = _random_corpus(rng)
        max_order = rng.choice([1, 2, 3, 4, 5, 8])
        lowercase = rng.random() < 0.5
        smooth_value = rng.choice([0.1, 0.5, 1.0])
        kw = dict(tokenize=tokenize, smooth_method=smooth, smooth_value=smooth_value,
                  max_ngram_order=max_order, lowercase=lowercase)
        expected = _sacre_self_bleu(texts, pids, **kw)
        m = SelfBLEU({"tokenize": tokenize, "smooth": smooth, "smooth_value": smooth_value,
                      "max_order": max_order, "lowercase": lowercase})
        recs = _recs(texts, pids)
        ours = m.score_per_text(recs)
        assert ours == pytest.approx(expected, abs=1e-9, rel=0), (trial, texts, pids, kw)
        assert abs(m.score_corpus(recs) - sum(expected) / len(expected)) <= 1e-9
        # a second call reuses the token cache and must give the same numbers
        assert m.score_per_text(recs) == ours


def test_defaults_match_sacrebleu_on_sentences():
    texts = [
        "The cat sat on the mat.",
        "The cat sat on a mat, and the dog ran away.",
        "A dog ran away from the cat.",
        "Nothing in common here!",
        "The cat sat on the mat.",
    ]
    pids = [f"p{i}" for i in range(len(texts))]
    expected = _sacre_self_bleu(texts, pids, tokenize="13a", smooth_method="floor", smooth_value=0.1,
                                max_ngram_order=4, lowercase=False)
    assert SelfBLEU().score_corpus(_recs(texts)) == pytest.approx(sum(expected) / len(expected), abs=1e-9)


def test_a_full_length_text_without_word_tokens_is_still_scored():
    """Under the fixed-length policy a whitespace-only continuation is a real output (BLEU 0 against others)."""
    recs = [{"prompt_id": "a", "output_text": "   "}, {"prompt_id": "b", "output_text": "x y"}, {"prompt_id": "c", "output_text": "x y"}]
    assert SelfBLEU().score_per_text(recs) == pytest.approx([0.0, 100.0, 100.0])
