"""An image benchmark end to end on a tiny random-init ImageGPT: leaderboard rows, pictures, warm rerun."""

from __future__ import annotations

import json
from pathlib import Path

from imagekit import run_cli, write_bench

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


def test_image_benchmark_runs_and_draws_its_grid(tmp_path: Path, capsys):
    path = write_bench(tmp_path, metrics=METRICS)
    results = tmp_path / "results"
    args = ["run", str(path), "--results", str(results), "--cache", str(tmp_path / "cache")]
    code, output = run_cli(args, capsys)
    assert code == 0, output
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
    code, output = run_cli(args, capsys)
    assert code == 0, output
    assert (folder / "scores.csv").read_text() == before
    assert "generate 0 run" in output.replace("\n", " ")


def test_image_training_sequences_must_be_whole_images(tmp_path: Path, capsys):
    recipes = {"fit": {"plugin": "hyperfit", "train": {"dataset": "digits", "samples": 8, "tokens": 40}, "epochs": 1,
                       "batch_size": 4, "curve_every": 0}}  # fmt: skip
    path = write_bench(tmp_path, recipes=recipes, matrix=[{"recipe": "fit", "decoder": "greedy"}])
    code, output = run_cli(["run", str(path), "--results", str(tmp_path / "r"), "--cache", str(tmp_path / "c")], capsys)
    assert code == 2, output
    assert "recipes.fit.train.tokens: 40" in output and "set it to 65" in output
    assert "Traceback" not in output
