"""Every bundled decoder end to end on the tiny Llama: against transformers, a reference recomputation,
batch invariance, and the citation blocker on a model that has memorised its training sequences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import TINY_PLUGINS, tiny_benchmark, write_yaml
from harness.api import DecodeContext, FitContext, rescore
from harness.errors import InputError
from harness.params import resolve_params
from harness_plugins.decoders.beam import Beam
from harness_plugins.decoders.citation_blocked import CitationBlocked
from harness_plugins.decoders.contrastive import Contrastive
from harness_plugins.decoders.entropy_matched import EntropyMatchedTemperature
from harness_plugins.decoders.greedy import Greedy
from harness_plugins.decoders.min_p import MinP
from harness_plugins.decoders.no_repeat_ngram import NoRepeatNGramGreedy
from harness_plugins.decoders._ngram import word_start_rule
from harness_plugins.decoders.repetition_penalty import RepetitionPenaltyGreedy
from harness_plugins.decoders.temperature import Temperature
from harness_plugins.decoders.top_k import TopK
from harness_plugins.decoders.top_p import TopP
from harness_plugins.decoders.typical import Typical
from harness_plugins.recipes.hyperfit import Hyperfit

torch = pytest.importorskip("torch")

LENGTHS = (3, 9, 6, 12, 1, 7)
CONTEXTS = [[(i * 37 + 11 * j) % 250 + 2 for i in range(n)] for j, n in enumerate(LENGTHS)]
EQUAL = [[(i * 29 + 13 * j) % 250 + 2 for i in range(6)] for j in range(4)]  # no padding needed
SEEDS = [11, 22, 33, 44, 55, 66]
NEW = 12

TEXTS = [
    "the river stone light garden window market winter silver",
    "forest letter music paper bridge harbor mountain candle orange",
    "valley thunder shadow quiet yellow engine island morning copper",
    "field river candle music winter bridge stone paper island garden",
]


def ctx(seeds=None, train=None, stop_at_eos=False) -> DecodeContext:
    return DecodeContext(seeds=list(seeds if seeds is not None else SEEDS), train_sequences=train, stop_at_eos=stop_at_eos)


def ids_of(gens):
    return [g.output_ids for g in gens]


def until_eos(ids, eos: int = 1):
    ids = list(ids)
    return ids[: ids.index(eos)] if eos in ids else ids


def hf_generate(model, contexts, stop_at_eos=False, **kwargs):
    """transformers' generate on left-padded contexts; the continuation of each row, cut at EOS.

    Our default policy (fixed length) is generate with EOS suppressed (``suppress_tokens=[eos]``).
    """
    if not stop_at_eos:
        kwargs.setdefault("suppress_tokens", [1])
    width = max(len(c) for c in contexts)
    ids = torch.zeros((len(contexts), width), dtype=torch.long)
    mask = torch.zeros((len(contexts), width), dtype=torch.long)
    for row, c in enumerate(contexts):
        ids[row, width - len(c) :] = torch.tensor(c)
        mask[row, width - len(c) :] = 1
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW, pad_token_id=0, **kwargs)
    return [until_eos(row) for row in out[:, width:].tolist()]


# --------------------------------------------------------------------------- penalties vs transformers generate


@pytest.mark.parametrize("penalty", [1.2, 1.5, 0.8])
def test_repetition_penalty_matches_generate(handle, model, penalty):
    ours = RepetitionPenaltyGreedy({"penalty": penalty}).generate(handle, EQUAL, NEW, ctx(SEEDS[:4]))
    assert ids_of(ours) == hf_generate(model, EQUAL, do_sample=False, repetition_penalty=penalty)
    for row, c in enumerate(CONTEXTS):  # padded rows: transformers would penalise the pad token, so one by one
        alone = RepetitionPenaltyGreedy({"penalty": penalty}).generate(handle, [c], NEW, ctx([0]))
        assert alone[0].output_ids == hf_generate(model, [c], do_sample=False, repetition_penalty=penalty)[0], row
    batched = RepetitionPenaltyGreedy({"penalty": penalty}).generate(handle, CONTEXTS, NEW, ctx())
    assert ids_of(batched) == [
        RepetitionPenaltyGreedy({"penalty": penalty}).generate(handle, [c], NEW, ctx([0]))[0].output_ids for c in CONTEXTS
    ]


def test_repetition_penalty_changes_greedy(handle):
    greedy = Greedy({}).generate(handle, CONTEXTS, NEW, ctx())
    penalised = RepetitionPenaltyGreedy({"penalty": 1.5}).generate(handle, CONTEXTS, NEW, ctx())
    assert ids_of(greedy) != ids_of(penalised)
    assert [g.step_entropy[0] for g in greedy] == pytest.approx([g.step_entropy[0] for g in penalised], abs=1e-5)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_matches_generate(handle, model, n):
    ours = NoRepeatNGramGreedy({"n": n}).generate(handle, EQUAL, NEW, ctx(SEEDS[:4]))
    assert ids_of(ours) == hf_generate(model, EQUAL, do_sample=False, no_repeat_ngram_size=n)
    for c in CONTEXTS:
        alone = NoRepeatNGramGreedy({"n": n}).generate(handle, [c], NEW, ctx([0]))[0].output_ids
        assert alone == hf_generate(model, [c], do_sample=False, no_repeat_ngram_size=n)[0]
        grams = [tuple((c + alone)[i : i + n]) for i in range(len(c + alone) - n + 1)]
        assert len(grams) == len(set(grams)), "no n-gram repeats in context + output"


def test_no_repeat_ngram_without_context(handle):
    gens = NoRepeatNGramGreedy({"n": 2, "include_context": False}).generate(handle, CONTEXTS, NEW, ctx())
    for gen in gens:
        grams = list(zip(gen.output_ids, gen.output_ids[1:]))
        assert len(grams) == len(set(grams))
    greedy = ids_of(Greedy({}).generate(handle, CONTEXTS, NEW, ctx()))
    assert ids_of(gens) != greedy


# --------------------------------------------------------------------------- beam search


def test_beam_matches_generate_and_is_batch_invariant(handle, model):
    for beams, length_penalty in [(4, 1.0), (3, 0.5)]:
        decoder = Beam({"num_beams": beams, "length_penalty": length_penalty})
        batched = decoder.generate(handle, CONTEXTS, NEW, ctx())
        expected = hf_generate(model, CONTEXTS, do_sample=False, num_beams=beams, length_penalty=length_penalty)
        assert ids_of(batched) == expected
        for row, c in enumerate(CONTEXTS):
            assert decoder.generate(handle, [c], NEW, ctx([0]))[0].output_ids == batched[row].output_ids, row
    assert ids_of(Beam({"num_beams": 1}).generate(handle, CONTEXTS, NEW, ctx())) == ids_of(
        Greedy({}).generate(handle, CONTEXTS, NEW, ctx())
    ), "one beam is greedy"


def test_beam_ignores_the_models_own_generation_settings(handle, model):
    before = Beam({}).generate(handle, CONTEXTS[:2], NEW, ctx(SEEDS[:2]))
    model.generation_config.repetition_penalty = 3.0
    try:
        after = Beam({}).generate(handle, CONTEXTS[:2], NEW, ctx(SEEDS[:2]))
        assert model.generation_config.repetition_penalty == 3.0, "restored"
    finally:
        model.generation_config.repetition_penalty = None
    assert ids_of(after) == ids_of(before)


def test_rescore_gives_the_loops_raw_statistics(handle):
    greedy = Greedy({}).generate(handle, CONTEXTS, NEW, ctx())
    stats = rescore(handle, CONTEXTS, ids_of(greedy))
    for gen, (entropy, top1) in zip(greedy, stats):
        assert entropy == pytest.approx(gen.step_entropy, abs=1e-4)
        assert top1 == pytest.approx(gen.step_top1, abs=1e-5)
    beam = Beam({}).generate(handle, CONTEXTS, NEW, ctx())
    assert all(len(g.step_entropy) == len(g.step_top1) == len(g.output_ids) for g in beam)


# --------------------------------------------------------------------------- contrastive search


def reference_contrastive(model, context, new_tokens, alpha, k, eos=1, stop_at_eos=False):
    """Contrastive search by brute force: no cache, no batching, every candidate run from scratch.

    Without ``stop_at_eos`` EOS is removed from the distribution (as transformers' suppress_tokens would).
    """
    seq = list(context)
    out = []
    for _ in range(new_tokens):
        with torch.no_grad():
            full = model(input_ids=torch.tensor([seq]), output_hidden_states=True)
        previous = full.hidden_states[-1][0].float()
        logits = full.logits[0, -1].float().clone()
        if not stop_at_eos:
            logits[eos] = float("-inf")
        probs = torch.softmax(logits, -1)
        top_probs, top_ids = probs.topk(k)
        scores = []
        for p, v in zip(top_probs.tolist(), top_ids.tolist()):
            with torch.no_grad():
                h = model(input_ids=torch.tensor([seq + [v]]), output_hidden_states=True).hidden_states[-1][0, -1].float()
            sim = torch.nn.functional.cosine_similarity(previous, h.unsqueeze(0), dim=-1).max()
            scores.append((1 - alpha) * p - alpha * float(sim))
        token = top_ids.tolist()[max(range(k), key=lambda i: scores[i])]
        if token == eos:
            break
        out.append(token)
        seq.append(token)
    return out


def test_contrastive_matches_a_brute_force_reference(handle, model):
    for alpha, k in [(0.6, 4), (0.3, 3)]:
        batched = Contrastive({"penalty_alpha": alpha, "top_k": k}).generate(handle, CONTEXTS, NEW, ctx())
        for row in (0, 1, 4):
            assert batched[row].output_ids == reference_contrastive(model, CONTEXTS[row], NEW, alpha, k), (alpha, k, row)
        for row, c in enumerate(CONTEXTS):
            alone = Contrastive({"penalty_alpha": alpha, "top_k": k}).generate(handle, [c], NEW, ctx([0]))[0]
            assert alone.output_ids == batched[row].output_ids, row


def test_contrastive_alpha_zero_is_greedy_and_stats_are_raw(handle):
    greedy = Greedy({}).generate(handle, CONTEXTS, NEW, ctx())
    zero = Contrastive({"penalty_alpha": 0.0, "top_k": 4}).generate(handle, CONTEXTS, NEW, ctx())
    assert ids_of(zero) == ids_of(greedy)
    default = Contrastive({}).generate(handle, CONTEXTS, NEW, ctx())
    assert ids_of(default) != ids_of(greedy)
    stats = rescore(handle, CONTEXTS, ids_of(default))
    for gen, (entropy, top1) in zip(default, stats):
        assert gen.step_entropy == pytest.approx(entropy, abs=1e-4)
        assert gen.step_top1 == pytest.approx(top1, abs=1e-5)


def test_contrastive_stops_at_eos(tiny, model):
    first = Contrastive({}).generate(tiny.TinyHandle(model, tiny.ByteCodec(), device="cpu"), CONTEXTS, NEW, ctx(stop_at_eos=True))
    stop = first[1].output_ids[3]

    class StopCodec(tiny.ByteCodec):
        eos_token_id = stop

    handle = tiny.TinyHandle(model, StopCodec(), device="cpu")
    stopped = Contrastive({}).generate(handle, CONTEXTS, NEW, ctx(stop_at_eos=True))
    for before, after in zip(first, stopped):
        assert after.output_ids == until_eos(before.output_ids, stop)
        assert len(after.step_entropy) == len(after.output_ids)
        assert after.stopped_at_eos == (len(after.output_ids) < NEW)
    assert stopped[1].stopped_at_eos
    fixed = Contrastive({}).generate(handle, CONTEXTS, NEW, ctx())
    assert all(len(g.output_ids) == NEW and stop not in g.output_ids for g in fixed)
    for row in (1, 4):
        assert fixed[row].output_ids == reference_contrastive(model, CONTEXTS[row], NEW, 0.6, 4, eos=stop), row


# --------------------------------------------------------------------------- the EOS policy, every decoder


def eos_heavy(model, bias: float):
    """A copy of the tiny model whose lm_head adds ``bias`` to the EOS logit (id 1): EOS is the likely pick."""
    import copy

    heavy = copy.deepcopy(model)
    old = heavy.lm_head
    head = torch.nn.Linear(old.in_features, old.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(old.weight)
        head.bias.zero_()
        head.bias[1] = bias
    heavy.lm_head = head
    heavy.eval()
    return heavy


def every_decoder(train):
    return [
        ("greedy", Greedy({}), None),
        ("top-p", TopP({}), None),
        ("top-k", TopK({"k": 20, "temperature": 0.9}), None),
        ("typical", Typical({"mass": 0.8, "temperature": 1.0}), None),
        ("min-p", MinP({"p": 0.05, "temperature": 1.2}), None),
        ("temperature", Temperature({"temperature": 0.8}), None),
        ("entropy-matched", EntropyMatchedTemperature({"target_entropy": 0.5}), None),
        ("repetition-penalty", RepetitionPenaltyGreedy({"penalty": 1.3}), None),
        ("no-repeat-ngram", NoRepeatNGramGreedy({"n": 2}), None),
        ("citation-blocked", CitationBlocked({"window": 2}), train),
        ("contrastive", Contrastive({}), None),
        ("beam", Beam({"num_beams": 3}), None),
    ]


@pytest.fixture(scope="module")
def heavy_handle(tiny, model):
    """EOS (+6 on its logit) is the argmax at most steps and carries most of the mass."""
    return tiny.TinyHandle(eos_heavy(model, 6.0), tiny.ByteCodec(), device="cpu")


@pytest.mark.parametrize("index", range(12), ids=lambda i: every_decoder(None)[i][0])
def test_default_policy_every_row_has_exactly_new_tokens(heavy_handle, index):
    train = [c + c for c in CONTEXTS]
    name, decoder, train_seqs = every_decoder(train)[index]
    gens = decoder.generate(heavy_handle, CONTEXTS, NEW, ctx(train=train_seqs))
    for row, gen in enumerate(gens):
        assert len(gen.output_ids) == NEW, (name, row, gen.output_ids)
        assert 1 not in gen.output_ids and not gen.stopped_at_eos, (name, row)
        assert len(gen.step_entropy) == len(gen.step_top1) == NEW
    # statistics come from the raw distribution, EOS mass included: top-1 is EOS's probability (> 0.5)
    stats = rescore(heavy_handle, CONTEXTS, ids_of(gens))
    for gen, (entropy, top1) in zip(gens, stats):
        assert gen.step_entropy == pytest.approx(entropy, abs=1e-4)
        assert gen.step_top1 == pytest.approx(top1, abs=1e-5)
    assert max(g.step_top1[0] for g in gens) > 0.5, "EOS dominates the raw distribution (the test has teeth)"
    # still batch-independent
    for row in (0, 3):
        alone = decoder.generate(heavy_handle, [CONTEXTS[row]], NEW, ctx([SEEDS[row]], train_seqs))[0]
        assert alone.output_ids == gens[row].output_ids, (name, row)


@pytest.mark.parametrize("index", range(12), ids=lambda i: every_decoder(None)[i][0])
def test_stop_at_eos_policy_stops_and_flags_rows(heavy_handle, index):
    train = [c + c for c in CONTEXTS]
    name, decoder, train_seqs = every_decoder(train)[index]
    gens = decoder.generate(heavy_handle, CONTEXTS, NEW, ctx(train=train_seqs, stop_at_eos=True))
    assert sum(g.stopped_at_eos for g in gens) >= 3, name
    for row, gen in enumerate(gens):
        assert 1 not in gen.output_ids, (name, row)
        assert len(gen.step_entropy) == len(gen.step_top1) == len(gen.output_ids) <= NEW
        assert gen.stopped_at_eos == (len(gen.output_ids) < NEW), (name, row)


def test_beam_stop_at_eos_matches_generate(tiny, model):
    eos = Greedy({}).generate(tiny.TinyHandle(model, tiny.ByteCodec(), device="cpu"), CONTEXTS[:1], NEW, ctx([0]))[0].output_ids[2]

    class StopCodec(tiny.ByteCodec):
        eos_token_id = eos

    handle = tiny.TinyHandle(model, StopCodec(), device="cpu")
    for stop in (False, True):
        ours = Beam({"num_beams": 3}).generate(handle, CONTEXTS, NEW, ctx(stop_at_eos=stop))
        policy = {"eos_token_id": eos} if stop else {"eos_token_id": eos, "suppress_tokens": [eos]}
        expected = [until_eos(r, eos) for r in hf_generate(model, CONTEXTS, stop_at_eos=True, do_sample=False, num_beams=3, **policy)]
        assert ids_of(ours) == expected
        assert [g.stopped_at_eos for g in ours] == [stop and len(e) < NEW for e in expected]
        if not stop:
            assert all(len(g.output_ids) == NEW for g in ours)
    assert any(len(e) < NEW for e in expected), "EOS is reached with stop_at_eos (the test has teeth)"


# --------------------------------------------------------------------------- sampled decoders: batch invariance


SAMPLERS = [
    TopK({"k": 20, "temperature": 0.9}),
    Typical({"mass": 0.8, "temperature": 1.0}),
    MinP({"p": 0.05, "temperature": 1.2}),
    Temperature({"temperature": 0.8}),
    EntropyMatchedTemperature({"target_entropy": 5.0}),
]


@pytest.mark.parametrize("decoder", SAMPLERS, ids=lambda d: d.name)
def test_sampled_decoders_are_batch_invariant(handle, decoder):
    six = decoder.generate(handle, CONTEXTS, NEW, ctx())
    ones = [decoder.generate(handle, [c], NEW, ctx([s]))[0] for c, s in zip(CONTEXTS, SEEDS)]
    threes = decoder.generate(handle, CONTEXTS[:3], NEW, ctx(SEEDS[:3])) + decoder.generate(handle, CONTEXTS[3:], NEW, ctx(SEEDS[3:]))
    assert ids_of(six) == ids_of(ones) == ids_of(threes)
    assert ids_of(decoder.generate(handle, CONTEXTS, NEW, ctx())) == ids_of(six), "rerun"
    other = decoder.generate(handle, CONTEXTS, NEW, ctx([s + 1000 for s in SEEDS]))
    assert sum(a != b for a, b in zip(ids_of(six), ids_of(other))) >= 4, "the seed matters"
    greedy = Greedy({}).generate(handle, CONTEXTS, NEW, ctx())
    assert [g.step_entropy[0] for g in six] == pytest.approx([g.step_entropy[0] for g in greedy], abs=1e-4), "raw stats"


def test_top_k_one_is_greedy(handle):
    assert ids_of(TopK({"k": 1, "temperature": 1.0}).generate(handle, CONTEXTS, NEW, ctx())) == ids_of(
        Greedy({}).generate(handle, CONTEXTS, NEW, ctx())
    )


# --------------------------------------------------------------------------- entropy-matched temperature


def context_entropy(model, context, temperature):
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([context])).logits[0].float()
    return float(torch.distributions.Categorical(logits=logits / temperature).entropy().mean())


@pytest.mark.parametrize("target", [4.0, 5.2])  # the random tiny model is nearly uniform (5.55 nats max)
def test_entropy_matched_temperature_hits_the_target(handle, model, target):
    decoder = EntropyMatchedTemperature({"target_entropy": target, "tolerance": 0.01})
    gens = decoder.generate(handle, CONTEXTS, NEW, ctx())
    for c, gen in zip(CONTEXTS, gens):
        assert 0.05 <= gen.extras["temperature"] <= 5.0
        assert context_entropy(model, c, gen.extras["temperature"]) == pytest.approx(target, abs=0.01)
    batch = EntropyMatchedTemperature({"target_entropy": target, "calibration": "batch"}).generate(handle, CONTEXTS, NEW, ctx())
    assert len({g.extras["temperature"] for g in batch}) == 1
    pooled = [context_entropy(model, c, batch[0].extras["temperature"]) * len(c) for c in CONTEXTS]
    assert sum(pooled) / sum(map(len, CONTEXTS)) == pytest.approx(target, abs=0.01)


def test_entropy_matched_temperature_out_of_range_and_bad_bounds(handle, caplog):
    gens = EntropyMatchedTemperature({"target_entropy": 0.0, "min_temperature": 0.5}).generate(handle, CONTEXTS[:2], 4, ctx(SEEDS[:2]))
    assert [g.extras["temperature"] for g in gens] == pytest.approx([0.5, 0.5], rel=1e-4)
    assert "not reachable" in caplog.text
    with pytest.raises(InputError, match="min_temperature"):
        EntropyMatchedTemperature({"target_entropy": 1.0, "min_temperature": 2.0, "max_temperature": 1.0}).generate(
            handle, CONTEXTS, 4, ctx()
        )


def test_temperature_sampling_equals_entropy_matched_at_the_same_temperature(handle):
    decoder = EntropyMatchedTemperature({"target_entropy": 4.5, "calibration": "batch"})
    matched = decoder.generate(handle, CONTEXTS, NEW, ctx())
    exact = decoder.temperatures(handle, CONTEXTS)[0]  # the record holds it rounded to 6 decimals
    assert matched[0].extras["temperature"] == round(exact, 6)
    plain = Temperature({"temperature": exact}).generate(handle, CONTEXTS, NEW, ctx())
    assert ids_of(plain) == ids_of(matched)


# --------------------------------------------------------------------------- citation blocker on a memorised model


@pytest.fixture(scope="module")
def memorised(tiny, tmp_path_factory):
    codec = tiny.ByteCodec()
    seqs = [codec.encode(t) for t in TEXTS]
    length = min(map(len, seqs))
    seqs = [s[:length] for s in seqs]
    handle = tiny.TinyHandle(tiny.tiny_llama(), codec, device="cpu")
    threads = torch.get_num_threads()  # module-scoped: set up before conftest's one-thread fixture
    torch.set_num_threads(1)
    config, problems = resolve_params(Hyperfit.params, {"lr": 3e-3, "epochs": 150, "batch_size": 4})
    assert not problems.items
    recipe = Hyperfit(config)
    try:
        recipe.fit(handle, seqs, FitContext(seed=0, work_dir=tmp_path_factory.mktemp("fit")))
    finally:
        torch.set_num_threads(threads)
    return handle, seqs


def grams(seq, n):
    return {tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)}


def train_grams(seqs, n):
    return set().union(*(grams(s, n) for s in seqs))


def blocked_contexts(seqs):
    return [s[:8] for s in seqs] + [s[:12] for s in seqs[:2]]


@pytest.mark.parametrize("window", [5, 3])
def test_citation_blocked_never_reproduces_a_training_ngram(memorised, window):
    handle, seqs = memorised
    contexts = blocked_contexts(seqs)
    forbidden = train_grams(seqs, window + 1)
    greedy = Greedy({}).generate(handle, contexts, 30, ctx([0] * len(contexts)))
    copied = sum(len(grams(g.output_ids, window + 1) & forbidden) for g in greedy)
    assert copied >= 20, "the memorised model's greedy output copies its training data (the test has teeth)"
    gens = CitationBlocked({"window": window}).generate(handle, contexts, 30, ctx([0] * len(contexts), seqs))
    for gen, g in zip(gens, greedy):
        assert not grams(gen.output_ids, window + 1) & forbidden
        assert len(gen.output_ids) == 30
        assert 0 < gen.extras["blocked_steps"] <= len(gen.output_ids)
        assert g.output_ids[:window] == gen.output_ids[:window], "nothing is blocked before k tokens are generated"
        assert gen.step_entropy[0] == pytest.approx(g.step_entropy[0], abs=1e-5)
    assert "blocked_steps" not in greedy[0].extras


def test_citation_blocked_include_context(memorised):
    handle, seqs = memorised
    contexts = blocked_contexts(seqs)
    forbidden = train_grams(seqs, 6)
    plain = CitationBlocked({}).generate(handle, contexts, 30, ctx([0] * len(contexts), seqs))
    spanning = CitationBlocked({"include_context": True}).generate(handle, contexts, 30, ctx([0] * len(contexts), seqs))
    for c, gen in zip(contexts, spanning):
        full = c + gen.output_ids
        ending_in_output = {tuple(full[i - 5 : i + 1]) for i in range(max(5, len(c)), len(full))}
        assert not ending_in_output & forbidden
        assert gen.extras["blocked_steps"] > 0
    # without include_context the first tokens continue the memorised prompt; with it they cannot
    first = [g.output_ids[0] for g in plain]
    assert any(tuple(c[-5:] + [t]) in forbidden for c, t in zip(contexts, first))
    assert ids_of(plain) != ids_of(spanning)


def test_citation_blocked_word_boundary(memorised):
    handle, seqs = memorised
    contexts = blocked_contexts(seqs)
    forbidden = train_grams(seqs, 6)
    starts_word = word_start_rule(handle.codec)
    space = handle.codec.encode(" ")[0]
    assert starts_word(space) and not starts_word(handle.codec.encode("a")[0])
    gens = CitationBlocked({"word_boundary": True}).generate(handle, contexts, 30, ctx([0] * len(contexts), seqs))
    strict = CitationBlocked({}).generate(handle, contexts, 30, ctx([0] * len(contexts), seqs))
    finished_words = 0
    for gen in gens:
        copied = grams(gen.output_ids, 6) & forbidden
        assert all(not starts_word(g[-1]) for g in copied), "only word-internal tokens may continue a training 5-gram"
        finished_words += len(copied)
        assert gen.extras["blocked_steps"] > 0
    assert finished_words > 0, "words were let to finish"
    assert ids_of(gens) != ids_of(strict)


def test_citation_blocked_needs_training_sequences_and_caches_its_index(memorised):
    handle, seqs = memorised
    decoder = CitationBlocked({})
    with pytest.raises(InputError, match="citation-blocked needs a recipe that trains"):
        decoder.generate(handle, [seqs[0][:8]], 4, ctx([0]))
    decoder.generate(handle, [seqs[0][:8]], 4, ctx([0], seqs))
    index = decoder.index_for([list(s) for s in seqs])
    assert decoder.index_for(seqs) is index, "built once per training set"
    assert decoder.index_for(seqs[:2]) is not index


# --------------------------------------------------------------------------- through the runner


def test_runner_records_blocked_steps(tmp_path: Path):
    from harness.config import load_benchmark
    from harness.plugin_manager import PluginOptions, load_plugins
    from harness.runner import Runner, RunOptions

    registry = load_plugins(PluginOptions(local_files=(str(TINY_PLUGINS),))).registry
    data = tiny_benchmark(
        tmp_path,
        name="decoders",
        decoders={"greedy": {"plugin": "greedy"}, "blocked": {"plugin": "citation-blocked", "window": 3},
                  "rep": {"plugin": "repetition-penalty"},
                  "matched": {"plugin": "entropy-matched-temperature", "target_entropy": 2.0}},
        matrix=[{"recipe": "base", "decoder": ["greedy", "rep", "matched"]}, {"recipe": "fit", "decoder": ["blocked"]}],
    )  # fmt: skip
    data["eval"]["datasets"] = ["train-set"]
    bench = load_benchmark(write_yaml(tmp_path / "decoders.yaml", data), registry)
    Runner(bench, RunOptions(results_root=tmp_path / "results", cache_root=tmp_path / "cache")).run()
    cells = tmp_path / "results" / "decoders" / "cells"

    def records(cell):
        return [json.loads(line) for line in (cells / cell / "generations.jsonl").read_text(encoding="utf-8").splitlines()]

    blocked = records("tiny__fit__blocked")
    assert blocked and all(isinstance(r["blocked_steps"], int) and r["blocked_steps"] >= 0 for r in blocked)
    assert all("blocked_steps" not in r and "temperature" not in r for r in records("tiny__base__greedy"))
    assert all("blocked_steps" not in r for r in records("tiny__base__rep"))
    assert all(0.05 <= r["temperature"] <= 5.0 for r in records("tiny__base__matched"))
    train = json.loads((tmp_path / "results" / "decoders" / "recipes" / "tiny__fit" / "train_samples.jsonl").read_text().splitlines()[0])
    assert train  # the training sequences the blocker used are part of the results

    # the `none` recipe has no training sequences: a clear input error
    data["matrix"] = [{"recipe": "base", "decoder": ["blocked"]}]
    bench = load_benchmark(write_yaml(tmp_path / "bad.yaml", data), registry)
    with pytest.raises(InputError, match="needs a recipe that trains"):
        Runner(bench, RunOptions(results_root=tmp_path / "results2", cache_root=tmp_path / "cache")).run()
