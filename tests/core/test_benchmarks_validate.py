"""Every committed benchmark in benchmarks/ passes `harness validate` (the perf/ scripts are not benchmarks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main

BENCHMARKS = sorted((Path(__file__).resolve().parents[2] / "benchmarks").glob("*.yaml"))


def test_there_are_benchmarks() -> None:
    assert any(p.name == "quickstart.yaml" for p in BENCHMARKS)


@pytest.mark.parametrize("path", BENCHMARKS, ids=[p.name for p in BENCHMARKS])
def test_benchmark_validates(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        main(["validate", str(path)])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    assert code == 0, f"harness validate {path.name} failed:\n{out}{err}"
    assert f"{path}: ok" in out
