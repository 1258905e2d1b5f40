"""Two runs on one cache: every stage is computed once, the second run waits for it and reuses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.testing import tiny_benchmark, write_yaml

REPO = Path(__file__).resolve().parents[2]
TINY_PLUGINS = REPO / "tests" / "fixtures" / "tiny_plugins.py"


def start(yaml_path: Path, results: Path, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "HARNESS_CACHE": str(cache), "OMP_NUM_THREADS": "1", "TINY_FIT_SLEEP": "4", "TINY_SLEEP": "0.3"}
    command = [sys.executable, "-m", "harness.cli", "--plugins", str(TINY_PLUGINS), "run", str(yaml_path),
               "--results", str(results), "--quiet"]  # fmt: skip
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_two_runs_started_together_compute_each_stage_once(tmp_path: Path):
    bench = tiny_benchmark(tmp_path, name="shared")
    bench["recipes"]["fit"]["plugin"] = "slow-hyperfit"
    bench["decoders"] = {"greedy": {"plugin": "flaky"}}
    bench["matrix"] = [{"recipe": "fit", "decoder": "greedy"}]
    bench["metrics"] = {"ttr": {"plugin": "ttr", "window": 16}, "entropy": {"plugin": "entropy"}}
    bench["eval"]["batch_size"] = 2  # 6 contexts per dataset → 3 batches each, 6 in all
    yaml_path = write_yaml(tmp_path / "shared.yaml", bench)
    cache = tmp_path / "cache"
    runs = [start(yaml_path, tmp_path / f"results-{i}", cache) for i in range(2)]
    for proc in runs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out.decode(errors="replace")
    manifests = [json.loads((tmp_path / f"results-{i}" / "shared" / "manifest.json").read_text()) for i in range(2)]
    computed = [m["stages"]["computed"] for m in manifests]
    assert sum(c.get("fit", 0) for c in computed) == 1, computed
    assert sum(c.get("generate", 0) for c in computed) == 6, computed  # no batch generated twice
    assert sum(c.get("score", 0) for c in computed) == 4, computed  # 2 metrics × 2 datasets, once each
    scores = [(tmp_path / f"results-{i}" / "shared" / "scores.csv").read_text() for i in range(2)]
    assert scores[0] == scores[1]


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path: Path):
    """The kernel drops an flock when its holder dies: a later run takes the stage lock at once."""
    from harness.store import StageCache

    cache = StageCache(tmp_path / "cache")
    path = cache.lock_path("fit", "k")
    path.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import filelock, time; lock = filelock.FileLock({str(path)!r}); lock.acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
    with cache.try_lock("fit", "k") as mine:
        assert not mine  # held by a live process
    holder.kill()
    holder.wait()
    with cache.try_lock("fit", "k") as mine:
        assert mine
