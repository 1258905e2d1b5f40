"""The batched decoding loop (harness.decoding.decode: greedy and top-p) on the tiny random Llama, checked against transformers."""

from __future__ import annotations

import math

import pytest

from harness.api import DecodeContext, decode
from harness_plugins.decoders._loop import filter_top_k_top_p, top_p_warps
from harness_plugins.decoders.greedy import Greedy
from harness_plugins.decoders.top_p import TopP

torch = pytest.importorskip("torch")

LENGTHS = (3, 9, 6, 12, 1, 7)
CONTEXTS = [[(i * 37 + 11 * j) % 250 + 2 for i in range(n)] for j, n in enumerate(LENGTHS)]
SEEDS = [11, 22, 33, 44, 55, 66]
NEW = 12


def top_p_pick(p: float = 0.9, temperature: float = 0.7, top_k: int = 50) -> dict:
    """decode()'s keyword arguments for the paper's top-p baseline (its warps are stateless: reusable)."""
    return {"processors": top_p_warps(temperature, top_k, p), "sample": True}


def left_padded(contexts):
    width = max(len(c) for c in contexts)
    ids = torch.zeros((len(contexts), width), dtype=torch.long)
    mask = torch.zeros((len(contexts), width), dtype=torch.long)
    for row, ctx in enumerate(contexts):
        ids[row, width - len(ctx) :] = torch.tensor(ctx)
        mask[row, width - len(ctx) :] = 1
    return ids, mask


def until_eos(ids, eos: int = 1):
    ids = list(ids)
    return ids[: ids.index(eos)] if eos in ids else ids


def raw_stats(model, ids):
    """Entropy and top-1 probability of the next-token distribution after ``ids`` (one unpadded forward)."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    dist = torch.distributions.Categorical(logits=logits)
    return dist.entropy(), torch.softmax(logits, -1).max(-1).values


# --------------------------------------------------------------------------- greedy


@pytest.mark.parametrize("stop_at_eos", [False, True])
def test_greedy_matches_transformers_generate(tiny, model, stop_at_eos):
    # EOS = a token greedy emits at step 2 of row 0, so the two policies really differ
    eos = decode(tiny.TinyHandle(model, tiny.ByteCodec(), device="cpu"), CONTEXTS[:1], NEW, [0])[0].output_ids[2]

    class StopCodec(tiny.ByteCodec):
        eos_token_id = eos

    handle = tiny.TinyHandle(model, StopCodec(), device="cpu")
    ours = decode(handle, CONTEXTS, NEW, [0] * len(CONTEXTS), stop_at_eos=stop_at_eos)
    ids, mask = left_padded(CONTEXTS)
    # the fixed-length policy is generate with EOS suppressed; stop_at_eos is generate's own EOS stop
    policy = {"eos_token_id": eos} if stop_at_eos else {"eos_token_id": eos, "suppress_tokens": [eos]}
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=NEW, pad_token_id=0, **policy)
    for row, gen in enumerate(ours):
        reference = until_eos(out[row, ids.shape[1] :].tolist(), eos)
        assert gen.output_ids == reference, f"row {row} (context length {LENGTHS[row]})"
        assert gen.stopped_at_eos == (stop_at_eos and len(reference) < NEW)
        if not stop_at_eos:
            assert len(gen.output_ids) == NEW and eos not in gen.output_ids
    assert any(g.stopped_at_eos for g in ours) == stop_at_eos


def test_greedy_is_batch_invariant(handle):
    batched = decode(handle, CONTEXTS, NEW, SEEDS)
    for row, ctx in enumerate(CONTEXTS):
        alone = decode(handle, [ctx], NEW, [SEEDS[row]])[0]
        assert alone.output_ids == batched[row].output_ids, row
        assert alone.step_entropy == pytest.approx(batched[row].step_entropy, abs=1e-4)
        assert alone.step_top1 == pytest.approx(batched[row].step_top1, abs=1e-5)
    # the Decoder plugin is the same loop
    plugin = Greedy({}).generate(handle, CONTEXTS, NEW, DecodeContext(seeds=SEEDS))
    assert [g.output_ids for g in plugin] == [g.output_ids for g in batched]


def test_greedy_outputs_are_the_argmax_of_a_full_forward(handle, model):
    """No KV cache, no padding: recompute every step's distribution from scratch for each row."""
    batched = decode(handle, CONTEXTS, NEW, SEEDS)
    for row in (0, 3, 4):
        ctx, gen = CONTEXTS[row], batched[row]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ctx + gen.output_ids])).logits[0].float()
        steps = logits[len(ctx) - 1 : len(ctx) - 1 + len(gen.output_ids)]
        assert steps.argmax(-1).tolist() == gen.output_ids
        dist = torch.distributions.Categorical(logits=steps)
        assert gen.step_entropy == pytest.approx(dist.entropy().tolist(), abs=1e-4)
        assert gen.step_top1 == pytest.approx(torch.softmax(steps, -1).max(-1).values.tolist(), abs=1e-5)


def test_decode_restores_training_mode_and_handles_empty_input(handle, model):
    model.train()
    try:
        decode(handle, CONTEXTS[:2], 2, [0, 0])
        assert model.training
    finally:
        model.eval()
    decode(handle, CONTEXTS[:2], 2, [0, 0])
    assert not model.training
    assert decode(handle, [], 5, []) == []


# --------------------------------------------------------------------------- step statistics


def test_first_step_entropy_is_that_of_the_raw_distribution(handle, model):
    greedy = decode(handle, CONTEXTS, NEW, SEEDS)
    # a peaky transform (T 0.7, top-k 50, p 0.9) would give a much lower entropy if it leaked into the stats
    sampled = decode(handle, CONTEXTS, NEW, SEEDS, **top_p_pick())
    for row, ctx in enumerate(CONTEXTS):
        entropy, top1 = raw_stats(model, ctx)
        assert greedy[row].step_entropy[0] == pytest.approx(float(entropy[-1]), abs=1e-4)
        assert sampled[row].step_entropy[0] == pytest.approx(float(entropy[-1]), abs=1e-4)
        assert greedy[row].step_top1[0] == pytest.approx(float(top1[-1]), abs=1e-5)
        assert sampled[row].step_top1[0] == pytest.approx(float(top1[-1]), abs=1e-5)
        assert 0 < greedy[row].step_entropy[0] <= math.log(258) + 1e-4


# --------------------------------------------------------------------------- top-p sampling


def test_top_p_same_seeds_same_outputs_at_any_batch_size(handle):
    pick = top_p_pick()
    six = decode(handle, CONTEXTS, NEW, SEEDS, **pick)
    ones = [decode(handle, [c], NEW, [s], **pick)[0] for c, s in zip(CONTEXTS, SEEDS)]
    threes = decode(handle, CONTEXTS[:3], NEW, SEEDS[:3], **pick) + decode(handle, CONTEXTS[3:], NEW, SEEDS[3:], **pick)
    for row in range(len(CONTEXTS)):
        assert six[row].output_ids == ones[row].output_ids == threes[row].output_ids, row
    # rerunning is deterministic; the plugin agrees with the loop
    assert [g.output_ids for g in decode(handle, CONTEXTS, NEW, SEEDS, **pick)] == [g.output_ids for g in six]
    plugin = TopP({"p": 0.9, "temperature": 0.7, "top_k": 50}).generate(handle, CONTEXTS, NEW, DecodeContext(seeds=SEEDS))
    assert [g.output_ids for g in plugin] == [g.output_ids for g in six]


def test_top_p_different_seeds_differ(handle):
    pick = top_p_pick()
    a = decode(handle, CONTEXTS, NEW, SEEDS, **pick)
    b = decode(handle, CONTEXTS, NEW, [s + 1000 for s in SEEDS], **pick)
    differing = sum(x.output_ids != y.output_ids for x, y in zip(a, b))
    assert differing >= len(CONTEXTS) - 1
    greedy = decode(handle, CONTEXTS, NEW, SEEDS)
    assert [g.output_ids for g in a] != [g.output_ids for g in greedy]
    # the seed of one row does not influence another row
    c = decode(handle, CONTEXTS, NEW, [SEEDS[0] + 1000, *SEEDS[1:]], **pick)
    assert [g.output_ids for g in c[1:]] == [g.output_ids for g in a[1:]]


# --------------------------------------------------------------------------- EOS


def test_rows_stop_before_eos(tiny, model):
    plain = decode(tiny.TinyHandle(model, tiny.ByteCodec(), device="cpu"), CONTEXTS, NEW, SEEDS, stop_at_eos=True)
    first = plain[0].output_ids
    eos = next(t for t in first[2:] if t not in (0, 1))  # a token the model emits at step >= 2 of row 0

    class StopCodec(tiny.ByteCodec):
        eos_token_id = eos

    stopped = decode(tiny.TinyHandle(model, StopCodec(), device="cpu"), CONTEXTS, NEW, SEEDS, stop_at_eos=True)
    assert stopped[0].output_ids == first[: first.index(eos)]
    assert len(stopped[0].output_ids) < len(first) and stopped[0].stopped_at_eos
    for row, (before, after) in enumerate(zip(plain, stopped)):
        expected = until_eos(before.output_ids, eos)
        assert after.output_ids == expected, row
        assert eos not in after.output_ids
        assert after.stopped_at_eos == (len(expected) < NEW), row
        assert len(after.step_entropy) == len(after.step_top1) == len(expected)
        assert after.step_entropy == pytest.approx(before.step_entropy[: len(expected)], abs=1e-4)


def test_eos_at_the_first_step_gives_an_empty_output(tiny, model):
    first = decode(tiny.TinyHandle(model, tiny.ByteCodec(), device="cpu"), [CONTEXTS[1]], 3, [0])[0]

    class StopCodec(tiny.ByteCodec):
        eos_token_id = first.output_ids[0]

    handle = tiny.TinyHandle(model, StopCodec(), device="cpu")
    gen = decode(handle, [CONTEXTS[1]], 3, [0], stop_at_eos=True)[0]
    assert gen.output_ids == [] and gen.step_entropy == [] and gen.step_top1 == [] and gen.stopped_at_eos
    # the default policy: EOS suppressed, the row runs to full length with the runner-up, stats stay raw
    fixed = decode(handle, [CONTEXTS[1]], 3, [0])[0]
    assert len(fixed.output_ids) == 3 and first.output_ids[0] not in fixed.output_ids[:1] and not fixed.stopped_at_eos
    assert fixed.step_entropy[0] == pytest.approx(first.step_entropy[0], abs=1e-6)
    assert fixed.step_top1[0] == pytest.approx(first.step_top1[0], abs=1e-6)


def test_no_eos_token_nothing_to_suppress(tiny, model):
    class NoEos(tiny.ByteCodec):
        eos_token_id = None

    for stop in (False, True):
        gens = decode(tiny.TinyHandle(model, NoEos(), device="cpu"), CONTEXTS, NEW, SEEDS, stop_at_eos=stop)
        assert all(len(g.output_ids) == NEW and not g.stopped_at_eos for g in gens)


# --------------------------------------------------------------------------- filter_top_k_top_p


def kept(scores) -> list[int]:
    return torch.nonzero(torch.isfinite(scores[0])).flatten().tolist()


def test_top_p_keeps_the_smallest_set_reaching_p():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.15, 0.1]]))
    assert kept(filter_top_k_top_p(logits, 1.0, 0, 0.45)) == [0]
    assert kept(filter_top_k_top_p(logits, 1.0, 0, 0.55)) == [0, 1]
    assert kept(filter_top_k_top_p(logits, 1.0, 0, 0.74)) == [0, 1]
    assert kept(filter_top_k_top_p(logits, 1.0, 0, 0.76)) == [0, 1, 2]
    assert kept(filter_top_k_top_p(logits, 1.0, 0, 0.95)) == [0, 1, 2, 3]
    assert kept(filter_top_k_top_p(logits, 1.0, 0, 1.0)) == [0, 1, 2, 3]


def test_top_p_works_on_unsorted_rows_independently():
    probs = torch.tensor([[0.1, 0.2, 0.05, 0.6, 0.05], [0.3, 0.05, 0.05, 0.35, 0.25]])
    out = filter_top_k_top_p(torch.log(probs), 1.0, 0, 0.75)
    assert torch.isfinite(out[0]).tolist() == [False, True, False, True, False]  # 0.6 + 0.2
    assert torch.isfinite(out[1]).tolist() == [True, False, False, True, True]  # 0.35 + 0.3 + 0.25
    # survivors keep their (temperature-scaled) value; the rest are -inf
    assert out[0, 3] == pytest.approx(math.log(0.6))
    assert torch.isneginf(out[0, 0])


def test_top_token_always_survives():
    logits = torch.tensor([[0.1, 3.0, -1.0, 2.9], [5.0, 5.0, 5.0, 5.0]])
    out = filter_top_k_top_p(logits, 1.0, 0, 1e-6)
    assert torch.isfinite(out[0]).tolist() == [False, True, False, False]
    assert int(torch.isfinite(out[1]).sum()) == 1
    out = filter_top_k_top_p(logits, 1.0, 1, 1.0)
    assert torch.isfinite(out[0]).tolist() == [False, True, False, False]


def test_top_k_boundary_keeps_ties():
    logits = torch.tensor([[3.0, 2.0, 2.0, 1.0, 0.0]])
    assert kept(filter_top_k_top_p(logits, 1.0, 2, 1.0)) == [0, 1, 2]
    assert kept(filter_top_k_top_p(logits, 1.0, 3, 1.0)) == [0, 1, 2]
    assert kept(filter_top_k_top_p(logits, 1.0, 4, 1.0)) == [0, 1, 2, 3]
    assert kept(filter_top_k_top_p(logits, 1.0, 1, 1.0)) == [0]
    assert kept(filter_top_k_top_p(logits, 1.0, 0, 1.0)) == [0, 1, 2, 3, 4], "top_k 0 is off"
    assert kept(filter_top_k_top_p(logits, 1.0, 50, 1.0)) == [0, 1, 2, 3, 4], "top_k above the vocabulary is off"


def test_top_k_then_top_p_on_the_renormalised_survivors():
    # top-k 2 leaves [0.4, 0.35] -> renormalised 0.533, 0.467: p 0.5 keeps only the first
    logits = torch.log(torch.tensor([[0.4, 0.35, 0.15, 0.1]]))
    assert kept(filter_top_k_top_p(logits, 1.0, 2, 0.5)) == [0]
    assert kept(filter_top_k_top_p(logits, 1.0, 0, 0.5)) == [0, 1]


def test_temperature_is_applied_before_truncation():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    assert kept(filter_top_k_top_p(logits, 1.0, 0, 0.6)) == [0, 1]
    # T 0.25 sharpens to about [0.86, 0.11, 0.02]
    assert kept(filter_top_k_top_p(logits, 0.25, 0, 0.6)) == [0]
    scaled = filter_top_k_top_p(logits, 0.5, 0, 1.0)
    assert torch.allclose(scaled, logits / 0.5)


def test_filter_matches_transformers_warpers():
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn((64, 40), generator=gen) * 2.0
    for temperature, top_k, top_p in [(0.7, 50, 0.9), (1.0, 10, 0.5), (1.3, 0, 0.8), (0.5, 5, 1.0), (1.0, 0, 0.3)]:
        ours = filter_top_k_top_p(logits, temperature, top_k, top_p)
        theirs = TemperatureLogitsWarper(temperature)(None, logits.clone())
        if top_k:
            theirs = TopKLogitsWarper(top_k)(None, theirs)
        if top_p < 1.0:
            theirs = TopPLogitsWarper(top_p)(None, theirs)
        assert torch.equal(torch.isfinite(ours), torch.isfinite(theirs)), (temperature, top_k, top_p)
        finite = torch.isfinite(ours)
        assert torch.allclose(ours[finite], theirs[finite])


def test_top_p_identical_at_batch_sizes_1_3_and_8(handle):
    """The issue's wording: the same seed gives the same continuation at batch sizes 1, 3 and 8."""
    pick = top_p_pick()
    contexts = CONTEXTS + CONTEXTS[:2]  # 8 rows (the last two repeat contexts with their own seeds)
    seeds = SEEDS + [77, 88]
    eight = decode(handle, contexts, NEW, seeds, **pick)
    ones = [decode(handle, [c], NEW, [s], **pick)[0] for c, s in zip(contexts, seeds)]
    threes = [g for i in range(0, 8, 3) for g in decode(handle, contexts[i : i + 3], NEW, seeds[i : i + 3], **pick)]
    for row in range(8):
        assert eight[row].output_ids == ones[row].output_ids == threes[row].output_ids, row


# --------------------------------------------------------------------------- processors in the loop


def ids_of_decode(gens):
    return [g.output_ids for g in gens]


class Spy:
    """Records the scores it is handed and reports one fact per row."""

    def __init__(self, name: str = "seen_steps"):
        self.name = name
        self.seen: list = []

    def __call__(self, scores, history):
        self.seen.append(scores.clone())
        return scores

    def row_extras(self):
        return [{self.name: len(self.seen)} for _ in range(self.seen[0].shape[0])]


@pytest.mark.parametrize("stop_at_eos", [False, True])
def test_processors_see_eos_suppressed_scores_and_report_extras(handle, stop_at_eos):
    spy = Spy()
    gens = decode(handle, CONTEXTS, 4, SEEDS, [spy], stop_at_eos=stop_at_eos)
    eos = handle.codec.eos_token_id
    assert len(spy.seen) == 4 and all(bool(torch.isneginf(s[:, eos]).all()) != stop_at_eos for s in spy.seen)
    assert [g.extras for g in gens] == [{"seen_steps": 4}] * len(CONTEXTS)
    assert ids_of_decode(gens) == ids_of_decode(decode(handle, CONTEXTS, 4, SEEDS, stop_at_eos=stop_at_eos))


def test_two_processors_may_not_report_the_same_extra(handle):
    from harness.errors import PluginError

    with pytest.raises(PluginError, match="seen_steps"):
        decode(handle, CONTEXTS[:2], 2, SEEDS[:2], [Spy(), Spy()])
    gens = decode(handle, CONTEXTS[:2], 2, SEEDS[:2], [Spy(), Spy("other")])
    assert gens[0].extras == {"seen_steps": 2, "other": 2}


def test_top_p_warps_are_the_filter_step_by_step():
    gen = torch.Generator().manual_seed(7)
    logits = torch.randn((16, 40), generator=gen) * 2.0
    for temperature, top_k, top_p in [(0.7, 50, 0.9), (1.3, 5, 0.5), (1.0, 0, 1.0)]:
        scores = logits
        for warp in top_p_warps(temperature, top_k, top_p):
            scores = warp(scores, None)
        assert torch.equal(scores, filter_top_k_top_p(logits, temperature, top_k, top_p))
