"""layer-geometry: PR and CKA by hand, the metric against a direct numpy computation, files, and real runs."""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

import pytest
from conftest import tiny_benchmark

from harness.api import MetricContext
from harness.testing import ByteCodec, TinyHandle, run_benchmark, tiny_llama
from harness_plugins.metrics.model_based import LayerGeometry
from harness_plugins.metrics.model_based.layer_geometry import chosen_positions, linear_cka, participation_ratio


# --------------------------------------------------------------------------- hand-computed definitions


def test_participation_ratio_of_known_covariances():
    import torch

    # centered already; XᵀX = diag(8, 2): PR = (8 + 2)² / (8² + 2²)
    x = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert participation_ratio(x) == pytest.approx(100 / 68)
    iso = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert participation_ratio(iso) == pytest.approx(2.0)  # isotropic: PR = d
    assert participation_ratio(iso + 5.0) == pytest.approx(2.0)  # centred first
    line = torch.tensor([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
    assert participation_ratio(line) == pytest.approx(1.0)  # one direction
    with pytest.raises(ValueError, match="zero covariance"):
        participation_ratio(torch.ones(3, 2))


def test_participation_ratio_is_the_eigenvalue_formula():
    import numpy as np

    rng = np.random.default_rng(0)
    for n, d in ((50, 8), (6, 20)):  # both the d × d and the n × n route
        x = rng.normal(size=(n, d)) * rng.uniform(0.1, 3, size=d)
        lam = np.linalg.eigvalsh(np.cov(x, rowvar=False))
        assert participation_ratio(x) == pytest.approx(lam.sum() ** 2 / (lam**2).sum(), rel=1e-10)


def test_linear_cka_by_hand():
    import numpy as np
    import torch

    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert linear_cka(x, x) == pytest.approx(1.0)
    # Y = the first coordinate only: ‖YᵀX‖² = 4, ‖XᵀX‖ = 2√2, ‖YᵀY‖ = 2
    assert linear_cka(x, x[:, :1]) == pytest.approx(4 / (2 * math.sqrt(2) * 2))
    rng = np.random.default_rng(1)
    for n, d in ((40, 6), (5, 12)):
        a = rng.normal(size=(n, d))
        q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        assert linear_cka(a, a @ q) == pytest.approx(1.0)  # an orthogonal rotation
        assert linear_cka(a, 3.0 * a + 2.0) == pytest.approx(1.0)  # scale and shift
        b = rng.normal(size=(n, d + 3))
        ac, bc = a - a.mean(0), b - b.mean(0)
        direct = np.linalg.norm(bc.T @ ac) ** 2 / (np.linalg.norm(ac.T @ ac) * np.linalg.norm(bc.T @ bc))
        assert linear_cka(a, b) == pytest.approx(direct, rel=1e-10)
    with pytest.raises(ValueError, match="same tokens"):
        linear_cka(x, x[:3])


def test_chosen_positions():
    assert chosen_positions([4, 3, 1], 100) == [[1, 2, 3], [1, 2], []]
    # 3 + 9 = 12 positions > 6: q = ⌊6 / 2⌋ = 3 each, evenly spaced: 1 + ⌊i·m / 3⌋
    assert chosen_positions([4, 10], 6) == [[1, 2, 3], [1, 4, 7]]
    assert chosen_positions([5, 5, 5], 2) == [[1], [1], [1]]  # at least one per sequence


# --------------------------------------------------------------------------- the metric against a direct computation


def make_records(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    draw = lambda k: [rng.randrange(2, 258) for _ in range(k)]  # noqa: E731
    return [{"prompt_id": f"p{i}", "dataset": "held-out", "context_ids": draw(5 + i % 3), "reference_ids": draw(6),
             "reference_text": "x", "output_ids": [2]} for i in range(n)]  # fmt: skip


def direct_table(own, base, records, cap: int) -> list[dict]:
    """Hidden states by one forward per text, positions by the pinned rule, PR by eigenvalues, CKA by numpy."""
    import numpy as np
    import torch

    seqs = list({tuple(r["context_ids"] + r["reference_ids"]): None for r in records})
    positions = chosen_positions([len(s) for s in seqs], cap)
    states = {}
    with torch.inference_mode():
        for name, module in (("own", own), ("base", base)):
            per_seq = [module(torch.tensor([list(s)]), output_hidden_states=True).hidden_states for s in seqs]
            states[name] = [np.concatenate([h[layer][0, p].double().numpy() for h, p in zip(per_seq, positions) if p])
                            for layer in range(len(per_seq[0]))]  # fmt: skip
    rows = []
    for x, y in zip(states["own"], states["base"]):
        def pr(a):
            lam = np.linalg.eigvalsh(np.cov(a, rowvar=False))
            return lam.sum() ** 2 / (lam**2).sum()

        xc, yc = x - x.mean(0), y - y.mean(0)
        cka = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
        rows.append({"pr_model": pr(x), "pr_base": pr(y), "cka": cka})
    return rows


@pytest.fixture(scope="module")
def pair():
    return TinyHandle(tiny_llama(0), ByteCodec(), "cpu"), TinyHandle(tiny_llama(1), ByteCodec(), "cpu")


def context(own, base, results_dir=None, loads=None) -> MetricContext:
    def model_for(name):
        if loads is not None:
            loads.append(name)
        return base

    return MetricContext(codec=own.codec, model=lambda: own, model_for=model_for, results_dir=results_dir, model_key="abc123")


def make(ctx, **config) -> LayerGeometry:
    metric = LayerGeometry(config)
    metric.context = ctx
    return metric


@pytest.mark.parametrize("cap", [1000, 20])
def test_layer_geometry_matches_a_direct_computation(pair, tmp_path, cap):
    own, base = pair
    records = make_records(6)
    records += [dict(records[0], sample_idx=1)]  # a second draw of a prompt: its tokens count once
    loads: list[str] = []
    ctx = context(own, base, tmp_path, loads)
    expected = direct_table(own.module, base.module, records, cap)
    assert len(expected) == 3  # embeddings + 2 blocks
    last = expected[-1]
    values = {s: make(ctx, statistic=s, max_tokens=cap, batch_size=4).score_corpus(records)
              for s in ("pr-ratio-last", "pr-last", "cka-last")}  # fmt: skip
    assert values["pr-last"] == pytest.approx(last["pr_model"], rel=1e-5)
    assert values["pr-ratio-last"] == pytest.approx(last["pr_model"] / last["pr_base"], rel=1e-5)
    assert values["cka-last"] == pytest.approx(last["cka"], rel=1e-5)
    assert loads == ["base"], "one pass per model for every statistic"

    table = tmp_path / "probes" / "layer-geometry" / "fit-abc123" / "held-out.vs-base.csv"
    with table.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["name"] for r in rows] == ["embeddings", "block 1", "block 2"]
    for row, want in zip(rows, expected):
        assert float(row["pr_model"]) == pytest.approx(want["pr_model"], rel=1e-4)
        assert float(row["pr_base"]) == pytest.approx(want["pr_base"], rel=1e-4)
        assert float(row["cka"]) == pytest.approx(want["cka"], rel=1e-4)
    assert table.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_model_ratio_and_cka_are_one(pair):
    own, _ = pair
    ctx = context(own, own)
    records = make_records(4, seed=2)
    assert make(ctx).score_corpus(records) == pytest.approx(1.0)
    assert make(ctx, statistic="cka-last").score_corpus(records) == pytest.approx(1.0)


def test_bootstrap_resamples_reuse_the_stored_states(pair):
    from harness.scoring import score_metric

    own, base = pair
    loads: list[str] = []
    records = make_records(6, seed=3)
    metric = make(context(own, base, loads=loads), statistic="cka-last")
    interval = score_metric(metric, records, bootstrap=20, seed=0)
    assert interval.method == "bootstrap" and interval.ci_low <= interval.value <= interval.ci_high
    assert interval.ci_low < interval.ci_high
    assert loads == ["base"]


def test_no_results_dir_writes_nothing(pair, tmp_path):
    own, base = pair
    make(context(own, base)).score_corpus(make_records(3))
    assert not list(tmp_path.rglob("*.csv"))


# --------------------------------------------------------------------------- the real runner


def test_layer_geometry_in_a_real_run(tmp_path):
    data = tiny_benchmark(tmp_path, name="geometry")
    data["decoders"] = {"greedy": {"plugin": "greedy"}}
    data["eval"].update({"datasets": ["other-set"], "contexts": 4, "bootstrap": 10})
    data["metrics"] = {
        "pr-ratio": {"plugin": "layer-geometry"},
        "cka": {"plugin": "layer-geometry", "statistic": "cka-last"},
    }
    run = run_benchmark(data, tmp_path)
    assert run.value("pr-ratio", recipe="base") == pytest.approx(1.0)
    assert run.value("cka", recipe="base") == pytest.approx(1.0)
    assert 0.0 < run.value("cka", recipe="fit") < 1.0
    folder = run.results_dir / "probes" / "layer-geometry"
    tables = sorted(folder.glob("*/other-set.vs-base.csv"))
    assert [t.parent.name for t in tables] == ["tiny__base__greedy", "tiny__fit__greedy"]  # one folder per cell
    assert all(t.with_suffix(".png").is_file() for t in tables)
    written = {t: t.read_bytes() for t in tables}

    import shutil

    shutil.rmtree(folder)  # the files are kept with the stored scores: a warm run writes them again
    warm = run_benchmark(data, tmp_path)
    assert warm.summary.computed.get("score", 0) == 0
    assert {t: t.read_bytes() for t in sorted(folder.glob("*/other-set.vs-base.csv"))} == written
    assert warm.value("cka", recipe="fit") == run.value("cka", recipe="fit")


def test_the_page_links_back(tmp_path):
    doc = Path(__file__).resolve().parents[2] / "docs" / "metrics-probes.md"
    assert "`layer-geometry`" in doc.read_text(encoding="utf-8")
