"""The stage cache: reuse, --fresh, --limit, resuming after an interrupt or a real kill -9, and key isolation."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from conftest import TINY_PLUGINS, tiny_benchmark, write_yaml
from harness.config import load_benchmark
from harness.plugin_manager import PluginOptions, load_plugins
from harness.runner import Runner, RunOptions

REPO = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------- what a rerun promises
#
# A stage *served* from the cache is the stored result: a rerun or a resume repeats it exactly, so those
# comparisons use ==. A stage *recomputed* (--fresh, a clean cache, the batches a killed run never finished) is
# bit-identical only on the same hardware and thread count. Across thread counts (or CPUs) its token ids repeat
# exactly wherever no near-tie decides (the tiny model's smallest greedy top-1/top-2 logit margin, ~7e-5, is
# hundreds of times the drift) and its floats repeat up to rounding: the one-token decoding steps (KV cache) run
# small matmuls whose BLAS kernels split the reduction by thread count, so logits move by about one float32 ulp
# (~1e-7) between 1 and 2 threads, a stored step statistic (kept to 5 decimals) can flip its last digit, and a
# mean entropy moves in its 7th digit. Full-sequence passes (the fit, the first decoding step) and the scorers
# are bit-identical here. The reference runs below are made at REFERENCE_THREADS and the tests' own runs at 1
# (conftest), so every machine and every OMP_NUM_THREADS exercises the cross-thread promise.
#: relative / absolute tolerance for a recomputed score (value and interval bounds)
RECOMPUTE_REL = 1e-5
RECOMPUTE_ABS = 1e-6
#: a recomputed per-step statistic in a record may differ by one unit in the last stored (5th) decimal
STEP_STAT_ABS = 1.01e-5
STEP_STATS = ("step_entropy", "step_top1")
REFERENCE_THREADS = 2


@contextmanager
def torch_threads(count: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def registry():
    return load_plugins(PluginOptions(local_files=(str(TINY_PLUGINS),))).registry


def load(registry, folder: Path, data: dict[str, Any]):
    return load_benchmark(write_yaml(folder / f"{data['name']}.yaml", data), registry)


def run(bench, results: Path, cache: Path, **options: Any):
    return Runner(bench, RunOptions(results_root=results, cache_root=cache, **options)).run()


def score_map(rows) -> dict[tuple, tuple]:
    return {(r.model, r.recipe, r.decoder, r.dataset, r.metric): (r.value, r.ci_low, r.ci_high, r.n) for r in rows}


def csv_score_map(path: Path) -> dict[tuple, tuple]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {
            (r["model"], r["recipe"], r["decoder"], r["dataset"], r["metric"]):
                (float(r["value"]), float(r["ci_low"]), float(r["ci_high"]), int(r["n"]))
            for r in csv.DictReader(handle)
        }  # fmt: skip


def manifest(results_dir: Path) -> dict[str, Any]:
    return json.loads((results_dir / "manifest.json").read_text(encoding="utf-8"))


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_scores_recomputed(after: dict[tuple, tuple], before: dict[tuple, tuple]) -> None:
    """Same rows and sample sizes; values and bounds equal up to RECOMPUTE_REL / RECOMPUTE_ABS."""
    assert after.keys() == before.keys()
    for key, (value, low, high, n) in before.items():
        assert after[key][3] == n, key
        expected = pytest.approx((value, low, high), rel=RECOMPUTE_REL, abs=RECOMPUTE_ABS, nan_ok=True)
        assert after[key][:3] == expected, key


def assert_records_recomputed(after: list[dict[str, Any]], before: list[dict[str, Any]]) -> None:
    """Every field exact (token ids, texts, seeds), the per-step statistics up to one unit in their last digit."""
    assert [r["prompt_id"] for r in after] == [r["prompt_id"] for r in before]
    for new, old in zip(after, before):
        assert {k: v for k, v in new.items() if k not in STEP_STATS} == {
            k: v for k, v in old.items() if k not in STEP_STATS
        }, new["prompt_id"]
        for name in STEP_STATS:
            if name in old:
                assert new[name] == pytest.approx(old[name], rel=0, abs=STEP_STAT_ABS), (new["prompt_id"], name)


def assert_cells_recomputed(results: Path, reference: Path) -> None:
    cells = sorted((reference / "cells").rglob("generations.jsonl"))
    assert cells
    for path in cells:
        assert_records_recomputed(read_records(results / path.relative_to(reference)), read_records(path))


def stage_bytes(cache: Path, stage: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in stage_files(cache, stage)}


def assert_served_exactly(stored: dict[str, bytes], cache: Path, results: Path) -> None:
    """Stage files stored before a resume are untouched, and their records reach the results unchanged."""
    assert stored
    again = stage_bytes(cache, "generate")
    assert {name: again.get(name) for name in stored} == stored, "a stored batch was recomputed or rewritten"
    written = {r["prompt_id"]: r for path in results.rglob("generations.jsonl") for r in read_records(path)}
    for data in stored.values():
        for record in json.loads(data):
            got = written[record["prompt_id"]]
            for name in ("output_ids", *STEP_STATS):
                assert got[name] == record[name], (record["prompt_id"], name)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def stage_files(cache: Path, stage: str) -> list[Path]:
    folder = cache / "stages" / stage
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")) if folder.is_dir() else []


# --------------------------------------------------------------------------- the standard tiny benchmark


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, registry) -> SimpleNamespace:
    """One full run of the tiny benchmark; tests copy its cache and results before touching them."""
    root = tmp_path_factory.mktemp("base")
    data = tiny_benchmark(root)
    bench = load(registry, root, data)
    with torch_threads(REFERENCE_THREADS):
        summary = run(bench, root / "results", root / "cache")
    return SimpleNamespace(root=root, data=data, bench=bench, summary=summary, results=root / "results" / "tiny")


def copy_base(base: SimpleNamespace, tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(base.root / "cache", tmp_path / "cache2")
    shutil.copytree(base.root / "results", tmp_path / "results2")
    return tmp_path / "results2", tmp_path / "cache2"


def test_second_run_reuses_everything(base, tmp_path: Path):
    results, cache = copy_base(base, tmp_path)
    summary = run(base.bench, results, cache)
    assert summary.computed == {}
    assert summary.reused["generate"] == 16 and summary.reused["score"] == 24
    assert score_map(summary.scores) == score_map(base.summary.scores)
    assert (results / "tiny" / "scores.csv").read_bytes() == (base.results / "scores.csv").read_bytes()
    for cell in (base.results / "cells").iterdir():
        again = results / "tiny" / "cells" / cell.name / "generations.jsonl"
        assert read_records(again) == read_records(cell / "generations.jsonl")
    assert manifest(results / "tiny")["stage_keys"] == manifest(base.results)["stage_keys"]


def test_rerun_writes_byte_identical_generations(base, tmp_path: Path):
    results, cache = copy_base(base, tmp_path)
    run(base.bench, results, cache)
    for cell in (base.results / "cells").iterdir():
        again = results / "tiny" / "cells" / cell.name / "generations.jsonl"
        assert again.read_bytes() == (cell / "generations.jsonl").read_bytes(), cell.name


def test_fresh_recomputes_with_equal_scores(base, tmp_path: Path):
    """--fresh on another thread count: the same token ids, scores equal up to the stated tolerance."""
    results, cache = copy_base(base, tmp_path)
    summary = run(base.bench, results, cache, fresh=True)  # 1 thread; the reference ran at REFERENCE_THREADS
    assert summary.computed["generate"] == 16
    assert summary.computed["fit"] == 1 and summary.computed["score"] == 24
    assert "generate" not in summary.reused and "fit" not in summary.reused
    before, after = score_map(base.summary.scores), score_map(summary.scores)
    assert len([k for k in before if k[2] == "greedy"]) == 12
    # sampling is seeded per prompt, and the refit is seeded too: every continuation and every score repeats
    assert_cells_recomputed(results / "tiny", base.results)
    assert_scores_recomputed(after, before)
    assert manifest(results / "tiny")["fresh"] is True


def test_fresh_on_the_same_threads_is_bit_identical(base, tmp_path: Path):
    """The reproducibility scope: the same hardware and thread count recompute every number exactly."""
    results, cache = copy_base(base, tmp_path)
    with torch_threads(REFERENCE_THREADS):
        summary = run(base.bench, results, cache, fresh=True)
    assert summary.computed["generate"] == 16 and summary.computed["fit"] == 1
    assert score_map(summary.scores) == score_map(base.summary.scores)
    for cell in (base.results / "cells").iterdir():
        again = results / "tiny" / "cells" / cell.name / "generations.jsonl"
        assert read_records(again) == read_records(cell / "generations.jsonl"), cell.name


def test_limit_writes_a_separate_results_dir(base, tmp_path: Path):
    results, cache = copy_base(base, tmp_path)
    full_before = snapshot(results / "tiny")
    summary = run(base.bench, results, cache, limit=2)
    assert summary.results_dir == results / "tiny-limit2"
    assert snapshot(results / "tiny") == full_before, "the full results dir is left alone"
    assert "fit" not in summary.computed, "the stored fit is reused"
    # 2 contexts fit in one batch: 4 cells x 2 datasets
    assert summary.computed["generate"] == 8
    rows = csv_score_map(results / "tiny-limit2" / "scores.csv")
    assert len(rows) == 24 and all(v[3] == 2 for v in rows.values())
    assert manifest(results / "tiny-limit2")["limit"] == 2
    for cell in (base.results / "cells").iterdir():
        full = read_records(cell / "generations.jsonl")
        limited = read_records(results / "tiny-limit2" / "cells" / cell.name / "generations.jsonl")
        expected = [r for d in ("train-set", "other-set") for r in [x for x in full if x["dataset"] == d][:2]]
        assert [r["prompt_id"] for r in limited] == [r["prompt_id"] for r in expected]
        # a continuation does not depend on the batch it ran in (greedy and seeded top-p alike)
        assert [r["output_ids"] for r in limited] == [r["output_ids"] for r in expected], cell.name


def test_decoder_param_change_recomputes_only_that_decoder(base, tmp_path: Path, registry):
    results, cache = copy_base(base, tmp_path)
    data = json.loads(json.dumps(base.data))
    data["decoders"]["top-p"]["p"] = 0.5
    summary = run(load(registry, tmp_path, data), results, cache)
    old = manifest(base.results)["stage_keys"]["generate"]
    new = manifest(results / "tiny")["stage_keys"]["generate"]
    assert set(old) == set(new)
    for key in old:
        if "__top-p/" in key:
            assert new[key] != old[key], key
        else:
            assert new[key] == old[key], key
    assert summary.computed["generate"] == 8 and summary.reused["generate"] == 8
    assert summary.computed["score"] == 12 and summary.reused["score"] == 12
    assert not {"fit", "train", "contexts"} & set(summary.computed)
    before, after = score_map(base.summary.scores), score_map(summary.scores)
    assert {k: v for k, v in after.items() if k[2] == "greedy"} == {k: v for k, v in before.items() if k[2] == "greedy"}
    assert any(after[k] != before[k] for k in before if k[2] == "top-p")


def test_recipe_param_change_refits_only_that_recipe(base, tmp_path: Path, registry):
    results, cache = copy_base(base, tmp_path)
    data = json.loads(json.dumps(base.data))
    data["recipes"]["fit"]["lr"] = 1.0e-3
    summary = run(load(registry, tmp_path, data), results, cache)
    assert summary.computed["fit"] == 1
    assert "train" not in summary.computed, "the training data does not depend on the optimiser"
    # only the fitted cells: 2 decoders x 2 datasets x 2 batches
    assert summary.computed["generate"] == 8 and summary.reused["generate"] == 8
    old = manifest(base.results)["stage_keys"]
    new = manifest(results / "tiny")["stage_keys"]
    assert new["fit"]["tiny/base"] == old["fit"]["tiny/base"]
    assert new["fit"]["tiny/fit"] != old["fit"]["tiny/fit"]
    before, after = score_map(base.summary.scores), score_map(summary.scores)
    assert {k: v for k, v in after.items() if k[1] == "base"} == {k: v for k, v in before.items() if k[1] == "base"}


def test_edited_data_invalidates_only_its_stages(tmp_path: Path, registry):
    data = tiny_benchmark(
        tmp_path, name="edit", recipes={"base": {"plugin": "none"}}, decoders={"greedy": {"plugin": "greedy"}},
        metrics={"ttr": {"plugin": "ttr"}},
    )  # fmt: skip
    results, cache = tmp_path / "results", tmp_path / "cache"
    first = run(load(registry, tmp_path, data), results, cache)
    assert first.computed["generate"] == 4
    before = manifest(results / "edit")
    corpus = Path(data["datasets"]["other-set"]["path"])
    corpus.write_text(corpus.read_text(encoding="utf-8") + "\n" + " ".join(["harbor"] * 40) + "\n", encoding="utf-8")
    second = run(load(registry, tmp_path, data), results, cache)
    after = manifest(results / "edit")
    assert after["data"]["train-set"] == before["data"]["train-set"]
    assert after["data"]["other-set"]["sha256"] != before["data"]["other-set"]["sha256"]
    assert after["data"]["other-set"]["documents"] == before["data"]["other-set"]["documents"] + 1
    assert after["stage_keys"]["contexts"]["tiny/train-set"] == before["stage_keys"]["contexts"]["tiny/train-set"]
    assert after["stage_keys"]["contexts"]["tiny/other-set"] != before["stage_keys"]["contexts"]["tiny/other-set"]
    assert second.computed["contexts"] == 1
    assert second.computed["generate"] == 2 and second.reused["generate"] == 2


def test_removed_decoder_is_pruned_from_results(base, tmp_path: Path, registry):
    results, cache = copy_base(base, tmp_path)
    data = json.loads(json.dumps(base.data))
    del data["decoders"]["top-p"]
    summary = run(load(registry, tmp_path, data), results, cache)
    assert summary.computed == {}
    assert sorted(p.name for p in (results / "tiny" / "cells").iterdir()) == ["tiny__base__greedy", "tiny__fit__greedy"]
    rows = csv_score_map(results / "tiny" / "scores.csv")
    assert {k[2] for k in rows} == {"greedy"} and len(rows) == 12
    assert "top-p" not in (results / "tiny" / "leaderboard.md").read_text(encoding="utf-8")


def test_renamed_dataset_gets_its_own_contexts(base, tmp_path: Path, registry):
    results, cache = copy_base(base, tmp_path)
    data = json.loads(json.dumps(base.data))
    data["datasets"]["wiki"] = data["datasets"].pop("other-set")
    data["eval"]["datasets"] = ["train-set", "wiki"]
    run(load(registry, tmp_path, data), results, cache)
    records = read_records(results / "tiny" / "cells" / "tiny__base__greedy" / "generations.jsonl")
    assert {r["dataset"] for r in records} == {"train-set", "wiki"}
    assert all(r["prompt_id"].startswith(r["dataset"] + "/") for r in records)


def test_renamed_recipe_scores_like_a_clean_run(base, tmp_path: Path, registry):
    results, cache = copy_base(base, tmp_path)
    data = json.loads(json.dumps(base.data))
    data["recipes"]["hf"] = data["recipes"].pop("fit")
    bench = load(registry, tmp_path, data)
    cached = run(bench, results, cache)
    clean = run(bench, tmp_path / "clean-results", tmp_path / "clean-cache")  # recomputed, on 1 thread
    assert_scores_recomputed(score_map(cached.scores), score_map(clean.scores))
    assert_cells_recomputed(results / "tiny", tmp_path / "clean-results" / "tiny")


# --------------------------------------------------------------------------- interrupted generation


def flaky_data(folder: Path, name: str = "flaky") -> dict[str, Any]:
    """No training; decoder `flaky` (greedy that can sleep or crash); 2 datasets x 4 batches of 2."""
    return tiny_benchmark(
        folder,
        name=name,
        recipes={"base": {"plugin": "none"}},
        decoders={"flaky": {"plugin": "flaky"}},
        eval={"datasets": ["train-set", "other-set"], "contexts": 8, "context_tokens": 12, "new_tokens": 16,
              "batch_size": 2, "bootstrap": 50},
    )  # fmt: skip


@pytest.fixture(scope="module")
def flaky_reference(tmp_path_factory: pytest.TempPathFactory, registry) -> SimpleNamespace:
    """An uninterrupted run of the flaky benchmark, in a cache of its own."""
    root = tmp_path_factory.mktemp("flaky-ref")
    registry.get("decoder", "flaky").cls.calls = 0
    with torch_threads(REFERENCE_THREADS):
        summary = run(load(registry, root, flaky_data(root)), root / "results", root / "cache")
    assert summary.computed["generate"] == 8
    return SimpleNamespace(summary=summary, scores=score_map(summary.scores), results=root / "results" / "flaky")


def test_keyboard_interrupt_then_resume(flaky_reference, tmp_path: Path, registry, monkeypatch: pytest.MonkeyPatch):
    bench = load(registry, tmp_path, flaky_data(tmp_path))
    cache, results = tmp_path / "c", tmp_path / "r"
    flaky = registry.get("decoder", "flaky").cls
    flaky.calls = 0
    monkeypatch.setenv("TINY_CRASH_BATCH", "3")
    runner = Runner(bench, RunOptions(results_root=results, cache_root=cache))
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    assert runner.book.computed.get("generate") == 2, "the two batches before the interrupt are stored"
    assert len(stage_files(cache, "generate")) == 2
    assert not (results / "flaky" / "scores.csv").exists()
    stored = stage_bytes(cache, "generate")

    monkeypatch.delenv("TINY_CRASH_BATCH")
    summary = run(bench, results, cache)
    assert summary.reused["generate"] == 2
    assert summary.computed["generate"] == 6
    assert_served_exactly(stored, cache, results / "flaky")
    # the 6 recomputed batches ran on 1 thread, the reference on REFERENCE_THREADS
    assert_scores_recomputed(score_map(summary.scores), flaky_reference.scores)
    assert_cells_recomputed(results / "flaky", flaky_reference.results)


def test_interrupted_rerun_leaves_previous_results_untouched(
    flaky_reference, tmp_path: Path, registry, monkeypatch: pytest.MonkeyPatch
):
    """Result files are written only when a run completes: a failed rerun keeps the last complete set."""
    data = flaky_data(tmp_path)
    cache, results = tmp_path / "c", tmp_path / "r"
    flaky = registry.get("decoder", "flaky").cls
    flaky.calls = 0
    run(load(registry, tmp_path, data), results, cache)
    before = {p: p.read_bytes() for p in (results / "flaky").rglob("*") if p.is_file() and p.name != "manifest.json"}

    data["eval"]["new_tokens"] = 20  # every generation stage changes
    flaky.calls = 0
    monkeypatch.setenv("TINY_CRASH_BATCH", "3")
    with pytest.raises(KeyboardInterrupt):
        Runner(load(registry, tmp_path, data), RunOptions(results_root=results, cache_root=cache)).run()
    after = {p: p.read_bytes() for p in (results / "flaky").rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert after == before


def cli_run(yaml_path: Path, results: Path, cache: Path, **env: str) -> subprocess.Popen:
    full_env = {**os.environ, "HARNESS_CACHE": str(cache), "OMP_NUM_THREADS": "1", **env}
    for knob in ("TINY_SLEEP", "TINY_CRASH_BATCH"):
        if knob not in env:
            full_env.pop(knob, None)
    command = [sys.executable, "-m", "harness.cli", "--plugins", str(TINY_PLUGINS), "run", str(yaml_path),
               "--results", str(results), "--quiet"]  # fmt: skip
    return subprocess.Popen(command, cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"the run ended (rc {proc.returncode}) before it could be killed:\n{out}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out waiting for the run to reach the stage to kill")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out.decode(errors="replace")


def assert_no_trusted_partial_files(cache: Path) -> None:
    """A killed writer may leave temp files, but never one a reader would take for a stage."""
    for path in cache.rglob("*"):
        if path.name.endswith(".tmp") or ".partial" in path.name:
            assert path.name.startswith("."), path
    for path in (cache / "stages").rglob("*.json"):
        if not path.name.startswith("."):
            json.loads(path.read_text(encoding="utf-8"))  # every visible stage file is complete


def test_kill_9_during_generation_then_resume(flaky_reference, tmp_path: Path):
    yaml_path = write_yaml(tmp_path / "flaky.yaml", flaky_data(tmp_path))
    cache, results = tmp_path / "cache", tmp_path / "results"
    proc = cli_run(yaml_path, results, cache, TINY_SLEEP="0.5")
    kill_when(proc, lambda: bool(stage_files(cache, "generate")))
    done = len(stage_files(cache, "generate"))
    assert 1 <= done < 8
    assert_no_trusted_partial_files(cache)
    assert not (results / "flaky" / "scores.csv").exists()
    stored = stage_bytes(cache, "generate")

    finish(cli_run(yaml_path, results, cache))
    stages = manifest(results / "flaky")["stages"]
    assert stages["reused"]["generate"] == done
    assert stages["computed"]["generate"] == 8 - done
    assert_served_exactly(stored, cache, results / "flaky")
    # both processes ran on 1 thread (cli_run), the reference on REFERENCE_THREADS
    reference = csv_score_map(flaky_reference.results / "scores.csv")
    assert_scores_recomputed(csv_score_map(results / "flaky" / "scores.csv"), reference)
    assert_cells_recomputed(results / "flaky", flaky_reference.results)
    assert not [p for p in results.rglob("*") if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- interrupted fit


def long_fit_data(folder: Path) -> dict[str, Any]:
    return tiny_benchmark(
        folder,
        name="longfit",
        recipes={"fit": {"plugin": "hyperfit", "train": {"dataset": "train-set", "samples": 8, "tokens": 24},
                         "lr": 3.0e-3, "epochs": 150, "batch_size": 4, "curve_every": 0, "checkpoint_every": 20}},
        decoders={"greedy": {"plugin": "greedy"}},
        eval={"datasets": ["other-set"], "contexts": 4, "context_tokens": 12, "new_tokens": 8, "batch_size": 4,
              "bootstrap": 20},
        metrics={"ttr": {"plugin": "ttr", "window": 8}, "entropy": {"plugin": "entropy"}},
    )  # fmt: skip


def test_kill_9_during_fit_then_resume(tmp_path: Path, registry):
    yaml_path = write_yaml(tmp_path / "longfit.yaml", long_fit_data(tmp_path))
    cache, results = tmp_path / "cache", tmp_path / "results"
    proc = cli_run(yaml_path, results, cache)
    work = cache / "work"
    kill_when(proc, lambda: any(work.glob("*/checkpoint/loop.json")))
    assert stage_files(cache, "fit") == [], "the fit was killed before it finished"
    fits = cache / "fits"
    assert not fits.exists() or all(p.name.startswith(".") for p in fits.iterdir()), "no committed weights"
    assert_no_trusted_partial_files(cache)

    finish(cli_run(yaml_path, results, cache))
    stages = manifest(results / "longfit")["stages"]
    assert stages["computed"]["fit"] == 1
    fit_key = manifest(results / "longfit")["stage_keys"]["fit"]["tiny/fit"]
    assert (fits / fit_key).is_dir()
    info = json.loads(next((cache / "stages" / "fit").glob(f"{fit_key}*.json")).read_text())
    assert info["resumed_from_update"] >= 20, "the rerun continued from the checkpoint, not from scratch"
    assert not (work / fit_key / "checkpoint").exists()
    with (results / "longfit" / "recipes" / "tiny__fit" / "curves.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 150

    reference = tmp_path / "reference"
    summary = run(load(registry, reference.parent, long_fit_data(tmp_path)), reference / "results", reference / "cache")
    assert summary.computed["fit"] == 1
    assert csv_score_map(results / "longfit" / "scores.csv") == score_map(summary.scores)


# --------------------------------------------------------------------------- --fit-only


def test_fit_only_trains_into_the_cache_and_a_later_run_reuses_it(tmp_path: Path):
    """`harness run --fit-only` (the multi-GPU launch's first step) stores fits and writes no results."""
    yaml_path = write_yaml(tmp_path / "tiny.yaml", tiny_benchmark(tmp_path))
    cache, results = tmp_path / "cache", tmp_path / "results"
    env = {**os.environ, "HARNESS_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "harness", "--plugins", str(TINY_PLUGINS), "run", str(yaml_path), "--results", str(results)]
    done = subprocess.run(base + ["--fit-only"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fits done (1 trained, 0 reused" in done.stderr
    assert len(stage_files(cache, "fit")) == 1 and not results.exists()
    assert stage_files(cache, "generate") == []
    done = subprocess.run(base + ["--quiet"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    stages = manifest(results / "tiny")["stages"]
    assert stages["reused"]["fit"] == 1 and "fit" not in stages["computed"]
