"""static-reweight: the bias by hand and by a direct loop, the decoding it gives, composition, and a real run."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import tiny_benchmark

from harness.api import DecodeContext, History, InputError
from harness.testing import EOS, ByteCodec, TinyHandle, load_registry, load_test_benchmark, tiny_llama
from harness_plugins.decoders import StaticReweight
from harness_plugins.decoders.static_reweight import LogitBias, mean_log_ratio, weights_digest


def fixed(probs: list[float]):
    import torch

    class Fixed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.logp = torch.nn.Parameter(torch.log(torch.tensor(probs, dtype=torch.float32)))

        def forward(self, input_ids, attention_mask=None, **kwargs):
            b, t = input_ids.shape
            return SimpleNamespace(logits=self.logp.expand(b, t, -1).clone())

    return Fixed()


def heldout(n: int = 5, length: int = 9, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(2, 258) for _ in range(length - i % 2)] for i in range(n)]


class FakeRun:
    """A DecodeContext's two seams, counting how often the fitted copy is loaded."""

    def __init__(self, fitted_module, sequences):
        self.fitted_module = fitted_module
        self.sequences = sequences
        self.loads: list[str] = []

    def ctx(self, rows: int) -> DecodeContext:
        def load_fitted(name):
            self.loads.append(name)
            return TinyHandle(self.fitted_module, ByteCodec(), "cpu")

        return DecodeContext(seeds=[0] * rows, load_fitted=load_fitted, heldout_of=lambda name: [list(s) for s in self.sequences])


# --------------------------------------------------------------------------- by hand


def test_bias_of_fixed_distributions_by_hand():
    sequences = [[0, 1, 1], [1, 0]]
    bias, count = mean_log_ratio(fixed([0.5, 0.5]), fixed([0.25, 0.75]), sequences, pad=0, batch_size=1)
    assert count == 3  # 2 + 1 next-token positions
    assert bias.tolist() == pytest.approx([math.log(0.25 / 0.5), math.log(0.75 / 0.5)], abs=1e-6)
    same, _ = mean_log_ratio(fixed([0.3, 0.7]), fixed([0.3, 0.7]), sequences, pad=0, batch_size=2)
    assert same.tolist() == [0.0, 0.0]


def test_logit_bias_adds_and_keeps_bans():
    import torch

    bias = LogitBias(torch.tensor([1.0, -2.0, 0.5]))
    scores = torch.tensor([[0.0, 3.0, float("-inf")], [1.0, 1.0, 1.0]])
    out = bias(scores, History([[1], [2]], [[], []]))
    assert out.tolist() == [[1.0, 1.0, float("-inf")], [2.0, -1.0, 1.5]]


def test_weights_digest_sees_in_place_changes():
    import torch

    module = tiny_llama(0)
    before = weights_digest(module)
    assert weights_digest(tiny_llama(0)) == before
    with torch.no_grad():
        next(module.parameters())[0, 0] += 1e-3
    assert weights_digest(module) != before


# --------------------------------------------------------------------------- against direct loops on tiny models


def direct_bias(decoded, fitted, sequences):
    import torch

    total, count = 0.0, 0
    with torch.inference_mode():
        for seq in sequences:
            for t in range(1, len(seq)):
                prefix = torch.tensor([seq[:t]])
                lf = torch.log_softmax(fitted(prefix).logits[0, -1].double(), -1)
                ld = torch.log_softmax(decoded(prefix).logits[0, -1].double(), -1)
                total = total + (lf - ld)
                count += 1
    return total / count


def direct_greedy(module, context, bias, steps):
    """argmax(z + b) with EOS suppressed, recomputing the whole prefix every step (no KV cache)."""
    import torch

    seq = list(context)
    with torch.inference_mode():
        for _ in range(steps):
            z = module(torch.tensor([seq])).logits[0, -1].double() + bias
            z[EOS] = float("-inf")
            seq.append(int(z.argmax()))
    return seq[len(context) :]


def test_bias_and_decoding_match_direct_loops():
    decoded, fitted = tiny_llama(0), tiny_llama(1)
    handle = TinyHandle(decoded, ByteCodec(), "cpu")
    run = FakeRun(fitted, heldout())
    decoder = StaticReweight({"from": "hyperfit", "batch_size": 2})
    assert decoder.recipe_dependencies() == ("hyperfit",)
    bias = decoder.bias_for(handle, run.ctx(1))
    want = direct_bias(decoded, fitted, heldout())
    assert bias.double().tolist() == pytest.approx(want.tolist(), abs=1e-5)

    contexts = [list(b"the river "), list(b"a stone")]
    contexts = [[c + 2 for c in ctx] for ctx in contexts]
    gens = decoder.generate(handle, contexts, 10, run.ctx(2))
    for ctx, gen in zip(contexts, gens):
        assert gen.output_ids == direct_greedy(decoded, ctx, bias.double(), 10)
    assert run.loads == ["hyperfit"], "b is estimated once per decoded weights, then reused for every batch"

    # another set of decoded weights gets its own b (the runner keeps one instance for every cell)
    other = TinyHandle(tiny_llama(2), ByteCodec(), "cpu")
    decoder.generate(other, contexts, 2, run.ctx(2))
    assert run.loads == ["hyperfit", "hyperfit"]


def test_decoding_the_from_fit_itself_is_greedy():
    from harness.api import decode

    module = tiny_llama(3)
    handle = TinyHandle(module, ByteCodec(), "cpu")
    run = FakeRun(tiny_llama(3), heldout(seed=1))  # a separate copy of the same weights
    contexts = [[5, 6, 7, 8], [9, 10]]
    gens = StaticReweight({"from": "fit"}).generate(handle, contexts, 8, run.ctx(2))
    assert [g.output_ids for g in gens] == [g.output_ids for g in decode(handle, contexts, 8, [0, 0])]


def test_missing_seams_and_heldout_are_clear_errors():
    handle = TinyHandle(tiny_llama(0), ByteCodec(), "cpu")
    decoder = StaticReweight({"from": "fit"})
    with pytest.raises(InputError, match="inside `harness run`"):
        decoder.generate(handle, [[3, 4]], 2, DecodeContext(seeds=[0]))
    with pytest.raises(InputError, match="no held-out sequences"):
        decoder.generate(handle, [[3, 4]], 2, FakeRun(tiny_llama(1), []).ctx(1))


def test_composition_order():
    from harness.composition import ComposedDecoder, composition_problems
    from harness_plugins.decoders import TopP

    assert composition_problems([StaticReweight, TopP]) == []
    assert composition_problems([TopP, StaticReweight])  # a bias after truncation is refused
    module = tiny_llama(0)
    handle = TinyHandle(module, ByteCodec(), "cpu")
    run = FakeRun(tiny_llama(1), heldout())
    composed = ComposedDecoder([StaticReweight({"from": "fit"}), TopP({})])
    assert composed.samples
    gens = composed.generate(handle, [[5, 6, 7]], 6, run.ctx(1))
    assert len(gens[0].output_ids) == 6


# --------------------------------------------------------------------------- the real runner


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_static_reweight_in_a_real_run(tmp_path):
    import torch

    from harness.runner import Runner, RunOptions
    from harness.testing import TinyLlamaLoader

    data = tiny_benchmark(tmp_path, name="reweight")
    data["decoders"] = {"greedy": {"plugin": "greedy"}, "static": {"plugin": "static-reweight", "from": "fit"}}
    data["eval"].update({"datasets": ["other-set"], "contexts": 3, "new_tokens": 8})
    data["metrics"] = {"ttr": {"plugin": "ttr", "window": 8}}
    bench = load_test_benchmark(data, tmp_path, load_registry(extra=(TinyLlamaLoader,)))
    runner = Runner(bench, RunOptions(results_root=tmp_path / "results", cache_root=tmp_path / "cache"))
    summary = runner.run()
    cells = summary.results_dir / "cells"
    outputs = {c: [r["output_ids"] for r in read_jsonl(cells / c / "generations.jsonl")]
               for c in ("tiny__base__static", "tiny__fit__static", "tiny__fit__greedy")}  # fmt: skip
    assert outputs["tiny__fit__static"] == outputs["tiny__fit__greedy"]  # b = 0 on the from-fit itself

    plan = runner.planner.plan()
    fit_plan = plan.fits[("tiny", "fit")]
    sequences = [s.token_ids for s in fit_plan.heldout]
    assert sequences, "the fit has held-out sequences"
    base = TinyLlamaLoader({}).load(SimpleNamespace(device="cpu", cache_dir=tmp_path))
    fitted = TinyLlamaLoader({}).load(SimpleNamespace(device="cpu", cache_dir=tmp_path))
    fitted.load_weights(runner.book.cache.directory("fits", fit_plan.key))
    bias = direct_bias(base.module, fitted.module, sequences)
    records = read_jsonl(cells / "tiny__base__static" / "generations.jsonl")
    for record, out in zip(records, outputs["tiny__base__static"]):
        assert out == direct_greedy(base.module, record["context_ids"], bias, 8)
    assert torch.is_tensor(bias)

    # the from-fit's key is part of the generate key: another fit regenerates only the static cells' batches
    data["recipes"]["fit"]["lr"] = 1.0e-3
    bench = load_test_benchmark(data, tmp_path, load_registry(extra=(TinyLlamaLoader,)))
    keys = {g.cell.id: g.key for g in Runner(bench, RunOptions(results_root=tmp_path / "results",
                                                                cache_root=tmp_path / "cache")).planner.plan().generations}  # fmt: skip
    before = {g.cell.id: g.key for g in plan.generations}
    assert keys["tiny__base__greedy"] == before["tiny__base__greedy"]
    assert keys["tiny__base__static"] != before["tiny__base__static"]


def test_from_must_name_a_recipe(tmp_path):
    from harness.runner import Runner, RunOptions
    from harness.testing import TinyLlamaLoader

    data = tiny_benchmark(tmp_path, name="bad")
    data["decoders"] = {"static": {"plugin": "static-reweight", "from": "nope"}}
    with pytest.raises(InputError, match="nope"):
        bench = load_test_benchmark(data, tmp_path, load_registry(extra=(TinyLlamaLoader,)))
        Runner(bench, RunOptions(results_root=tmp_path / "results", cache_root=tmp_path / "cache")).planner.plan()


def test_decoders_page_documents_it():
    text = (Path(__file__).resolve().parents[2] / "docs" / "decoders.md").read_text(encoding="utf-8")
    assert "\n## `static-reweight`\n" in text and "| `static-reweight` |" in text
