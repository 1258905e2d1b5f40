"""Seeded draws of eval contexts and training windows, and the eval/train disjointness check."""

from __future__ import annotations

import random

import pytest

from harness.errors import InputError, RunError
from harness.sampling import (
    EvalContext,
    TokenizedDocument,
    TrainSample,
    check_disjoint,
    derive_seed,
    draw_contexts,
    draw_training,
)


def make_docs(count: int = 30, lengths: tuple[int, int] = (20, 120), seed: int = 0, prefix: str = "d") -> list[TokenizedDocument]:
    rng = random.Random(seed)
    return [
        TokenizedDocument(f"{prefix}{i}", tuple(rng.randrange(2, 258) for _ in range(rng.randint(*lengths))))
        for i in range(count)
    ]


# --------------------------------------------------------------------------- derive_seed


def test_derive_seed_is_stable_and_63_bit():
    a = derive_seed(0, "eval-contexts", "wiki")
    assert a == derive_seed(0, "eval-contexts", "wiki")
    assert 0 <= a < 2**63
    assert a != derive_seed(1, "eval-contexts", "wiki")
    assert a != derive_seed(0, "eval-contexts", "news")
    assert derive_seed(0, "a", "b") != derive_seed(0, "b", "a")


# --------------------------------------------------------------------------- contexts


def test_draw_contexts_deterministic_and_sized():
    docs = make_docs()
    first = draw_contexts(docs, "wiki", 8, 12, 16, seed=3)
    again = draw_contexts(docs, "wiki", 8, 12, 16, seed=3)
    assert first == again
    assert len(first) == 8
    by_id = {d.id: d for d in docs}
    assert len({c.doc_id for c in first}) == 8, "one context per document"
    for ctx in first:
        doc = by_id[ctx.doc_id]
        assert len(doc.ids) >= 28
        assert ctx.dataset == "wiki"
        assert ctx.prompt_id == f"wiki/{ctx.doc_id}"
        assert ctx.context_ids == list(doc.ids[:12])
        assert ctx.reference_ids == list(doc.ids[12:28])


def test_draw_contexts_skips_short_documents():
    docs = make_docs(lengths=(5, 40))
    drawn = draw_contexts(docs, "wiki", 5, 20, 10, seed=0)
    long_ids = {d.id for d in docs if len(d.ids) >= 30}
    assert {c.doc_id for c in drawn} <= long_ids


def test_draw_contexts_differs_across_seeds_and_dataset_names():
    docs = make_docs(count=60)
    by_seed = [tuple(c.doc_id for c in draw_contexts(docs, "wiki", 10, 12, 4, seed=s)) for s in range(4)]
    assert len(set(by_seed)) == 4
    other_name = tuple(c.doc_id for c in draw_contexts(docs, "news", 10, 12, 4, seed=0))
    assert other_name != by_seed[0]


def test_draw_contexts_too_few_long_documents_names_dataset():
    docs = make_docs(count=10, lengths=(5, 15)) + make_docs(count=2, lengths=(50, 60), prefix="long")
    with pytest.raises(InputError) as info:
        draw_contexts(docs, "my-wiki", 3, 30, 10, seed=0)
    message = str(info.value)
    assert '"my-wiki"' in message
    assert "only 2" in message and "40" in message and "3" in message
    # exactly enough is fine
    assert len(draw_contexts(docs, "my-wiki", 2, 30, 10, seed=0)) == 2


# --------------------------------------------------------------------------- training windows


def test_draw_training_deterministic_sized_and_aligned():
    docs = make_docs()
    first = draw_training(docs, "wiki", set(), 20, 16, seed=5)
    assert first == draw_training(docs, "wiki", set(), 20, 16, seed=5)
    assert len(first) == 20
    by_id = {d.id: d for d in docs}
    pairs = set()
    for sample in first:
        doc = by_id[sample.doc_id]
        assert len(sample.token_ids) == 16
        assert sample.start % 16 == 0
        assert sample.start + 16 <= len(doc.ids)
        assert sample.token_ids == list(doc.ids[sample.start : sample.start + 16])
        pairs.add((sample.doc_id, sample.start))
    assert len(pairs) == 20, "windows are drawn without replacement"


def test_draw_training_differs_across_seeds():
    docs = make_docs()
    drawn = {tuple((s.doc_id, s.start) for s in draw_training(docs, "wiki", set(), 10, 16, seed=s)) for s in range(4)}
    assert len(drawn) == 4


def test_draw_training_never_uses_reserved_documents():
    docs = make_docs(count=20, lengths=(40, 80))
    contexts = draw_contexts(docs, "wiki", 8, 12, 4, seed=0)
    reserved = {c.doc_id for c in contexts}
    free_windows = sum(len(d.ids) // 10 for d in docs if d.id not in reserved)
    for seed in range(5):
        train = draw_training(docs, "wiki", reserved, free_windows, 10, seed=seed)  # every free window
        assert not {s.doc_id for s in train} & reserved
        check_disjoint(train, contexts, "wiki")
    # only one document left: every sample comes from it
    keep = docs[0].id
    only = draw_training(docs, "wiki", {d.id for d in docs} - {keep}, 2, 10, seed=0)
    assert {s.doc_id for s in only} == {keep}


def test_draw_training_too_few_windows_names_dataset():
    docs = [TokenizedDocument("a", tuple(range(2, 52))), TokenizedDocument("b", tuple(range(2, 40)))]
    # 50 tokens -> 2 windows of 20, 38 tokens -> 1 window: 3 in total
    assert len(draw_training(docs, "tiny-set", set(), 3, 20, seed=0)) == 3
    with pytest.raises(InputError) as info:
        draw_training(docs, "tiny-set", set(), 4, 20, seed=0)
    assert '"tiny-set"' in str(info.value) and "only 3" in str(info.value)
    with pytest.raises(InputError, match='"tiny-set".*only 1'):
        draw_training(docs, "tiny-set", {"a"}, 2, 20, seed=0)


# --------------------------------------------------------------------------- disjointness


def test_check_disjoint_passes_for_disjoint_data():
    docs = make_docs(count=40)
    contexts = draw_contexts(docs, "wiki", 6, 12, 4, seed=0)
    train = draw_training(docs, "wiki", {c.doc_id for c in contexts}, 30, 16, seed=0)
    check_disjoint(train, contexts, "wiki")
    check_disjoint([], contexts, "wiki")
    check_disjoint(train, [], "wiki")


def test_check_disjoint_same_doc_id_in_another_dataset_is_fine():
    """Ids are per dataset: doc "7" of news is not doc "7" of wiki."""
    train = [TrainSample("7", 0, list(range(10, 30)))]
    ctx = EvalContext("news/7", "news", "7", [200, 201, 202, 203], [204])
    check_disjoint(train, [ctx], "wiki")


def test_check_disjoint_rejects_context_from_training_document():
    train = [TrainSample("7", 20, list(range(10, 30)))]
    ctx = EvalContext("wiki/7", "wiki", "7", [200, 201, 202, 203], [204])
    with pytest.raises(RunError, match="wiki/7"):
        check_disjoint(train, [ctx], "wiki")


def test_check_disjoint_same_text_under_two_dataset_names():
    """The same documents registered as two datasets: a context of one lies inside a training window of the other."""
    docs = make_docs(count=12, lengths=(40, 60))
    copies = [TokenizedDocument(f"copy-{d.id}", d.ids) for d in docs]
    contexts = draw_contexts(copies, "copy", 3, 12, 4, seed=0)
    # every window of the original, so the first window of each copied context document is in it
    windows = sum(len(d.ids) // 20 for d in docs)
    train = draw_training(docs, "orig", set(), windows, 20, seed=0)
    with pytest.raises(RunError) as info:
        check_disjoint(train, contexts, "orig")
    message = str(info.value)
    assert "copy/copy-" in message and "orig" in message and "overlap" in message


def test_check_disjoint_finds_context_in_the_middle_of_a_window():
    ctx_ids = [50, 51, 52, 53, 54]
    train = [TrainSample("x", 0, [9, 9, 9, *ctx_ids, 9, 9])]
    ctx = EvalContext("news/1", "news", "1", ctx_ids, [55])
    with pytest.raises(RunError, match="news/1.*x@0"):
        check_disjoint(train, [ctx], "wiki", ngram=5)
    # one token different: no 5-gram in common
    near = EvalContext("news/1", "news", "1", [50, 51, 52, 53, 99], [55])
    check_disjoint(train, [near], "wiki", ngram=5)
    # a probe shorter than the n-gram is checked whole (context + reference)
    short = EvalContext("news/2", "news", "2", [51, 52], [53])
    with pytest.raises(RunError, match="news/2"):
        check_disjoint(train, [near, short], "wiki", ngram=5)


def _document(rng, length: int) -> list[int]:
    return [rng.randrange(10, 5000) for _ in range(length)]


def test_check_disjoint_finds_a_passage_planted_inside_another_document():
    """The old probe (the whole context, BOS included) only matched windows that start at a document start:
    a passage repeated mid-document, or an overlap in the reference alone, went unnoticed."""
    import random

    rng = random.Random(0)
    bos = 1
    eval_doc = [bos] + _document(rng, 64)
    ctx = EvalContext("wiki/e", "wiki", "e", eval_doc[:32], eval_doc[32:64])
    clean = [TrainSample(f"t{i}", 0, _document(rng, 128)) for i in range(5)]
    report = check_disjoint(clean, [ctx], "wiki", special_ids=frozenset({bos}))
    assert report["ngram"] == 13 and report["special_tokens_stripped"] == [bos] and report["sequences"] == 5
    # the context without its BOS, planted in the middle of another document
    planted = _document(rng, 40) + eval_doc[1:32] + _document(rng, 40)
    with pytest.raises(RunError, match="wiki/e shares 13 consecutive tokens .* t-planted@0"):
        check_disjoint(clean + [TrainSample("t-planted", 0, planted)], [ctx], "wiki", special_ids=frozenset({bos}))
    # 13 tokens of the reference alone, mid-window
    leak = _document(rng, 50) + eval_doc[40:53] + _document(rng, 50)
    with pytest.raises(RunError, match="wiki/e"):
        check_disjoint([TrainSample("r", 0, leak)], [ctx], "wiki", special_ids=frozenset({bos}))
    # 12 shared tokens are below the threshold
    near = _document(rng, 50) + eval_doc[40:52] + _document(rng, 50)
    check_disjoint([TrainSample("r", 0, near)], [ctx], "wiki", special_ids=frozenset({bos}))


def test_check_disjoint_strips_special_tokens_between_passages():
    """A training window with an EOS/BOS between the copied tokens still overlaps."""
    import random

    rng = random.Random(1)
    eval_doc = _document(rng, 40)
    ctx = EvalContext("news/x", "news", "x", eval_doc[:20], eval_doc[20:40])
    window = eval_doc[:7] + [2, 1] + eval_doc[7:14]
    with pytest.raises(RunError, match="news/x"):
        check_disjoint([TrainSample("w", 0, window)], [ctx], "wiki", special_ids=frozenset({1, 2}))
    check_disjoint([TrainSample("w", 0, window)], [ctx], "wiki")  # without stripping: runs of 7, no leak
