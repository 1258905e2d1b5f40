"""FSDP on 2 CPU processes (accelerate launch, gloo) reproduces the 1-process fit at the same effective batch.

The launch config is the shipped configs/accelerate/fsdp-cpu.yaml (FULL_SHARD, full state dict). The sharded
fit's weights are gathered once and written by the main process straight into the fit cache; a one-process
run then generates from them. A sharded launch without --fit-only is refused before anything loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_PLUGINS
from test_distributed import REPO, benchmark, free_port

CONFIG = REPO / "configs" / "accelerate" / "fsdp-cpu.yaml"


def harness(cache: Path, *args: str, launch: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "harness", "--plugins", str(TINY_PLUGINS), *args]
    if launch:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIG),
                   "--main_process_port", str(free_port()), *command[1:]]  # fmt: skip
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def stored_fit(cache: Path, results: Path) -> tuple[list[dict], dict, dict]:
    key = json.loads((results / "manifest.json").read_text())["stage_keys"]["fit"]["tiny/fit"]
    from safetensors.torch import load_file

    curve = json.loads((cache / "stages" / "curves" / f"{key}.json").read_text())
    info = json.loads((cache / "stages" / "fit" / f"{key}.json").read_text())
    return curve, info, load_file(str(cache / "fits" / key / "weights.safetensors"))


def test_fsdp_two_cpu_processes_match_one_process(tmp_path: Path):
    pytest.importorskip("accelerate")
    torch = pytest.importorskip("torch")
    yaml_path = benchmark(tmp_path)
    one = harness(tmp_path / "c1", "run", str(yaml_path), "--results", str(tmp_path / "one"), "--quiet")
    assert one.returncode == 0, one.stderr
    refused = harness(tmp_path / "c2", "run", str(yaml_path), "--results", str(tmp_path / "two"), launch=True)
    assert refused.returncode != 0 and "a sharded (fsdp) launch only trains: add --fit-only" in refused.stderr
    sharded = harness(tmp_path / "c2", "run", str(yaml_path), "--results", str(tmp_path / "two"), "--fit-only", launch=True)
    assert sharded.returncode == 0, sharded.stdout + sharded.stderr
    # then one process generates and scores from the stored sharded fit (reused, not retrained)
    after = harness(tmp_path / "c2", "run", str(yaml_path), "--results", str(tmp_path / "two"), "--quiet")
    assert after.returncode == 0, after.stderr
    manifest = json.loads((tmp_path / "two" / "dist" / "manifest.json").read_text())
    assert manifest["stages"]["reused"]["fit"] == 1 and "fit" not in manifest["stages"]["computed"]

    curve_1, info_1, weights_1 = stored_fit(tmp_path / "c1", tmp_path / "one" / "dist")
    curve_2, info_2, weights_2 = stored_fit(tmp_path / "c2", tmp_path / "two" / "dist")
    assert (info_1["world_size"], info_2["world_size"]) == (1, 2) and info_1["updates"] == info_2["updates"] == 6
    assert [r["step"] for r in curve_2] == [r["step"] for r in curve_1] == [0, 2, 4, 6]
    for a, b in zip(curve_1, curve_2):
        for column in ("train_loss", "heldout_loss", "heldout_entropy"):
            if column in a:
                assert b[column] == pytest.approx(a[column], rel=1e-5, abs=1e-6), column
    # the gathered full weights, not shards: every tensor, full shape, equal up to float rounding
    assert sorted(weights_2) == sorted(weights_1)
    for name, tensor in weights_1.items():
        assert weights_2[name].shape == tensor.shape, name
        assert torch.allclose(weights_2[name], tensor, rtol=1e-4, atol=1e-5), name
    assert not torch.equal(weights_1["model.layers.0.mlp.up_proj.weight"], stored_fit_base(tmp_path))


def stored_fit_base(tmp_path: Path):
    """The tiny model's initial weight (the fit moved it: the comparison above is not of two untrained copies)."""
    from harness.testing import tiny_llama

    return tiny_llama().state_dict()["model.layers.0.mlp.up_proj.weight"]
