"""An image benchmark end to end on a tiny random-init ImageGPT: leaderboard rows, pictures, warm rerun."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from harness.cli import main

from imagekit import write_bench

METRICS = {
    "row-repetition": {"plugin": "row-repetition"},
    "ttr": {"plugin": "ttr", "window": 48},
    "distinct-clusters": {"plugin": "distinct-clusters"},
    "entropy": {"plugin": "entropy"},
    "pixel-mse": {"plugin": "pixel-mse"},
    "psnr": {"plugin": "psnr"},
    "completion-diversity": {"plugin": "completion-diversity"},
    "recognisability": {"plugin": "recognisability"},
}


def test_image_benchmark_runs_and_draws_its_grid(tmp_path: Path):
    path = write_bench(tmp_path, metrics=METRICS)
    results = tmp_path / "results"
    run = CliRunner().invoke(main, ["run", str(path), "--results", str(results), "--cache", str(tmp_path / "cache")])
    assert run.exit_code == 0, run.output
    folder = results / "img"
    board = (folder / "leaderboard.md").read_text()
    for name in METRICS:
        assert name in board
    assert "| igpt | fit | blocked |" in board and "| igpt | base | greedy |" in board
    assert "![digits completions](pictures/digits.png)" in board
    assert (folder / "pictures" / "digits.png").read_bytes()[:4] == b"\x89PNG"
    record = json.loads((folder / "cells" / "igpt__fit__greedy" / "generations.jsonl").read_text().splitlines()[0])
    assert record["image_shape"] == [8, 8] and record["label"] in "0123456789"
    assert len(record["context_ids"]) == 17 and len(record["output_ids"]) == 48
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["config"]["eval"]["context_fraction"] == 0.25
    before = (folder / "scores.csv").read_text()
    again = CliRunner().invoke(main, ["run", str(path), "--results", str(results), "--cache", str(tmp_path / "cache")])
    assert again.exit_code == 0, again.output
    assert (folder / "scores.csv").read_text() == before
    assert "generate 0 run" in again.output.replace("\n", " ")
