"""When the runner calls the trackers (curves live while fitting, the rest once the results folder is written),
what a failing tracker costs (a warning, never the results), and who calls them (the main process only)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tracker_helpers import BrokenTracker, FakeTracker, read_curve, read_scores, tracked_benchmark
from harness import trackers as trackers_module
from harness.generating import Generator
from harness.run_record import ScoreRow
from harness.testing import load_registry, load_test_benchmark, run_benchmark, TinyLlamaLoader
from harness.trackers import RunTrackers, curve_values, sample_rows, score_name


@pytest.fixture(autouse=True)
def fakes(monkeypatch):
    """Both fakes registered as trackers (config accepts their names), their records emptied."""
    monkeypatch.setitem(trackers_module.TRACKERS, "fake", FakeTracker)
    monkeypatch.setitem(trackers_module.TRACKERS, "broken", BrokenTracker)
    FakeTracker.events.clear()
    BrokenTracker.events.clear()


@pytest.fixture
def marked_generation(monkeypatch):
    """Generation start is recorded among the fake tracker's events: what came before it came while fitting."""
    real = Generator.generate

    def generate(self, plan):
        FakeTracker.events.append(("generate", plan.cell.id))
        return real(self, plan)

    monkeypatch.setattr(Generator, "generate", generate)


def test_curves_go_out_while_fitting_and_the_rest_at_record_time(tmp_path, marked_generation):
    run = run_benchmark(tracked_benchmark(tmp_path, {"fake": {}}), tmp_path)
    assert FakeTracker.kinds() == ["start", "curve", "generate", "scores", "manifest", "samples", "finish"]
    curve = [payload for kind, payload in FakeTracker.events if kind == "curve"]
    assert [model_recipe for *model_recipe, _ in curve] == [["tiny", "fit"]] * len(read_curve(run.results_dir))
    assert [row["step"] for *_, row in curve] == [int(r["step"]) for r in read_curve(run.results_dir)]
    [(_, info)] = [e for e in FakeTracker.events if e[0] == "start"]
    assert (info.benchmark, info.run_name, info.results_dir) == ("tracked", "tracked", run.results_dir)
    [(_, rows)] = [e for e in FakeTracker.events if e[0] == "scores"]
    assert {score_name(r): r.value for r in rows} == {
        f"score/{r['model']}__{r['recipe']}__{r['decoder']}/{r['dataset']}/{r['metric']}": float(r["value"])
        for r in read_scores(run.results_dir)}  # fmt: skip
    [(_, manifest)] = [e for e in FakeTracker.events if e[0] == "manifest"]
    assert manifest == json.loads((run.results_dir / "manifest.json").read_text(encoding="utf-8"))
    samples = dict(payload for kind, payload in FakeTracker.events if kind == "samples")
    assert sorted(samples) == ["tiny__base__greedy", "tiny__fit__greedy"]
    assert [(r["dataset"]) for r in samples["tiny__fit__greedy"]] == ["train-set"] * 2 + ["other-set"] * 2
    assert FakeTracker.events[-1] == ("finish", True)


def test_a_fit_reused_from_the_cache_logs_its_stored_curve_at_record_time(tmp_path, marked_generation):
    run_benchmark(tracked_benchmark(tmp_path, None), tmp_path)  # trains and stores the fit, no trackers
    FakeTracker.events.clear()
    run = run_benchmark(tracked_benchmark(tmp_path, {"fake": {}}), tmp_path)
    assert run.summary.computed == {}
    assert FakeTracker.kinds() == ["start", "generate", "curve", "scores", "manifest", "samples", "finish"]
    rows = [row for kind, (*_, row) in ((k, p) for k, p in FakeTracker.events if k == "curve")]
    stored = read_curve(run.results_dir)
    assert [r["step"] for r in rows] == [int(r["step"]) for r in stored]
    assert [r.get("train_loss") for r in rows] == [float(r["train_loss"]) if r["train_loss"] else None for r in stored]


def test_a_failing_tracker_warns_once_and_costs_nothing_else(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    reference = run_benchmark(tracked_benchmark(tmp_path / "plain", None), tmp_path / "plain")
    run = run_benchmark(tracked_benchmark(tmp_path, {"broken": {}, "fake": {}}), tmp_path)
    err = capsys.readouterr().err
    assert err.count("warning: tracker broken failed") == 1, err
    assert "whileloggingthecurveoftiny/fit(RuntimeError:curvebrokeonpurpose)" in "".join(err.split())
    assert BrokenTracker.kinds() == ["start", "finish"], "switched off (its run closed) at its first failure"
    assert BrokenTracker.events[-1] == ("finish", False)
    assert FakeTracker.kinds() == ["start", "curve", "scores", "manifest", "samples", "finish"]
    assert read_scores(run.results_dir) == read_scores(reference.results_dir)
    assert (run.results_dir / "leaderboard.md").is_file()


@pytest.mark.parametrize("where", ["scores", "manifest", "samples", "finish"])
def test_a_tracker_failing_at_any_other_moment_is_dropped_too(tmp_path, capsys, where):
    (tmp_path / "manifest.json").write_text('{"benchmark": "b"}', encoding="utf-8")
    cell = SimpleNamespace(id="m__r__d")
    record = SimpleNamespace(recipes=[], scores=[ScoreRow("m", "r", "d", "wiki", "ttr", 0.5, 0.4, 0.6, 3)],
                             generations=[(cell, [{"prompt_id": "1", "dataset": "wiki", "output_text": "o"}])])  # fmt: skip
    run = RunTrackers([BrokenTracker({"fail_on": where}, tmp_path), FakeTracker({}, tmp_path)], tmp_path)
    run.record(record)
    err = capsys.readouterr().err
    assert err.count("warning: tracker broken failed") == 1 and f"{where} broke on purpose" in err
    assert FakeTracker.kinds() == ["scores", "manifest", "samples", "finish"]
    assert FakeTracker.events[1] == ("manifest", {"benchmark": "b"}) and run.active == []
    assert BrokenTracker.kinds()[-1] == ("samples" if where == "finish" else "finish")  # a failing finish is reported like the rest


def test_a_tracker_that_cannot_start_is_off_from_the_start(tmp_path, capsys):
    bench = load_test_benchmark(tracked_benchmark(tmp_path, {"broken": {"fail_on": "start"}, "fake": {}}), tmp_path,
                                load_registry(extra=(TinyLlamaLoader,)))  # fmt: skip
    opened = RunTrackers.open(bench, tmp_path / "results" / "tracked")
    assert [t.name for t in opened.active] == ["fake"]
    assert "warning: tracker broken failed while starting (RuntimeError: start broke on purpose)" in capsys.readouterr().err
    opened.finish()


def test_only_the_main_process_of_a_launch_opens_trackers(tmp_path, monkeypatch):
    bench = load_test_benchmark(tracked_benchmark(tmp_path, {"fake": {}}), tmp_path,
                                load_registry(extra=(TinyLlamaLoader,)))  # fmt: skip
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    helper = RunTrackers.open(bench, tmp_path / "results" / "tracked")
    helper.log_curve("tiny", "fit", {"step": 1, "train_loss": 1.0})
    helper.finish()
    assert FakeTracker.events == [] and helper.active == []
    monkeypatch.setenv("RANK", "0")
    main = RunTrackers.open(bench, tmp_path / "results" / "tracked")
    main.log_curve("tiny", "fit", {"step": 1, "train_loss": 1.0})
    main.finish()
    assert FakeTracker.kinds() == ["start", "curve", "finish"]


def test_a_run_that_dies_before_recording_marks_its_tracker_runs_failed(tmp_path):
    bench = load_test_benchmark(tracked_benchmark(tmp_path, {"fake": {}}), tmp_path,
                                load_registry(extra=(TinyLlamaLoader,)))  # fmt: skip
    opened = RunTrackers.open(bench, tmp_path / "results" / "tracked")
    opened._abandon()  # what the exit handler does when the record phase was never reached
    opened._abandon()
    opened.finish()
    assert FakeTracker.events[1:] == [("finish", False)]


def test_rows_as_the_trackers_get_them():
    assert curve_values({"step": 3, "epoch": 1, "train_loss": 0.5, "note": "x", "flag": True}) == {
        "step": 3, "epoch": 1.0, "train_loss": 0.5}  # fmt: skip
    records = [{"prompt_id": f"{d}/{i}", "dataset": d, "context_text": "c", "output_text": "o", "reference_text": "r"}
               for d in ("a", "b") for i in range(4)]  # fmt: skip
    rows = sample_rows(records, 2)
    assert [r["prompt_id"] for r in rows] == ["a/0", "a/1", "b/0", "b/1"]
    assert rows[0] == {"prompt_id": "a/0", "dataset": "a", "context": "c", "output": "o", "reference": "r"}
    row = ScoreRow("m", "r", "d", "wiki", "ttr", 0.5, 0.4, 0.6, 3)
    assert score_name(row) == "score/m__r__d/wiki/ttr"

