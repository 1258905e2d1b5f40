"""base-rank and base-divergence: hand-computed examples, direct loops on tiny models, and real runs."""

from __future__ import annotations

import math
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import tiny_benchmark

from harness.api import Codec, MetricContext, ModelHandle
from harness.testing import ByteCodec, TinyHandle, load_registry, run_benchmark, run_cli, tiny_llama
from harness_plugins.metrics.model_based import BaseDivergence, BaseRank
from harness_plugins.metrics.model_based.rank_probes import (
    kl_rows,
    rank_statistic,
    spearman_rows,
    token_ranks,
    top_k_indices,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics-probes.md"


class ListCodec(Codec):
    """Token ids are the integers of a space-separated string (pad 0, eos 1)."""

    eos_token_id = 1
    pad_token_id = 0

    def encode(self, text: str) -> list[int]:
        return [int(t) for t in text.split()]

    def decode(self, ids) -> str:
        return " ".join(str(i) for i in ids)

    def fingerprint(self) -> str:
        return "list"


def fixed(probs: list[float]):
    """A module whose next-token distribution is ``probs`` at every position."""
    import torch

    class Fixed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.logp = torch.nn.Parameter(torch.log(torch.tensor(probs, dtype=torch.float32)))

        def forward(self, input_ids, attention_mask=None, **kwargs):
            b, t = input_ids.shape
            return SimpleNamespace(logits=self.logp.expand(b, t, -1).clone())

    return Fixed()


def two_model_context(own: ModelHandle, base: ModelHandle, loads: list[str] | None = None) -> MetricContext:
    def model_for(name: str) -> ModelHandle:
        if loads is not None:
            loads.append(name)
        return base

    return MetricContext(codec=own.codec, model=lambda: own, model_for=model_for)


def make(cls, context, **config):
    metric = cls(config)
    metric.context = context
    return metric


# --------------------------------------------------------------------------- hand-computed definitions


def test_token_ranks_by_hand():
    import torch

    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]] * 4)
    # eos = 1 (the highest logit) is never counted above a token
    assert token_ranks(logits, torch.tensor([1, 2, 0, 3]), eos=None).tolist() == [0, 1, 2, 3]
    assert token_ranks(logits, torch.tensor([1, 2, 0, 3]), eos=1).tolist() == [0, 0, 1, 2]
    ties = torch.tensor([[2.0, 2.0, 1.0]])
    assert token_ranks(ties, torch.tensor([1]), eos=None).tolist() == [0]  # ties count in the token's favour
    argmax = torch.randn(5, 17)
    assert token_ranks(argmax, argmax.argmax(-1), eos=None).tolist() == [0] * 5


def test_rank_statistics_by_hand():
    ranks = [0, 1, 10, 150]
    assert rank_statistic(ranks, "mean-log-rank") == pytest.approx((0 + math.log(2) + math.log(11) + math.log(151)) / 4)
    assert rank_statistic(ranks, "outside-top1") == 0.75
    assert rank_statistic(ranks, "outside-top10") == 0.5
    assert rank_statistic(ranks, "outside-top100") == 0.25


def test_kl_by_hand():
    import torch

    p, q = torch.tensor([[0.5, 0.5]]).log(), torch.tensor([[0.9, 0.1]]).log()
    assert kl_rows(p, q).item() == pytest.approx(0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1), abs=1e-6)
    assert kl_rows(p, p).item() == 0.0
    zero = torch.tensor([[0.0, 1.0]]).log()  # 0·ln 0 = 0
    assert kl_rows(zero, p).item() == pytest.approx(math.log(2), abs=1e-6)


def test_spearman_by_hand():
    import torch

    a = torch.tensor([[1.0, 2.0, 3.0, 4.0]] * 5, dtype=torch.float64)
    b = torch.tensor([[10.0, 20.0, 30.0, 40.0], [4.0, 3.0, 2.0, 1.0], [1.0, 3.0, 2.0, 4.0], [5.0] * 4, [1.0, 1.0, 2.0, 2.0]],
                     dtype=torch.float64)  # fmt: skip
    rho = spearman_rows(a, b).tolist()
    assert rho[0] == pytest.approx(1.0) and rho[1] == pytest.approx(-1.0)
    assert rho[2] == pytest.approx(1 - 6 * 2 / (4 * 15))  # d = (0, −1, 1, 0): 0.8
    assert rho[3] == 0.0  # one side constant
    # ties share their average rank: (1.5, 1.5, 3.5, 3.5) against (1, 2, 3, 4)
    assert rho[4] == pytest.approx(4 / math.sqrt(4 * 5))
    flat = torch.ones(1, 3, dtype=torch.float64)
    assert spearman_rows(flat, flat).tolist() == [1.0]  # both constant: the same order


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    import torch

    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, 4, (50, 7), generator=gen).double()
    b = torch.randint(0, 4, (50, 7), generator=gen).double()
    got = spearman_rows(a, b).tolist()
    for row, value in enumerate(got):
        if a[row].unique().numel() > 1 and b[row].unique().numel() > 1:
            assert value == pytest.approx(stats.spearmanr(a[row].numpy(), b[row].numpy()).statistic, abs=1e-12)


def test_top_k_breaks_ties_by_lower_id():
    import torch

    assert top_k_indices(torch.tensor([[0.0, 1.0, 1.0, 0.5]]), 2).tolist() == [[1, 2]]
    assert top_k_indices(torch.tensor([[0.0, 1.0]]), 5).tolist() == [[1, 0]]


def test_fixed_distribution_golden_values():
    f, b = [0.5, 0.25, 0.125, 0.125], [0.1, 0.2, 0.3, 0.4]
    codec = ListCodec()
    ctx = two_model_context(ModelHandle(fixed(f), codec, "cpu"), ModelHandle(fixed(b), codec, "cpu"))
    # base-rank under B: token 3 → 0, token 2 → 1, token 0 → 2 (3 and 2 above it; eos = 1 left out)
    ranked = [{"prompt_id": "a", "context_ids": [2, 2], "output_ids": [3, 2, 0]}]
    assert make(BaseRank, ctx).score_samples(ranked) == pytest.approx([(math.log(2) + math.log(3)) / 3])
    assert make(BaseRank, ctx, statistic="outside-top1").score_samples(ranked) == pytest.approx([2 / 3])
    assert make(BaseRank, ctx, statistic="outside-top10").score_samples(ranked) == [0.0]
    records = [{"prompt_id": "a", "context_ids": [2, 2], "reference_text": "0 1 3"}]
    kl_fb = sum(p * math.log(p / q) for p, q in zip(f, b))
    kl_bf = sum(q * math.log(q / p) for p, q in zip(f, b))
    assert make(BaseDivergence, ctx).score_samples(records) == pytest.approx([kl_fb], abs=1e-6)
    assert make(BaseDivergence, ctx, statistic="kl-base-fitted").score_samples(records) == pytest.approx([kl_bf], abs=1e-6)
    # k = 4: F's ranks (4, 3, 1.5, 1.5) against B's (1, 2, 3, 4): ρ = −4.5 / √(4.5 · 5)
    spearman = make(BaseDivergence, ctx, statistic="topk-spearman", k=4).score_samples(records)
    assert spearman == pytest.approx([-4.5 / math.sqrt(4.5 * 5)], abs=1e-9)
    # k = 2: F's two most likely tokens (0, 1) are B's order reversed
    assert make(BaseDivergence, ctx, statistic="topk-spearman", k=2).score_samples(records) == pytest.approx([-1.0])


def test_identical_models_kl_zero_spearman_one():
    handle = TinyHandle(tiny_llama(0), ByteCodec(), "cpu")
    ctx = two_model_context(handle, handle)
    records = make_records(3, seed=4)
    assert make(BaseDivergence, ctx).score_samples(records) == [0.0] * 3
    assert make(BaseDivergence, ctx, statistic="kl-base-fitted").score_samples(records) == [0.0] * 3
    assert make(BaseDivergence, ctx, statistic="topk-spearman").score_samples(records) == pytest.approx([1.0] * 3)


def test_outside_a_run_is_a_clear_error():
    handle = TinyHandle(tiny_llama(0), ByteCodec(), "cpu")
    ctx = MetricContext(codec=handle.codec, model=lambda: handle)
    with pytest.raises(ValueError, match="inside `harness run`"):
        make(BaseRank, ctx).score_samples(make_records(1))
    with pytest.raises(ValueError, match="inside `harness run`"):
        make(BaseDivergence, ctx).score_samples(make_records(1))


# --------------------------------------------------------------------------- direct loops on tiny models


def make_records(n: int, seed: int = 0, context: int = 6, output: int = 5, reference: int = 7) -> list[dict]:
    rng = random.Random(seed)
    draw = lambda k: [rng.randrange(2, 258) for _ in range(k)]  # noqa: E731
    return [{"prompt_id": f"p{i}", "context_ids": draw(context + i % 3), "output_ids": draw(output + i % 2),
             "reference_ids": draw(reference - i % 2), "reference_text": "x"} for i in range(n)]  # fmt: skip


def direct_ranks(module, record, eos: int) -> list[int]:
    import torch

    with torch.inference_mode():
        return _direct_ranks(module, record, eos)


def _direct_ranks(module, record, eos: int) -> list[int]:
    import torch

    out = []
    for j, token in enumerate(record["output_ids"]):
        prefix = record["context_ids"] + record["output_ids"][:j]
        z = module(torch.tensor([prefix])).logits[0, -1].float()
        out.append(sum(1 for v in range(z.shape[0]) if v not in (token, eos) and z[v] > z[token]))
    return out


def direct_divergence(own, base, record, span: str, k: int) -> dict[str, float]:
    import torch

    with torch.inference_mode():
        return _direct_divergence(own, base, record, span, k)


def _direct_divergence(own, base, record, span: str, k: int) -> dict[str, float]:
    import numpy as np
    import torch

    seq = record["context_ids"] + record["reference_ids"]
    first = len(record["context_ids"]) if span == "continuation" else 1
    kl_fb, kl_bf, rhos = [], [], []
    for t in range(first, len(seq)):
        lp = torch.log_softmax(own(torch.tensor([seq[:t]])).logits[0, -1].double(), -1)
        lq = torch.log_softmax(base(torch.tensor([seq[:t]])).logits[0, -1].double(), -1)
        kl_fb.append(float((lp.exp() * (lp - lq)).sum()))
        kl_bf.append(float((lq.exp() * (lq - lp)).sum()))
        top = sorted(range(lp.shape[0]), key=lambda v: (-float(lp[v]), v))[:k]
        ra = np.argsort(np.argsort([float(lp[v]) for v in top])) + 1.0
        rb = np.argsort(np.argsort([float(lq[v]) for v in top])) + 1.0
        rhos.append(float(np.corrcoef(ra, rb)[0, 1]))  # random-init logits: no ties
    return {"kl-fitted-base": float(np.mean(kl_fb)), "kl-base-fitted": float(np.mean(kl_bf)), "topk-spearman": float(np.mean(rhos))}


@pytest.fixture(scope="module")
def pair():
    return TinyHandle(tiny_llama(0), ByteCodec(), "cpu"), TinyHandle(tiny_llama(1), ByteCodec(), "cpu")


def test_base_rank_matches_a_direct_loop(pair):
    import numpy as np

    own, base = pair
    records = make_records(5)
    loads: list[str] = []
    ctx = two_model_context(own, base, loads)
    expected = [direct_ranks(base.module, r, eos=1) for r in records]
    for statistic in ("mean-log-rank", "outside-top1", "outside-top10", "outside-top100"):
        got = make(BaseRank, ctx, statistic=statistic, batch_size=2).score_samples(records)
        assert got == pytest.approx([rank_statistic(np.array(r), statistic) for r in expected], abs=1e-12), statistic
    assert loads == ["base"], "one base pass for every statistic of the cell"


def test_base_rank_skips_rows_without_output(pair):
    own, base = pair
    records = make_records(2)
    records[1]["output_ids"] = []
    assert len(make(BaseRank, two_model_context(own, base)).score_samples(records)) == 1
    with pytest.raises(ValueError, match="no record has generated tokens"):
        make(BaseRank, two_model_context(own, base)).score_samples(records[1:])


def test_base_rank_of_the_base_models_own_greedy_output_is_zero(pair):
    from harness.api import decode

    _, base = pair
    records = make_records(3, seed=2)
    gens = decode(base, [r["context_ids"] for r in records], 8, [0, 0, 0])
    for record, gen in zip(records, gens):
        record["output_ids"] = gen.output_ids
    values = make(BaseRank, two_model_context(base, base)).score_samples(records)
    assert values == pytest.approx([0.0] * 3, abs=1e-9)


@pytest.mark.parametrize("span", ["continuation", "text"])
def test_base_divergence_matches_a_direct_loop(pair, span):
    own, base = pair
    records = make_records(4, seed=1)
    loads: list[str] = []
    ctx = two_model_context(own, base, loads)
    expected = [direct_divergence(own.module, base.module, r, span, 10) for r in records]
    for statistic in ("kl-fitted-base", "kl-base-fitted", "topk-spearman"):
        got = make(BaseDivergence, ctx, statistic=statistic, span=span, batch_size=3).score_samples(records)
        assert got == pytest.approx([e[statistic] for e in expected], abs=2e-5), statistic
    assert loads == ["base"]


def test_base_divergence_rounds_under_a_small_buffer_give_the_same_values(pair):
    own, base = pair
    records = make_records(4, seed=3)
    whole = make(BaseDivergence, two_model_context(own, base)).score_samples(records)
    loads: list[str] = []
    rounds = make(BaseDivergence, two_model_context(own, base, loads), batch_size=1)
    rounds.config["buffer_mb"] = 0  # below the schema's minimum: one batch (here one text) per round
    assert rounds.score_samples(records) == pytest.approx(whole, abs=1e-6)  # other batch shapes: float32 noise
    assert len(loads) == 4  # one round per text


# --------------------------------------------------------------------------- the real runner


def read_jsonl(path: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_rank_probes_in_a_real_run(tmp_path):
    import numpy as np
    import torch

    from harness.runner import Runner, RunOptions
    from harness.testing import TinyLlamaLoader, load_test_benchmark

    data = tiny_benchmark(tmp_path, name="ranks")
    data["decoders"] = {"greedy": {"plugin": "greedy"}}
    data["eval"].update({"datasets": ["other-set"], "contexts": 3})
    data["metrics"] = {
        "log-rank": {"plugin": "base-rank"},
        "out10": {"plugin": "base-rank", "statistic": "outside-top10"},
        "kl": {"plugin": "base-divergence"},
        "kl-rev": {"plugin": "base-divergence", "statistic": "kl-base-fitted"},
        "rho": {"plugin": "base-divergence", "statistic": "topk-spearman", "k": 5},
    }
    registry = load_registry(extra=(TinyLlamaLoader,))
    bench = load_test_benchmark(data, tmp_path, registry)
    runner = Runner(bench, RunOptions(results_root=tmp_path / "results", cache_root=tmp_path / "cache"))
    summary = runner.run()
    values = {(s.recipe, s.metric): s.value for s in summary.scores}
    assert values[("base", "kl")] == 0.0 and values[("base", "kl-rev")] == 0.0
    assert values[("base", "rho")] == pytest.approx(1.0)
    assert values[("base", "log-rank")] == pytest.approx(0.0, abs=1e-9)  # base greedy: its own argmax every step
    assert values[("fit", "kl")] > 0 and values[("fit", "kl-rev")] > 0

    with torch.no_grad():
        plan = runner.planner.plan()
        records = read_jsonl(tmp_path / "results" / "ranks" / "cells" / "tiny__fit__greedy" / "generations.jsonl")
        base = runner.pool.fitted("tiny", plan.fits[("tiny", "base")].weights_key).module
        ranks = [direct_ranks(base, r, eos=1) for r in records]
        base_lp = [torch.log_softmax(base(torch.tensor([r["context_ids"] + r["reference_ids"]])).logits[0].double(), -1) for r in records]
        fitted = runner.pool.fitted("tiny", plan.fits[("tiny", "fit")].weights_key).module
        kls = []
        for r, lq in zip(records, base_lp):
            lp = torch.log_softmax(fitted(torch.tensor([r["context_ids"] + r["reference_ids"]])).logits[0].double(), -1)
            n = len(r["context_ids"])
            lp, lq = lp[n - 1 : -1], lq[n - 1 : -1]
            kls.append(float((lp.exp() * (lp - lq)).sum(-1).mean()))
    assert values[("fit", "log-rank")] == pytest.approx(float(np.mean([np.log1p(x).mean() for x in ranks])), abs=1e-9)
    assert values[("fit", "out10")] == pytest.approx(float(np.mean([(np.array(x) >= 10).mean() for x in ranks])))
    assert values[("fit", "kl")] == pytest.approx(float(np.mean(kls)), abs=1e-5)

    again = run_benchmark(data, tmp_path)  # warm: every score reused
    assert again.summary.computed.get("score", 0) == 0
    assert again.value("kl", recipe="fit") == values[("fit", "kl")]


def test_plugins_lists_every_probe():
    code, out = run_cli(["plugins"])
    assert code == 0
    for name in ("base-rank", "base-divergence", "layer-geometry", "static-reweight"):
        assert name in out, name


def test_the_probes_page_quotes_the_pinned_definitions():
    from harness_plugins.metrics.model_based import LayerGeometry

    text = DOC.read_text(encoding="utf-8")
    for cls in (BaseRank, BaseDivergence, LayerGeometry):
        assert f"\n## `{cls.name}`\n" in text, cls.name
        section = text.split(f"\n## `{cls.name}`\n", 1)[1].split("\n## ", 1)[0]
        assert f"> {cls.definition}\n" in section, f"{cls.name}: definition differs from the code"
        for param in cls.params:
            assert f"`{param.name}`" in section, (cls.name, param.name)
    assert "(metrics-probes.md)" in (DOC.parent / "metrics-model.md").read_text(encoding="utf-8")
