"""Logits warpers and processors of the decoders on hand-made inputs, checked against transformers."""

from __future__ import annotations

import math

import pytest

from harness.api import Codec, History
from harness_plugins.decoders._loop import (
    RepetitionPenalty,
    RowTemperature,
    Warp,
    min_p_filter,
    scale_temperature,
    top_k_filter,
    typical_filter,
)
from harness_plugins.decoders.contrastive import contrastive_select
from harness_plugins.decoders.entropy_matched import match_temperature
from harness_plugins.decoders._ngram import CitationBlocker, NGramIndex, NoRepeatNGram, sequences_hash, word_start_rule

torch = pytest.importorskip("torch")


def random_logits(rows: int = 64, vocab: int = 40, seed: int = 0, scale: float = 2.0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((rows, vocab), generator=gen) * scale


def same_filter(ours, theirs):
    assert torch.equal(torch.isfinite(ours), torch.isfinite(theirs))
    finite = torch.isfinite(ours)
    assert torch.allclose(ours[finite], theirs[finite])


# --------------------------------------------------------------------------- warpers vs transformers


def test_top_k_matches_transformers():
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper

    logits = random_logits()
    for k, temperature in [(1, 1.0), (5, 0.7), (39, 1.3), (40, 1.0), (60, 1.0)]:
        ours = top_k_filter(scale_temperature(logits, temperature), k)
        theirs = TopKLogitsWarper(k)(None, TemperatureLogitsWarper(temperature)(None, logits.clone()))
        same_filter(ours, theirs)


def test_min_p_matches_transformers():
    from transformers.generation.logits_process import MinPLogitsWarper, TemperatureLogitsWarper

    logits = random_logits(seed=1)
    for p, temperature in [(0.0, 1.0), (0.05, 1.0), (0.1, 0.7), (0.3, 1.5), (0.9, 1.0), (1.0, 1.0)]:
        ours = min_p_filter(scale_temperature(logits, temperature), p)
        theirs = MinPLogitsWarper(p)(None, TemperatureLogitsWarper(temperature)(None, logits.clone()))
        same_filter(ours, theirs)
        assert bool(torch.isfinite(ours).any(-1).all()), "the top token always survives"


def test_min_p_by_hand():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.1, 0.06, 0.04]]))
    assert torch.isfinite(min_p_filter(logits, 0.19))[0].tolist() == [True, True, True, False, False]  # below 0.095 goes
    assert torch.isfinite(min_p_filter(logits, 0.5))[0].tolist() == [True, True, False, False, False]  # below 0.25 goes


def test_typical_matches_transformers():
    from transformers.generation.logits_process import TemperatureLogitsWarper, TypicalLogitsWarper

    logits = random_logits(seed=2)
    for mass, temperature in [(0.2, 1.0), (0.5, 1.0), (0.9, 0.7), (0.95, 1.3), (0.01, 1.0)]:
        ours = typical_filter(scale_temperature(logits, temperature), mass)
        theirs = TypicalLogitsWarper(mass)(None, TemperatureLogitsWarper(temperature)(None, logits.clone()))
        same_filter(ours, theirs)


def test_typical_by_hand():
    # p = [0.4, 0.3, 0.2, 0.1], H = 1.2799 nats; |-log p - H| = [0.364, 0.076, 0.330, 1.023]
    logits = torch.log(torch.tensor([[0.4, 0.3, 0.2, 0.1]]))
    assert torch.isfinite(typical_filter(logits, 0.25))[0].tolist() == [False, True, False, False]
    assert torch.isfinite(typical_filter(logits, 0.45))[0].tolist() == [False, True, True, False]
    assert torch.isfinite(typical_filter(logits, 0.85))[0].tolist() == [True, True, True, False]


# --------------------------------------------------------------------------- processors vs transformers


def history(contexts, generated=None):
    gen = generated if generated is not None else [[] for _ in contexts]
    return History(contexts, gen)


def test_repetition_penalty_matches_transformers():
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

    contexts = [[3, 5, 7, 5], [0, 1, 2, 9]]
    generated = [[11, 3], [12, 12]]
    scores = random_logits(rows=2, vocab=16, seed=3)
    scores[0, 3] = 0.0  # a zero score stays zero
    for penalty in (1.2, 0.8, 2.0):
        ours = RepetitionPenalty(penalty)(scores, history(contexts, generated))
        ids = torch.tensor([c + g for c, g in zip(contexts, generated)])
        theirs = RepetitionPenaltyLogitsProcessor(penalty)(ids, scores.clone())
        assert torch.equal(ours, theirs), penalty


def test_repetition_penalty_by_hand_and_incremental():
    scores = torch.tensor([[2.0, -2.0, 2.0, -2.0]])
    gen: list[list[int]] = [[]]
    processor = RepetitionPenalty(2.0)
    h = History([[0, 1]], gen)
    assert processor(scores, h).tolist() == [[1.0, -4.0, 2.0, -2.0]]
    gen[0].append(3)  # the next step sees the token just generated
    assert processor(scores, h).tolist() == [[1.0, -4.0, 2.0, -4.0]]


def test_no_repeat_ngram_matches_transformers():
    from transformers.generation.logits_process import NoRepeatNGramLogitsProcessor

    gen = torch.Generator().manual_seed(4)
    for n in (1, 2, 3, 4):
        for trial in range(20):
            length = 3 + trial
            ids = torch.randint(2, 8, (3, length), generator=gen)  # small vocabulary: many repeats
            scores = random_logits(rows=3, vocab=10, seed=trial)
            theirs = NoRepeatNGramLogitsProcessor(n)(ids, scores.clone())
            split = length // 2  # the same tokens seen as context + generated
            contexts = [row[:split] for row in ids.tolist()]
            generated = [row[split:] for row in ids.tolist()]
            ours = NoRepeatNGram(n, include_context=True)(scores, history(contexts, generated))
            assert torch.equal(ours, theirs), (n, trial)


def test_no_repeat_ngram_grows_with_the_output_and_can_ignore_the_context():
    scores = torch.zeros((1, 10))
    gen: list[list[int]] = [[]]
    processor = NoRepeatNGram(2, include_context=False)
    h = History([[4, 5, 4]], gen)
    assert torch.isfinite(processor(scores, h)).all(), "context n-grams do not count"
    for token in (6, 7, 6):
        gen[0].append(token)
        out = processor(scores, h)
    assert torch.isinf(out[0, 7]) and int(torch.isinf(out).sum()) == 1  # "6 7" was generated: after 6, 7 is banned
    with_context = NoRepeatNGram(2, include_context=True)
    assert torch.isinf(with_context(scores, History([[4, 5, 4]], [[]]))[0, 5])  # "4 5" in the prompt


# --------------------------------------------------------------------------- n-gram index and citation blocker


def test_ngram_index():
    index = NGramIndex(2)
    index.add_sequence([1, 2, 3, 1, 2, 4])
    assert index.followers((1, 2)) == {3, 4}
    assert index.followers((2, 3)) == {1}
    assert index.followers((3, 3)) is None and index.followers(None) is None
    assert index.contains([1, 2, 4]) and not index.contains([1, 2, 5])
    assert len(index) == 3  # (1,2), (2,3), (3,1)
    incremental = NGramIndex(2)
    seq: list[int] = []
    for token in [1, 2, 3, 1, 2, 4]:
        seq.append(token)
        incremental.add_last(seq)
    assert incremental.table == index.table
    assert sequences_hash([[1, 2], [3]]) != sequences_hash([[1], [2, 3]])
    assert sequences_hash([[1, 2], [3]]) == sequences_hash([[1, 2], [3]])


def test_history_tail():
    h = History([[1, 2, 3]], [[7, 8]])
    assert h.tail(0, 2, False) == (7, 8)
    assert h.tail(0, 3, False) is None
    assert h.tail(0, 3, True) == (3, 7, 8)
    assert h.tail(0, 5, True) == (1, 2, 3, 7, 8)
    assert h.tail(0, 6, True) is None


def test_citation_blocker_bans_followers_and_counts_changed_argmax():
    index = NGramIndex(2)
    index.add_sequence([5, 6, 7, 8])  # after (5, 6): 7; after (6, 7): 8
    scores = torch.zeros((3, 10))
    scores[:, 7] = 1.0  # 7 is everyone's argmax
    blocker = CitationBlocker(index, include_context=False, starts_word=None)
    h = History([[1], [5], [6, 5]], [[5, 6], [6], []])
    out = blocker(scores, h)
    assert torch.isinf(out[0, 7]) and int(torch.isinf(out).sum()) == 1  # only row 0 has two generated tokens
    assert blocker.counts == [1, 0, 0]
    with_context = CitationBlocker(index, include_context=True, starts_word=None)
    out = with_context(scores, h)
    assert torch.isinf(out[:2, 7]).all() and not torch.isinf(out[2]).any()  # row 1: (5 | 6) spans the prompt
    assert with_context.counts == [1, 1, 0]
    # a ban that does not touch the argmax is not counted
    h2 = History([[1]], [[6, 7]])
    scores2 = torch.zeros((1, 10))
    scores2[0, 3] = 1.0
    counter = CitationBlocker(index, include_context=False, starts_word=None)
    out = counter(scores2, h2)
    assert torch.isinf(out[0, 8]) and counter.counts == [0]
    # dead rows are left alone
    h.alive = [False, True, True]
    dead = CitationBlocker(index, include_context=False, starts_word=None)
    assert not torch.isinf(dead(scores, h)).any() and dead.counts == [0, 0, 0]
    # the counts are the rows' blocked_steps extras; a blocker told its batch reports zeros before any step
    assert with_context.row_extras() == [{"blocked_steps": 1}, {"blocked_steps": 1}, {"blocked_steps": 0}]
    assert CitationBlocker(index, False, None, rows=2).row_extras() == [{"blocked_steps": 0}] * 2


def test_adjusters_keep_minus_infinity_so_eos_may_be_suppressed_first():
    """The loop suppresses EOS before the processors: penalties and bans give the same scores either way."""
    index = NGramIndex(1)
    index.add_sequence([5, 3, 5, 1])
    contexts, generated = [[3, 1, 4], [5, 9]], [[1, 5], [1]]
    scores = random_logits(rows=2, vocab=12, seed=9)
    for make in (lambda: RepetitionPenalty(1.3), lambda: RepetitionPenalty(0.7), lambda: NoRepeatNGram(2),
                 lambda: CitationBlocker(index, include_context=True, starts_word=None)):  # fmt: skip
        suppressed_after = make()(scores, History(contexts, generated)).clone()
        suppressed_after[:, 1] = float("-inf")
        before = scores.clone()
        before[:, 1] = float("-inf")
        assert torch.equal(make()(before, History(contexts, generated)), suppressed_after)


def test_warp_and_row_temperature_processors():
    scores = random_logits(rows=3, vocab=10, seed=8)
    h = History([[1], [2], [3]], [[], [], []])
    assert torch.equal(Warp(top_k_filter, top_k=3)(scores, h), top_k_filter(scores, 3))
    rows = RowTemperature([0.5, 1.0, 2.123456789], device="cpu")
    out = rows(scores, h)
    assert torch.equal(out, scores / torch.tensor([[0.5], [1.0], [2.123456789]]))
    assert rows.row_extras() == [{"temperature": 0.5}, {"temperature": 1.0}, {"temperature": 2.123457}]


class PieceCodec(Codec):
    """A hand-made text codec: ids index a fixed list of pieces; decode() joins them."""

    modality = "text"
    eos_token_id = 0
    pad_token_id = 0
    PIECES = ["</s>", " the", "cat", "s", "\nnew", "▁sp", "Ġbpe", ".", ""]

    def encode(self, text):  # pragma: no cover - not needed
        raise NotImplementedError

    def decode(self, ids):
        return "".join(self.PIECES[i] for i in ids if i != 0)

    def fingerprint(self):
        return "pieces"


class FakeTokenizer:
    all_special_ids = [0]

    def convert_ids_to_tokens(self, token):
        return ["</s>", "Ġthe", "cat", "s", "Ċnew", "▁sp", "Ġbpe", ".", "ing"][token]


def test_word_start_rule_on_decoded_text_and_on_tokenizer_pieces():
    rule = word_start_rule(PieceCodec())
    assert [rule(t) for t in range(9)] == [True, True, False, False, True, True, True, False, False]

    class WithTokenizer(PieceCodec):
        tokenizer = FakeTokenizer()

    rule = word_start_rule(WithTokenizer())
    assert [rule(t) for t in range(9)] == [True, True, False, False, True, True, True, False, False]

    class Image(PieceCodec):
        modality = "image"

    assert all(word_start_rule(Image())(t) for t in range(9))


def test_citation_blocker_word_boundary_bans_only_word_starts():
    index = NGramIndex(1)
    index.add_sequence([2, 3])  # "cat" "s"
    index.add_sequence([2, 1])  # "cat" " the"
    rule = word_start_rule(PieceCodec())
    blocker = CitationBlocker(index, include_context=False, starts_word=rule)
    scores = torch.zeros((1, 9))
    scores[0, 3] = 2.0
    scores[0, 1] = 1.0
    out = blocker(scores, History([[]], [[2]]))
    assert torch.isinf(out[0, 1]) and not torch.isinf(out[0, 3]), "' the' starts a word (banned), 's' continues 'cat'"
    assert blocker.counts == [0], "the argmax 's' was let through"


# --------------------------------------------------------------------------- contrastive search: a hand-worked step


def test_contrastive_select_hand_worked_example():
    # one row, k = 3 candidates with p = [0.5, 0.3, 0.2]; two previous positions (plus one padding slot)
    top_probs = torch.tensor([[0.5, 0.3, 0.2]])
    previous = torch.tensor([[[9.0, 9.0], [1.0, 0.0], [0.0, 2.0]]])  # slot 0 is padding
    mask = torch.tensor([[0, 1, 1]])
    candidates = torch.tensor([[[3.0, 0.0], [1.0, 1.0], [-1.0, 0.0]]])
    # max cosine similarity to the real previous states: [1.0, 0.7071, 0.0]
    # alpha 0.6: 0.4*[0.5, 0.3, 0.2] - 0.6*[1.0, 0.7071, 0.0] = [-0.4, -0.3043, 0.08] -> candidate 2
    assert contrastive_select(top_probs, candidates, previous, mask, 0.6).tolist() == [2]
    # alpha 0.1: 0.9*p - 0.1*sim = [0.35, 0.1993, 0.18] -> candidate 0
    assert contrastive_select(top_probs, candidates, previous, mask, 0.1).tolist() == [0]
    # alpha 0 is greedy on the candidates
    assert contrastive_select(top_probs, candidates, previous, mask, 0.0).tolist() == [0]
    # the padding slot would make candidate 1 maximally similar if it were counted: it is not
    assert contrastive_select(top_probs, candidates, previous, torch.tensor([[1, 1, 1]]), 0.6).tolist() == [2]
    # alpha 0.3: 0.7*p - 0.3*sim = [0.05, -0.0021, 0.14] -> 2 ; with candidate 2 aligned to [0, 2]: sim 1 -> 0.14-0.3
    aligned = candidates.clone()
    aligned[0, 2] = torch.tensor([0.0, 5.0])
    assert contrastive_select(top_probs, aligned, previous, mask, 0.3).tolist() == [0]


def test_contrastive_select_is_per_row():
    top_probs = torch.tensor([[0.6, 0.4], [0.6, 0.4]])
    previous = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    mask = torch.ones((2, 1), dtype=torch.long)
    candidates = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
    # row 0: [0.5*0.6 - 0.5*1, 0.5*0.4 - 0] = [-0.2, 0.2] -> 1; row 1: [0.3, 0.2 - 0.5] -> 0
    assert contrastive_select(top_probs, candidates, previous, mask, 0.5).tolist() == [1, 0]


# --------------------------------------------------------------------------- entropy-matched temperature


def test_match_temperature_hits_the_target_per_group():
    logits = random_logits(rows=12, vocab=50, seed=5, scale=3.0)
    groups = torch.tensor([0] * 5 + [1] * 7)
    temps, achieved = match_temperature(logits, groups, 1.5, 0.05, 5.0)
    assert achieved.tolist() == pytest.approx([1.5, 1.5], abs=1e-4)
    for g in (0, 1):
        scaled = torch.distributions.Categorical(logits=logits[groups == g] / temps[g]).entropy().mean()
        assert float(scaled) == pytest.approx(1.5, abs=1e-4)
    # a target beyond what the range allows gives the bound
    temps, achieved = match_temperature(logits, groups, math.log(50) + 1, 0.05, 5.0)
    assert temps.tolist() == pytest.approx([5.0, 5.0], rel=1e-5)
    temps, _ = match_temperature(logits, groups, 0.0, 0.5, 5.0)
    assert temps.tolist() == pytest.approx([0.5, 0.5], rel=1e-5)
