"""Composed decoders: parts' processors in one loop, from Python and from a benchmark's `compose:` list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.api import DecodeContext, InputError, rescore
from harness.composition import COMPOSE, ComposedDecoder
from harness.errors import ConfigError
from harness.testing import load_test_benchmark, run_benchmark, tiny_benchmark
from harness_plugins.decoders.beam import Beam
from harness_plugins.decoders.citation_blocked import CitationBlocked
from harness_plugins.decoders.greedy import Greedy
from harness_plugins.decoders.repetition_penalty import RepetitionPenaltyGreedy
from harness_plugins.decoders.temperature import Temperature
from harness_plugins.decoders.top_k import TopK
from harness_plugins.decoders.top_p import TopP

torch = pytest.importorskip("torch")

LENGTHS = (3, 9, 6, 12, 1, 7)
CONTEXTS = [[(i * 37 + 11 * j) % 250 + 2 for i in range(n)] for j, n in enumerate(LENGTHS)]
SEEDS = [11, 22, 33, 44, 55, 66]
NEW = 12


def ctx(train=None, seeds=SEEDS) -> DecodeContext:
    return DecodeContext(seeds=list(seeds), train_sequences=train)


def ids_of(gens):
    return [g.output_ids for g in gens]


def grams(seq, n):
    return {tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)}


# --------------------------------------------------------------------------- in Python


def test_a_single_part_is_that_decoder(handle):
    train = [c + g for c, g in zip(CONTEXTS, ids_of(Greedy({}).generate(handle, CONTEXTS, NEW, ctx())))]
    for part in (Greedy({}), TopP({}), Temperature({"temperature": 0.8}), CitationBlocked({"window": 2})):
        alone = part.generate(handle, CONTEXTS, NEW, ctx(train))
        composed = ComposedDecoder([part]).generate(handle, CONTEXTS, NEW, ctx(train))
        assert ids_of(composed) == ids_of(alone), part.name
        assert [g.extras for g in composed] == [g.extras for g in alone], part.name
        assert [g.step_entropy for g in composed] == [g.step_entropy for g in alone], part.name


def test_processors_compose_in_order_and_the_pick_samples_if_any_part_does(handle):
    parts = [RepetitionPenaltyGreedy({"penalty": 2.0}), TopK({"k": 20, "temperature": 0.9})]
    composed = ComposedDecoder(parts)
    assert composed.samples and not composed.deterministic
    assert composed.config == {"compose": [{"plugin": "repetition-penalty", "penalty": 2.0},
                                           {"plugin": "top-k", "k": 20, "temperature": 0.9}]}  # fmt: skip
    processors = composed.processors(handle, CONTEXTS, ctx())
    assert [type(p).__name__ for p in processors] == ["RepetitionPenalty", "Warp", "Warp"]
    gens = composed.generate(handle, CONTEXTS, NEW, ctx())
    assert gens and ids_of(gens) != ids_of(parts[1].generate(handle, CONTEXTS, NEW, ctx()))
    # batch invariance still holds for a composition (one generator per row)
    for row in (0, 4):
        assert composed.generate(handle, [CONTEXTS[row]], NEW, ctx(seeds=[SEEDS[row]]))[0].output_ids == gens[row].output_ids
    greedy_only = ComposedDecoder([RepetitionPenaltyGreedy({"penalty": 2.0}), Greedy({})])
    assert not greedy_only.samples and greedy_only.deterministic
    assert ids_of(greedy_only.generate(handle, CONTEXTS, NEW, ctx())) == ids_of(
        RepetitionPenaltyGreedy({"penalty": 2.0}).generate(handle, CONTEXTS, NEW, ctx())
    )


def test_step_statistics_of_a_composition_come_from_the_raw_logits(handle):
    composed = ComposedDecoder([RepetitionPenaltyGreedy({"penalty": 3.0}), TopP({"temperature": 0.3, "p": 0.5})])
    gens = composed.generate(handle, CONTEXTS, NEW, ctx())
    for gen, (entropy, top1) in zip(gens, rescore(handle, CONTEXTS, ids_of(gens))):
        assert gen.step_entropy == pytest.approx(entropy, abs=1e-4)
        assert gen.step_top1 == pytest.approx(top1, abs=1e-5)
    greedy = Greedy({}).generate(handle, CONTEXTS, NEW, ctx())
    assert [g.step_entropy[0] for g in gens] == [g.step_entropy[0] for g in greedy]  # the first step: the same raw logits


def test_a_sampled_citation_blocker_never_emits_a_training_ngram(handle):
    greedy = Greedy({}).generate(handle, CONTEXTS, 24, ctx())
    train = [c + g for c, g in zip(CONTEXTS, ids_of(greedy))]
    forbidden = set().union(*(grams(s, 3) for s in train))
    # a cold top-p mostly follows greedy, so the blocker has something to do
    composed = ComposedDecoder([CitationBlocked({"window": 2}), TopP({"temperature": 0.2, "p": 0.5})])
    gens = composed.generate(handle, CONTEXTS, 24, ctx(train))
    assert sum(g.extras["blocked_steps"] for g in gens) > 0
    for gen in gens:
        assert len(gen.output_ids) == 24 and not grams(gen.output_ids, 3) & forbidden


def test_bad_compositions_are_refused_in_python():
    with pytest.raises(InputError, match='"beam" cannot be composed'):
        ComposedDecoder([Greedy({}), Beam({})])  # type: ignore[list-item]
    with pytest.raises(InputError, match='"citation-blocked" adjusts scores .* after "top-p"'):
        ComposedDecoder([TopP({}), CitationBlocked({})])
    with pytest.raises(InputError, match="at least one"):
        ComposedDecoder([])


# --------------------------------------------------------------------------- from YAML, through the runner


BLOCKED = {"compose": [{"plugin": "citation-blocked", "window": 3}, {"plugin": "top-p", "p": 0.9, "temperature": 0.3}]}
REP_TOP_P = {"compose": [{"plugin": "repetition-penalty", "penalty": 2.0}, {"plugin": "top-p"}]}


def composed_bench(tmp_path: Path, **decoders) -> dict:
    bench = tiny_benchmark(tmp_path, name="composed")
    bench["decoders"] = decoders
    bench["metrics"] = {"ttr": {"plugin": "ttr", "window": 16}}
    bench["eval"].update({"datasets": ["train-set"], "contexts": 4})
    bench["matrix"] = [{"recipe": "fit"}]
    return bench


def test_a_composition_validates_and_is_recorded_with_its_parts(tmp_path: Path):
    bench = load_test_benchmark(composed_bench(tmp_path, **{"top-p-blocked": BLOCKED, "greedy": {"plugin": "greedy"}}), tmp_path)
    comp = bench.decoders["top-p-blocked"]
    assert comp.plugin == COMPOSE and comp.registration.cls is ComposedDecoder and comp.parts is not None
    assert [p.plugin for p in comp.parts] == ["citation-blocked", "top-p"]
    assert not comp.deterministic and bench.decoders["greedy"].deterministic
    resolved = bench.resolved()["decoders"]["top-p-blocked"]
    assert resolved == {"compose": [{"plugin": "citation-blocked", "window": 3, "word_boundary": False, "include_context": False},
                                    {"plugin": "top-p", "p": 0.9, "temperature": 0.3, "top_k": 50}]}  # fmt: skip
    identity = comp.identity()
    assert identity["plugin"] == COMPOSE and identity["code"]
    assert [(p["plugin"], p["params"]) for p in identity["parts"]] == [(p.plugin, p.params) for p in comp.parts]
    assert all(p["code"] and p["version"] for p in identity["parts"])
    other = load_test_benchmark(composed_bench(tmp_path, **{"top-p-blocked": {"compose": [BLOCKED["compose"][0], {"plugin": "top-p"}]}}), tmp_path)
    assert other.decoders["top-p-blocked"].identity() != identity, "a part's param is part of the identity"
    decoder = comp.instantiate()
    assert isinstance(decoder, ComposedDecoder) and decoder.samples and decoder.config == resolved


def test_compositions_run_through_the_runner(tmp_path: Path):
    bench = composed_bench(tmp_path, **{"top-p-blocked": BLOCKED, "rep-top-p": REP_TOP_P, "top-p": {"plugin": "top-p"}})
    run = run_benchmark(bench, tmp_path)
    out = run.results_dir

    def records(decoder):
        path = out / "cells" / f"tiny__fit__{decoder}" / "generations.jsonl"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    train = [json.loads(line)["token_ids"] for line in (out / "recipes" / "tiny__fit" / "train_samples.jsonl").read_text().splitlines()]
    forbidden = set().union(*(grams(s, 4) for s in train))
    blocked = records("top-p-blocked")
    assert blocked and all(isinstance(r["blocked_steps"], int) for r in blocked)
    for record in blocked:
        assert len(record["output_ids"]) == 16 and not grams(record["output_ids"], 4) & forbidden
    plain, penalised = records("top-p"), records("rep-top-p")
    assert [r["seed"] for r in plain] == [r["seed"] for r in penalised]
    assert [r["output_ids"] for r in plain] != [r["output_ids"] for r in penalised]
    assert all("blocked_steps" not in r for r in plain + penalised)
    assert run.value("ttr", decoder="rep-top-p") >= 0


# --------------------------------------------------------------------------- validation messages


def problems_of(tmp_path: Path, entry) -> str:
    with pytest.raises(ConfigError) as info:
        load_test_benchmark(composed_bench(tmp_path, mixed=entry), tmp_path)
    return "\n".join(info.value.problems)


def test_a_part_that_runs_its_own_search_is_refused(tmp_path: Path):
    text = problems_of(tmp_path, {"compose": [{"plugin": "repetition-penalty"}, {"plugin": "beam", "num_beams": 2}]})
    assert "decoders.mixed.compose.1.plugin" in text and 'decoder "beam" cannot be composed' in text
    text = problems_of(tmp_path, {"compose": [{"plugin": "contrastive"}]})
    assert 'decoder "contrastive" cannot be composed' in text


def test_adjust_parts_must_come_before_warp_parts(tmp_path: Path):
    text = problems_of(tmp_path, {"compose": [{"plugin": "top-p"}, {"plugin": "citation-blocked"}]})
    assert "decoders.mixed.compose.1.plugin" in text
    assert '"citation-blocked" adjusts scores' in text and '"top-p" (compose[0])' in text and "leave no token" in text


def test_unknown_part_bad_param_nesting_and_shape_are_reported_with_their_path(tmp_path: Path):
    text = problems_of(tmp_path, {"compose": [{"plugin": "top-q"}, {"plugin": "top-p", "p": 2.0, "tempreature": 1.0}]})
    assert 'decoders.mixed.compose.0.plugin: unknown decoder "top-q"' in text and 'did you mean "top-p"' in text
    assert "decoders.mixed.compose.1.p:" in text and "decoders.mixed.compose.1.tempreature:" in text
    text = problems_of(tmp_path, {"compose": [{"compose": [{"plugin": "greedy"}]}]})
    assert "decoders.mixed.compose.0.compose: compositions do not nest" in text
    assert "non-empty list" in problems_of(tmp_path, {"compose": []})
    assert "missing `plugin:`" in problems_of(tmp_path, {"compose": [{"p": 0.5}]})
    text = problems_of(tmp_path, {"compose": [{"plugin": "greedy"}], "plugin": "top-p"})
    assert "decoders.mixed.plugin: a composed decoder has only `compose:`" in text
