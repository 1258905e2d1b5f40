"""Helpers for the tracker tests: a small tracked benchmark, a W&B offline-run reader, a recording fake tracker."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import pytest
import torch  # noqa: F401 -- imported before any test runs, so the suite's one-torch-thread fixture applies to the runs

from harness.params import Param
from harness.testing import tiny_benchmark


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def tracked_benchmark(root: Path, trackers: Any, name: str = "tracked") -> dict[str, Any]:
    """The tiny benchmark cut to its smallest useful size (one decoder, one metric, 3 contexts) with trackers."""
    bench = tiny_benchmark(root, name=name, decoders={"greedy": {"plugin": "greedy"}},
                           metrics={"ttr": {"plugin": "ttr", "window": 16}})  # fmt: skip
    bench["eval"]["contexts"] = 3
    if trackers is not None:
        bench["trackers"] = trackers
    return bench


def wandb_env(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """W&B keeps settings, a cache and artifact staging under the home folder by default: keep them in ``root``."""
    for var, sub in (("WANDB_DATA_DIR", "wandb-data"), ("WANDB_CACHE_DIR", "wandb-cache"),
                     ("WANDB_CONFIG_DIR", "wandb-config")):  # fmt: skip
        monkeypatch.setenv(var, str(root / sub))
    monkeypatch.delenv("WANDB_MODE", raising=False)


def read_scores(results: Path) -> list[dict[str, str]]:
    with (results / "scores.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_curve(results: Path, fit: str = "tiny__fit") -> list[dict[str, str]]:
    with (results / "recipes" / fit / "curves.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def flat_scores(results: Path) -> dict[str, float]:
    """scores.csv as the trackers name them: score/<cell>/<dataset>/<metric> → value."""
    return {f"score/{r['model']}__{r['recipe']}__{r['decoder']}/{r['dataset']}/{r['metric']}": float(r["value"])
            for r in read_scores(results)}  # fmt: skip


def curve_column(results: Path, column: str, fit: str = "tiny__fit") -> list[tuple[int, float]]:
    """One curves.csv column as (step, value), rows without a value left out (as the trackers leave them)."""
    return [(int(r["step"]), float(r[column])) for r in read_curve(results, fit) if r.get(column)]


def wandb_run_dirs(folder: Path) -> list[Path]:
    return sorted((folder / "wandb").glob("offline-run-*"))


def read_wandb(run_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A W&B offline run read back by W&B's own reader of its .wandb log (``wandb leet inspect``): every record,
    and the summary object (state, config, summary)."""

    def inspect(*flags: str) -> str:
        done = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", *flags, str(run_dir)],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        if done.returncode != 0 and "No such command" in done.stderr:
            pytest.skip("this wandb has no `wandb leet inspect` (wandb >= 0.29 reads its .wandb logs)")
        assert done.returncode == 0, done.stderr
        return done.stdout

    records = [json.loads(line) for line in inspect("--json").splitlines() if line.strip()]
    return records, json.loads(inspect("--summary", "--json"))


def wandb_history(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [r["history"]["item"] for r in records if r.get("type") == "history"]


class FakeTracker:
    """A tracker that needs no package and records every call in its class's ``events``; ``fail_on`` names a
    method that raises."""

    name: ClassVar[str] = "fake"
    module: ClassVar[str] = "json"
    env_defaults: ClassVar[dict[str, str]] = {}
    params: ClassVar[tuple[Param, ...]] = (Param("samples", int, default=2, min=0),
                                           Param("fail_on", str, default=None))  # fmt: skip
    events: ClassVar[list[tuple[str, Any]]] = []

    def __init__(self, options: Mapping[str, Any], results_dir: Path):
        self.samples = options.get("samples", 2)
        self.fail_on = options.get("fail_on")
        self.results_dir = results_dir

    def _event(self, kind: str, payload: Any = None) -> None:
        if kind == self.fail_on:
            raise RuntimeError(f"{kind} broke on purpose")
        type(self).events.append((kind, payload))

    @classmethod
    def kinds(cls) -> list[str]:
        """The recorded calls' names, in order, repeats collapsed (curve, curve, curve → curve)."""
        out: list[str] = []
        for kind, _ in cls.events:
            if not out or out[-1] != kind:
                out.append(kind)
        return out

    def start(self, info: Any) -> None:
        self._event("start", info)

    def log_curve(self, model: str, recipe: str, row: Mapping[str, float]) -> None:
        self._event("curve", (model, recipe, dict(row)))

    def log_scores(self, rows: Sequence[Any]) -> None:
        self._event("scores", list(rows))

    def log_manifest(self, manifest: Mapping[str, Any]) -> None:
        self._event("manifest", dict(manifest))

    def log_samples(self, cell: str, rows: Sequence[Mapping[str, str]]) -> None:
        self._event("samples", (cell, list(rows)))

    def finish(self, ok: bool = True) -> None:
        self._event("finish", ok)

    def location(self) -> str:
        return "nowhere (a fake)"


class BrokenTracker(FakeTracker):
    """A second fake, with its own record, that fails at ``fail_on`` (default: the first curve row)."""

    name: ClassVar[str] = "broken"
    params: ClassVar[tuple[Param, ...]] = (Param("samples", int, default=2, min=0),
                                           Param("fail_on", str, default="curve"))  # fmt: skip
    events: ClassVar[list[tuple[str, Any]]] = []

    def __init__(self, options: Mapping[str, Any], results_dir: Path):
        super().__init__(options, results_dir)
        self.fail_on = options.get("fail_on", "curve")
