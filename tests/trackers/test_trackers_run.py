"""A tiny benchmark mirrored into MLflow, W&B and TensorBoard at once, each read back with its own reader.

One run trains the fit (its curve goes out live), a second one reuses every stage (the stored curve is logged
when the run is recorded); each tracker's test skips when its package is not installed (CI installs them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tracker_helpers import (curve_column, flat_scores, installed, read_wandb, tracked_benchmark, wandb_env,
                             wandb_history, wandb_run_dirs)  # fmt: skip
from harness.testing import run_benchmark

AVAILABLE = [name for name, module in (("mlflow", "mlflow"), ("wandb", "wandb"), ("tensorboard", "tensorboard"))
             if installed(module)]  # fmt: skip
CURVE_COLUMNS = ("train_loss", "heldout_loss", "heldout_entropy", "greedy_ttr")
CELLS = ["tiny__base__greedy", "tiny__fit__greedy"]


def assert_curve(got: list, expected: list, column: str, rel: float = 1e-12) -> None:
    assert [step for step, _ in got] == [step for step, _ in expected], column
    assert [value for _, value in got] == pytest.approx([value for _, value in expected], rel=rel), column


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    if not AVAILABLE:
        pytest.skip("none of mlflow, wandb, tensorboard is installed (pip install 'hyperfit-harness[mlflow,wandb,tensorboard]')")
    root = tmp_path_factory.mktemp("tracked")
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        wandb_env(mp, root)
        bench = tracked_benchmark(root, {name: {"samples": 2} for name in AVAILABLE})
        first = run_benchmark(bench, root)  # trains the fit: curve rows go out as they are logged
        second = run_benchmark(bench, root)  # every stage reused: the stored curve is logged at record time
    if torch and threads:
        torch.set_num_threads(threads)
    return SimpleNamespace(root=root, results=first.results_dir, first=first, second=second, bench=bench)


def test_the_second_run_reuses_every_stage_and_trackers_change_no_stage_key(runs, tmp_path):
    assert runs.first.summary.computed.get("fit") == 1
    assert runs.second.summary.computed == {}
    untracked = tracked_benchmark(runs.root, None)  # same benchmark, no trackers, same cache
    plain = run_benchmark(untracked, runs.root)
    assert plain.summary.computed == {}, "a tracker setting entered a stage key"
    manifest = json.loads((runs.results / "manifest.json").read_text(encoding="utf-8"))
    assert "trackers" not in manifest["config"]


# --------------------------------------------------------------------------- MLflow


@pytest.fixture(scope="module")
def mlflow_runs(runs):
    if "mlflow" not in AVAILABLE:
        pytest.skip("mlflow is not installed (pip install 'hyperfit-harness[mlflow]')")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(runs.root / "results" / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("tracked")
    assert experiment is not None, "the experiment is named after the benchmark"
    found = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    assert len(found) == 2
    return client, found


def test_mlflow_run_has_the_curves_scores_manifest_and_samples(runs, mlflow_runs):
    client, found = mlflow_runs
    for run in found:  # the live curve (first run) and the stored one (second run) read back alike
        assert run.info.status == "FINISHED"
        assert run.info.run_name == "tracked"
        for column in CURVE_COLUMNS:
            history = client.get_metric_history(run.info.run_id, f"curve/tiny__fit/{column}")
            assert_curve(sorted((m.step, m.value) for m in history), curve_column(runs.results, column), column)
        scores = {k: v for k, v in run.data.metrics.items() if k.startswith("score/")}
        assert scores == pytest.approx(flat_scores(runs.results))
    run_id = found[0].info.run_id
    manifest = json.loads((runs.results / "manifest.json").read_text(encoding="utf-8"))
    stored = json.loads(Path(client.download_artifacts(run_id, "manifest.json", str(runs.root / "dl"))).read_text())
    assert stored["stage_keys"] == manifest["stage_keys"]
    assert found[0].data.params["config.recipes.fit.lr"] == "0.003"
    table = json.loads(Path(client.download_artifacts(run_id, "samples/tiny__fit__greedy.json", str(runs.root / "dl"))).read_text())
    assert table["columns"] == ["prompt_id", "dataset", "context", "output", "reference"]
    generations = [json.loads(line) for line in (runs.results / "cells/tiny__fit__greedy/generations.jsonl").read_text().splitlines()]
    first_of = {}
    for g in generations:
        first_of.setdefault(g["dataset"], []).append(g)
    expected = [[g["prompt_id"], g["dataset"], g["context_text"], g["output_text"], g["reference_text"]]
                for rows in first_of.values() for g in rows[:2]]  # fmt: skip
    assert table["data"] == expected


# --------------------------------------------------------------------------- W&B


def test_wandb_offline_run_has_the_curves_scores_manifest_and_samples(runs):
    if "wandb" not in AVAILABLE:
        pytest.skip("wandb is not installed (pip install 'hyperfit-harness[wandb]')")
    run_dirs = wandb_run_dirs(runs.root / "results")
    assert len(run_dirs) == 2, run_dirs
    expected_curve = {c: curve_column(runs.results, c) for c in CURVE_COLUMNS}
    for run_dir in run_dirs:
        records, summary = read_wandb(run_dir)
        assert summary["state"] == "finished" and summary["name"] == "tracked" and summary["project"] == "tracked"
        assert not summary.get("entity"), "an offline run never signs in"
        history = wandb_history(records)
        for column, expected in expected_curve.items():
            got = [(row["curve/tiny__fit/step"], row[f"curve/tiny__fit/{column}"]) for row in history
                   if f"curve/tiny__fit/{column}" in row]  # fmt: skip
            assert_curve(got, expected, column)
        axes = {m.get("glob_name"): m.get("step_metric") for m in (r["metric"] for r in records if r.get("type") == "metric")}
        assert axes["curve/tiny__fit/*"] == "curve/tiny__fit/step", "the curve is drawn over its training step"
        scores = {k: v for k, v in summary["summary"].items() if k.startswith("score/")}
        assert scores == pytest.approx(flat_scores(runs.results))
        assert summary["config"]["manifest"]["benchmark"] == "tracked"
        assert summary["config"]["manifest"]["config"]["recipes"]["fit"]["lr"] == 0.003
        tables = sorted((run_dir / "files" / "media" / "table" / "samples").glob("*.table.json"))
        assert len(tables) == len(CELLS) and all(any(p.name.startswith(c + "_") for p in tables) for c in CELLS)
        table = json.loads(tables[0].read_text(encoding="utf-8"))
        assert table["columns"] == ["prompt_id", "dataset", "context", "output", "reference"]
        assert len(table["data"]) == 4  # 2 per eval dataset


# --------------------------------------------------------------------------- TensorBoard


def test_tensorboard_event_files_have_the_curves_scores_manifest_and_samples(runs):
    if "tensorboard" not in AVAILABLE:
        pytest.skip("tensorboard is not installed (pip install 'hyperfit-harness[tensorboard]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folders = sorted((runs.root / "results" / "tensorboard" / "tracked").iterdir())
    assert len(folders) == 2, "each run writes its own folder"
    expected_scores = flat_scores(runs.results)
    for folder in folders:
        events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
        events.Reload()
        for column in CURVE_COLUMNS:
            got = [(e.step, e.value) for e in events.Scalars(f"curve/tiny__fit/{column}")]
            assert_curve(got, curve_column(runs.results, column), column, rel=1e-6)  # stored as float32
        scores = {tag: events.Scalars(tag)[0].value for tag in events.Tags()["scalars"] if tag.startswith("score/")}
        assert scores == pytest.approx(expected_scores, rel=1e-6)
        manifest = events.Tensors("manifest/text_summary")[0].tensor_proto.string_val[0].decode()
        assert '"benchmark": "tracked"' in manifest
        samples = events.Tensors("samples/tiny__fit__greedy/text_summary")[0].tensor_proto.string_val[0].decode()
        lines = samples.splitlines()
        assert lines[0] == "| prompt_id | dataset | context | output | reference |"
        assert len(lines) == 2 + 4  # header, rule, 2 rows per eval dataset
