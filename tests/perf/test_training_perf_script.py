"""benchmarks/perf/training.py keeps working: a one-round run on the tiny model gives sane numbers."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "perf" / "training.py"


def test_training_perf_script_on_the_tiny_model(tmp_path: Path):
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("training_perf", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "training.json"
    result = module.main(["--model", "tiny", "--updates", "1", "--repeats", "1", "--tokens", "16",
                          "--no-memory", "--out", str(out)])  # fmt: skip
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["tokens_per_second"]["ours"] > 0 and result["tokens_per_second"]["plain"] > 0
    assert result["ratio_ours_over_plain"] == pytest.approx(
        result["tokens_per_second"]["ours"] / result["tokens_per_second"]["plain"]
    )
    assert result["precision_ours"] == "fp32" and result["parameters"] > 0
