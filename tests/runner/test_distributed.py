"""A 2-process data-parallel fit (torchrun, CPU, gloo) reproduces the 1-process fit at the same effective batch.

The launch is the real one a GPU user runs (``accelerate launch`` / ``torchrun`` start one ``harness run``
per process); on CPUs accelerate's gloo backend stands in for NCCL. Each process takes half of every
batch of 4; gradients are averaged, so the loss curve must match the single process up to rounding.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_PLUGINS, tiny_benchmark, write_yaml

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def benchmark(folder: Path) -> Path:
    data = tiny_benchmark(
        folder,
        name="dist",
        recipes={"fit": {"plugin": "hyperfit", "train": {"dataset": "train-set", "samples": 8, "tokens": 24, "heldout": 4},
                         "lr": 3.0e-3, "epochs": 3, "batch_size": 4, "curve_new_tokens": 8}},
        decoders={"greedy": {"plugin": "greedy"}},
        eval={"datasets": ["other-set"], "contexts": 4, "context_tokens": 12, "new_tokens": 8, "batch_size": 4,
              "bootstrap": 20},
        metrics={"ttr": {"plugin": "ttr", "window": 8}},
    )  # fmt: skip
    return write_yaml(folder / "dist.yaml", data)


def launch(yaml_path: Path, tmp: Path, name: str, processes: int) -> tuple[list[dict], dict]:
    env = {**os.environ, "HARNESS_CACHE": str(tmp / f"cache-{name}"), "OMP_NUM_THREADS": "1"}
    harness = ["-m", "harness", "--plugins", str(TINY_PLUGINS), "run", str(yaml_path), "--results", str(tmp / name), "--quiet"]
    if processes == 1:
        command = [sys.executable, *harness]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                   "--master_addr", "127.0.0.1", "--master_port", str(free_port()), *harness]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    results = tmp / name / "dist"
    with (results / "recipes" / "tiny__fit" / "curves.csv").open(encoding="utf-8") as handle:
        curve = list(csv.DictReader(handle))
    fit_key = json.loads((results / "manifest.json").read_text())["stage_keys"]["fit"]["tiny/fit"]
    info = json.loads((tmp / f"cache-{name}" / "stages" / "fit" / f"{fit_key}.json").read_text())
    return curve, info


def test_two_process_data_parallel_matches_one_process(tmp_path: Path):
    pytest.importorskip("accelerate")
    yaml_path = benchmark(tmp_path)
    single, single_info = launch(yaml_path, tmp_path, "one", 1)
    double, double_info = launch(yaml_path, tmp_path, "two", 2)
    assert single_info["world_size"] == 1 and double_info["world_size"] == 2
    assert single_info["updates"] == double_info["updates"] == 6
    assert [r["step"] for r in single] == [r["step"] for r in double] == ["0", "2", "4", "6"]
    for a, b in zip(single, double):
        for column in ("train_loss", "heldout_loss", "heldout_entropy"):
            if a[column]:
                assert float(b[column]) == pytest.approx(float(a[column]), rel=1e-5, abs=1e-6), column
    assert float(double[-1]["train_loss"]) < float(double[1]["train_loss"])
    # only the main process wrote results: one leaderboard, one manifest
    assert sorted(p.name for p in (tmp_path / "two" / "dist").iterdir()) == sorted(
        p.name for p in (tmp_path / "one" / "dist").iterdir()
    )


def run_on(cache: Path, yaml_path: Path, results: Path, processes: int, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    harness = ["-m", "harness", "--plugins", str(TINY_PLUGINS), "run", str(yaml_path), "--results", str(results), *extra]
    launcher = [] if processes == 1 else ["-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                                          "--master_addr", "127.0.0.1", "--master_port", str(free_port())]  # fmt: skip
    done = subprocess.run([sys.executable, *launcher, *harness], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_two_process_generation_and_scores_equal_one_process(tmp_path: Path):
    """Each process generates its share of the batches; the main one gathers and scores: same files as one process.

    Both runs start from one stored fit (copied into two caches), so they decode the very same weights: the
    outputs must then be identical, not merely close."""
    pytest.importorskip("accelerate")
    import shutil

    data = tiny_benchmark(
        tmp_path, name="dpgen",
        recipes={"fit": {"plugin": "hyperfit", "train": {"dataset": "train-set", "samples": 8, "tokens": 24, "heldout": 0},
                         "lr": 3.0e-3, "epochs": 2, "batch_size": 4, "curve_every": 0}},
        decoders={"greedy": {"plugin": "greedy"}, "top-p": {"plugin": "top-p", "p": 0.9}},
        eval={"datasets": ["other-set"], "contexts": 8, "context_tokens": 12, "new_tokens": 10, "batch_size": 2,
              "samples_per_prompt": 2, "bootstrap": 20},
        metrics={"ttr": {"plugin": "ttr", "window": 8}, "self-bleu": {"plugin": "self-bleu"}},
    )  # fmt: skip
    yaml_path = write_yaml(tmp_path / "dpgen.yaml", data)
    run_on(tmp_path / "cache-a", yaml_path, tmp_path / "fit", 1, "--fit-only", "--quiet")
    shutil.copytree(tmp_path / "cache-a", tmp_path / "cache-b")
    run_on(tmp_path / "cache-a", yaml_path, tmp_path / "one", 1, "--quiet")
    two = run_on(tmp_path / "cache-b", yaml_path, tmp_path / "two", 2, "--quiet")
    # greedy: 8 rows, top-p: 8 prompts x 2 draws = 16 rows; in batches of 2: 4 + 8 = 12 batches dealt round-robin
    assert "process 1 of 2 generated 6 batches of its share (0 found stored)" in two.stderr, two.stderr
    one_dir, two_dir = tmp_path / "one" / "dpgen", tmp_path / "two" / "dpgen"
    for name in ("scores.csv", "leaderboard.md"):
        assert (two_dir / name).read_text() == (one_dir / name).read_text(), name
    cells = sorted(p.relative_to(one_dir) for p in one_dir.glob("cells/*/generations.jsonl"))
    assert len(cells) == 2
    for cell in cells:
        first = [json.loads(line) for line in (one_dir / cell).read_text().splitlines()]
        second = [json.loads(line) for line in (two_dir / cell).read_text().splitlines()]
        assert [r["output_ids"] for r in second] == [r["output_ids"] for r in first], cell
        assert second == first, cell
    manifest = json.loads((two_dir / "manifest.json").read_text())
    assert manifest["stages"]["computed"]["generate"] == 6  # the main process's own share; the rest it read back
    assert manifest["stages"]["reused"]["generate"] == 6
