"""examples/harness-plugin-example, pip-installed on its own, shows up in `harness plugins`, runs from YAML,
and passes its own tests."""

from __future__ import annotations

import csv
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.testing import run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "harness-plugin-example"
NAMES = {"example-char-llama", "example-counting", "example-sgd", "example-no-repeat-greedy", "example-word-repeats"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a copy of the example's source tree, the folder it was pip-installed into); no network."""
    root = tmp_path_factory.mktemp("example")
    source = root / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache"))
    target = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return source, target


@pytest.fixture
def on_path(installed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(installed[1]))
    importlib.invalidate_caches()
    yield installed[0]
    for name in [m for m in sys.modules if m == "harness_plugin_example" or m.startswith("harness_plugin_example.")]:
        sys.modules.pop(name)


def test_installed_example_is_listed_and_runs_from_yaml(on_path: Path, tmp_path: Path) -> None:
    code, out = run_cli(["plugins", "--json"])
    assert code == 0, out
    listing = {p["name"]: p for p in json.loads(out)["plugins"]}
    assert NAMES <= set(listing)
    assert {(listing[n]["distribution"], listing[n]["distribution_version"]) for n in NAMES} == {
        ("harness-plugin-example", "0.1.0")
    }
    bench = on_path / "benchmarks" / "example.yaml"
    code, out = run_cli(["validate", str(bench)])
    assert code == 0 and "ok — 4 cells × 1 eval datasets × 2 metrics" in out, out
    code, out = run_cli(["run", str(bench), "--results", str(tmp_path / "results"), "--quiet", "--device", "cpu"])
    assert code == 0, out
    rows = list(csv.DictReader((tmp_path / "results" / "plugin-example" / "scores.csv").open(encoding="utf-8")))
    assert {r["metric"] for r in rows} == {"repeats", "ttr"} and len(rows) == 8
    assert {r["decoder"] for r in rows} == {"greedy", "no-repeat"} and {r["recipe"] for r in rows} == {"base", "sgd"}


def test_without_the_package_its_plugins_are_unknown(tmp_path: Path) -> None:
    code, out = run_cli(["validate", str(EXAMPLE / "benchmarks" / "example.yaml")])
    assert code == 2 and 'unknown model loader "example-char-llama"' in out


def test_the_example_passes_its_own_tests(installed: tuple[Path, Path], tmp_path: Path) -> None:
    source, target = installed
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")])))
    env["HARNESS_CACHE"] = str(tmp_path / "cache")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=source, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
