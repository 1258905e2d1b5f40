"""benchmarks/perf/cost_model.py: its arithmetic against hand-computed values, and one run on a real YAML."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cm():
    spec = importlib.util.spec_from_file_location("cost_model", ROOT / "benchmarks" / "perf" / "cost_model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["cost_model"] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def test_paper_recipe_updates_tokens_and_flops(cm) -> None:
    updates = cm.total_updates(samples=2000, batch=8, epochs=20)
    assert updates == 5000  # 2000 / 8 = 250 per epoch x 20
    tokens = cm.train_tokens(updates, batch=8, tokens=256)
    assert tokens == 10_240_000
    # TinyLlama: 6 x 1.100048384e9 x 1.024e7 = 6.7587e16 FLOPs; checkpointing recomputes the forward (8·N)
    assert cm.train_flops(1.100048384e9, tokens) == pytest.approx(6.758697271e16, rel=1e-9)
    assert cm.train_flops(1e9, 1000, checkpointing=True) == pytest.approx(8e12)


def test_data_size_ablation_holds_updates_and_logs_about_20_points(cm) -> None:
    assert cm.total_updates(samples=8, batch=8, epochs=20, updates=5000) == 5000
    # 8 samples: 1 update per epoch, 5000 epochs, a point every 250 epochs + the one before training
    assert cm.curve_points(5000, per_epoch=1, curve_every=250) == 21
    # 1024 samples: 128 updates per epoch -> 39.06 epochs; every 2 epochs -> ceil(19.53) = 20, + 1
    assert cm.curve_points(5000, per_epoch=128, curve_every=2) == 21
    assert cm.curve_points(5000, per_epoch=250, curve_every=0) == 0


def test_state_bytes_per_layout(cm) -> None:
    fsdp = next(l for l in cm.LAYOUTS if l.name == "fsdp8")
    offload = next(l for l in cm.LAYOUTS if l.name == "zero3-8-offload")
    # fp32 weights + grads + two Adam moments = 16 B/param, whatever the autocast
    assert cm.state_bytes_per_param(fsdp, 4, "bf16") == (16.0, 0.0)
    assert cm.state_bytes_per_param(cm.LAYOUTS[0], 2, "bf16") == (8.0, 0.0)
    # ZeRO-3 offload: bf16 weights + grads on the GPUs, fp32 master + moments + grads on the host
    assert cm.state_bytes_per_param(offload, 2, "bf16") == (4.0, 16.0)


def test_kv_cache_llama_8b(cm) -> None:
    # 2 (K and V) x 32 layers x 8 KV heads x 128 dims x 2 bytes = 131072 bytes per token
    assert cm.kv_bytes_per_token(cm.MODELS["meta-llama/Llama-3.1-8B"], 2) == 131072


def test_llama_8b_fsdp_memory_by_hand(cm) -> None:
    spec = cm.MODELS["meta-llama/Llama-3.1-8B"]
    recipe = {"batch_size": 8, "epochs": 20, "precision": "bf16", "curve_every": 1, "curve_contexts": 32}
    train = {"samples": 2000, "tokens": 256, "heldout": 128}
    fsdp = next(l for l in cm.LAYOUTS if l.name == "fsdp8")
    est = cm.fit_estimate(spec, 4, recipe, train, fsdp, cm.ASSUMPTIONS)
    state = 16 * 8.030261248e9 / 8                              # 16.06 GB
    unit = 2 * (8.030261248e9 / 32) * 4                         # two gathered fp32 blocks: 2.01 GB
    acts = 32 * 256 * 4096 * (34 + 5 * 32 * 256 / 4096)         # 1.48 GB (bf16, micro-batch 1)
    logits = 256 * 128256 * 10                                  # 0.33 GB
    assert est["memory_gb_per_gpu"] == pytest.approx((state + unit + acts + logits) / 1e9, abs=0.05)
    assert est["fits"] and est["updates"] == 5000
    # a single GPU cannot hold 128 GB of state
    assert not cm.fit_estimate(spec, 4, recipe, train, cm.LAYOUTS[0], cm.ASSUMPTIONS)["fits"]


def test_batch_of_8_cannot_split_over_64_processes(cm) -> None:
    spec = cm.MODELS["meta-llama/Llama-3.1-70B"]
    recipe = {"batch_size": 8, "epochs": 20, "precision": "bf16"}
    wide = next(l for l in cm.LAYOUTS if l.name == "zero3-64")
    est = cm.fit_estimate(spec, 2, recipe, {"samples": 2000, "tokens": 256}, wide, cm.ASSUMPTIONS)
    assert est["possible"] is False and "does not split" in est["why"]


def test_runs_on_paper_text_yaml(cm, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cost.json"
    assert cm.main([str(ROOT / "benchmarks" / "paper-text.yaml"), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    (bench,) = data["benchmarks"]
    layouts = {m["model"]: m["layout"] for m in bench["models"]}
    assert layouts == {"tinyllama": "1gpu", "deepseek-7b": "fsdp8", "llama-3.1-8b": "fsdp8"}
    assert bench["totals"]["train_gpu_hours"] > 0
    assert "ESTIMATES" in data["what"]
    assert "| paper-text | tinyllama |" in capsys.readouterr().out
