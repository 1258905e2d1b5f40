"""Judgements of a real run's continuations reach scores.csv and the leaderboard through `harness run`."""

from __future__ import annotations

from annotate_helpers import expected_outcome, lines

from harness.annotate import REFERENCE, Session
from harness.testing import run_benchmark, tiny_benchmark


def test_human_metrics_in_a_benchmark(tmp_path):
    bench = tiny_benchmark(tmp_path, name="human", recipes={"base": {"plugin": "none"}})
    bench["eval"].update(datasets=["other-set"], contexts=4)
    bench["metrics"] = {"ttr": {"plugin": "ttr", "window": 16}}
    first = run_benchmark(bench, tmp_path)
    results = first.results_dir
    cells = sorted(p.name for p in (results / "cells").iterdir())
    assert cells == ["tiny__base__greedy", "tiny__base__top-p"]
    for annotator, page in (("ann", ["a", "b", "tie", "a"]), ("ben", ["a", "a", "tie", "b"])):
        for cell in cells:
            session = Session(results, cell, REFERENCE, annotator)
            for item, verdict in zip(session.items, page):
                session.judge(item.id, verdict)
    folder = str(results / "annotations")
    bench["metrics"] = {
        "ttr": {"plugin": "ttr", "window": 16},
        "human": {"plugin": "human-preference", "annotations": folder},
        "kappa": {"plugin": "human-agreement", "annotations": folder},
    }
    second = run_benchmark(bench, tmp_path)
    for cell in cells:
        model, recipe, decoder = cell.split("__")
        per_item: dict[str, list[float]] = {}
        for annotator in ("ann", "ben"):
            for event in lines(results / "annotations" / f"{annotator}.jsonl"):
                if cell in (event["a"], event["b"]):
                    per_item.setdefault(event["item"], []).append(float(expected_outcome(event, cell) != "worse"))
        expected = sum(100 * sum(v) / len(v) for v in per_item.values()) / len(per_item)
        assert abs(second.value("human", decoder=decoder) - expected) < 1e-9
        row = next(r for r in second.rows if r["metric"] == "human" and r["decoder"] == decoder)
        assert row["n"] == "4" and row["interval"] in ("normal", "point")
        kappa = next(r for r in second.rows if r["metric"] == "kappa" and r["decoder"] == decoder)
        assert float(kappa["ci_low"]) <= float(kappa["value"]) <= float(kappa["ci_high"])
        assert "4 items judged by two or more annotators" in kappa["warning"]
    board = (results / "leaderboard.md").read_text(encoding="utf-8")
    assert "| ttr ↑ | human ↑ | kappa | n |" in board  # kappa is descriptive: no arrow, never bold
    assert "† kappa over 4 items judged by two or more annotators (of 4 continuations)" in board
