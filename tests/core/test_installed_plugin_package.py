"""A plugin shipped in its own pip-installed package is discovered through its entry point and runs."""

from __future__ import annotations

import csv
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, TINY_PLUGINS, tiny_benchmark, write_yaml
from harness.cli import main

PACKAGE = FIXTURES / "ext_plugin_pkg"


@pytest.fixture
def installed_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(PACKAGE)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    monkeypatch.syspath_prepend(str(target))
    importlib.invalidate_caches()
    yield target
    sys.modules.pop("harness_ext_demo", None)


def run_cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_pip_installed_plugin_is_listed_and_usable_from_yaml(installed_package: Path, tmp_path: Path, capsys) -> None:
    assert run_cli(["plugins", "--json"]) == 0

    listing = json.loads(capsys.readouterr().out)
    entry = next(p for p in listing["plugins"] if p["name"] == "ends-sentence")
    assert entry["kind"] == "metric"
    assert (entry["distribution"], entry["distribution_version"]) == ("harness-ext-demo", "0.2.0")

    bench = tiny_benchmark(tmp_path, name="ext")
    bench["metrics"] = {"ends": {"plugin": "ends-sentence", "marks": "."}}
    bench["recipes"] = {"base": {"plugin": "none"}}
    bench["decoders"] = {"greedy": {"plugin": "greedy"}}
    path = write_yaml(tmp_path / "ext.yaml", bench)
    assert run_cli(["--plugins", str(TINY_PLUGINS), "run", str(path), "--results", str(tmp_path / "results"), "--quiet"]) == 0
    rows = list(csv.DictReader((tmp_path / "results" / "ext" / "scores.csv").open()))
    assert {r["metric"] for r in rows} == {"ends"}
    assert all(0.0 <= float(r["value"]) <= 1.0 for r in rows)
