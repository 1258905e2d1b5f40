"""Write the results directory (the contract in the README): small, committable, reproducible files.

    results/<benchmark>/
      manifest.json   scores.csv   leaderboard.md
      cells/<model>__<recipe>__<decoder>/generations.jsonl
      recipes/<model>__<recipe>/train_samples.jsonl, curves.csv, curves.png
      pictures/<dataset>.png   image models only: a grid of originals and every cell's completions
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
from dataclasses import astuple, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from harness import __version__
from harness.api import OPTIONAL_SAMPLE_FIELDS, SAMPLE_FIELDS
from harness.curve_plot import plot_curves
from harness.manifest import git_state, hardware, package_versions
from harness.sampling import TrainSample
from harness.store import atomic_write_bytes, atomic_write_json, atomic_write_jsonl, atomic_write_text

if TYPE_CHECKING:  # pragma: no cover
    from harness.config import Benchmark, Cell
    from harness.runner import Runner, RunSummary


@dataclass(frozen=True)
class ScoreRow:
    model: str
    recipe: str
    decoder: str
    dataset: str
    metric: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    #: how the interval was made: normal (mean ± 1.96·stderr), bootstrap (over prompts), seeds (range over the
    #: metric's own seeds, small samples) or point (no interval)
    interval: str = ""
    #: a sentence the reader must see with the value (small sample); the leaderboard marks the value with †
    warning: str = ""


SCORE_HEADER = [f.name for f in fields(ScoreRow)]


@dataclass(frozen=True)
class SpreadRow:
    """A metric computed separately on each sampling draw (seed spread, reported apart from the CI)."""

    model: str
    recipe: str
    decoder: str
    dataset: str
    metric: str
    values: list[float]

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def sd(self) -> float:
        m = self.mean
        return (sum((v - m) ** 2 for v in self.values) / (len(self.values) - 1)) ** 0.5


def seed_spread_csv(rows: Sequence[SpreadRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["model", "recipe", "decoder", "dataset", "metric", "draws", "mean", "sd", "values"])
    for r in rows:
        values = " ".join(repr(v) for v in r.values)
        writer.writerow([r.model, r.recipe, r.decoder, r.dataset, r.metric, len(r.values), repr(r.mean), repr(r.sd), values])
    return out.getvalue()


def seed_spread_markdown(rows: Sequence[SpreadRow]) -> str:
    lines = [
        "## Seed spread",
        "",
        "Sampling decoders with several draws per context: each metric computed on each draw's continuations;",
        "mean ± sample standard deviation over draws (separate from the intervals above, which resample prompts).",
        "",
        "| model | recipe | decoder | dataset | metric | draws | mean ± sd |",
        "|---|---|---|---|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.recipe} | {r.decoder} | {r.dataset} | {r.metric} | {len(r.values)} | {r.mean:.3f} ± {r.sd:.3f} |"
        )
    return "\n".join(lines) + "\n"


def scores_csv(rows: Sequence[ScoreRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SCORE_HEADER)
    for row in rows:
        writer.writerow([repr(v) if isinstance(v, float) else v for v in astuple(row)])
    return out.getvalue()


def metrics_info(bench: "Benchmark") -> dict[str, dict[str, Any]]:
    info = {}
    for key, comp in bench.metrics.items():
        cls = comp.registration.cls
        info[key] = {
            "plugin": comp.plugin,
            "version": cls.version,
            "higher_is_better": cls.higher_is_better,
            "level": cls.level,
            "definition": cls.definition,
            "params": comp.params,
        }
    return info


class ResultsWriter:
    """Collects a run's result files and writes them only when every stage has finished.

    Until then the results folder keeps the previous run's complete set (a failed or interrupted run
    never leaves new generations beside old scores); the stage cache holds the finished work.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.cells: set[str] = set()
        self.recipes: set[str] = set()
        self._pending: list[Callable[[], None]] = []
        self._image_cells: dict[str, tuple[str, list[dict[str, Any]]]] = {}  # cell id → (model, records)

    def write_train_samples(
        self, model: str, recipe: str, samples: Sequence[TrainSample], filename: str = "train_samples.jsonl"
    ) -> None:
        """The sequences a recipe trained on (or, with another filename, held out for its curve)."""
        folder = self.root / "recipes" / f"{model}__{recipe}"
        self.recipes.add(folder.name)
        rows = [s.to_json() for s in samples]
        self._pending.append(lambda: atomic_write_jsonl(folder / filename, rows))

    def write_curves(self, model: str, recipe: str, curves: list[dict[str, float]]) -> None:
        self._pending.append(lambda: self._write_curves(model, recipe, curves))

    def _write_curves(self, model: str, recipe: str, curves: list[dict[str, float]]) -> None:
        folder = self.root / "recipes" / f"{model}__{recipe}"
        self.recipes.add(folder.name)
        columns: list[str] = []
        for row in curves:
            columns.extend(k for k in row if k not in columns)
        first = ("step", "epoch", "train_loss", "heldout_loss", "heldout_entropy", "greedy_ttr")  # the rest: as logged
        columns = [c for c in first if c in columns] + [c for c in columns if c not in first]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(curves)
        atomic_write_text(folder / "curves.csv", out.getvalue())
        png = plot_curves(curves, title=f"{model} / {recipe}")
        if png is not None:
            atomic_write_bytes(folder / "curves.png", png)

    def write_generations(self, cell: "Cell", records: list[dict[str, Any]]) -> None:
        folder = self.root / "cells" / cell.id
        self.cells.add(cell.id)
        fields = SAMPLE_FIELDS + OPTIONAL_SAMPLE_FIELDS
        ordered = [{k: r[k] for k in fields if k in r} | r for r in records]  # same bytes cached or not
        if any(r.get("image_shape") for r in records):
            self._image_cells[cell.id] = (cell.model, ordered)
        self._pending.append(lambda: atomic_write_jsonl(folder / "generations.jsonl", ordered))

    def _prune(self) -> None:
        """Drop cell/recipe folders of an earlier config: the results dir shows this run only."""
        for sub, keep in (("cells", self.cells), ("recipes", self.recipes)):
            folder = self.root / sub
            if folder.is_dir():
                for child in folder.iterdir():
                    if child.is_dir() and child.name not in keep:
                        shutil.rmtree(child)

    def finish(self, bench: "Benchmark", runner: "Runner", summary: "RunSummary") -> None:
        from harness.leaderboard import build_table, load_results, render_markdown

        for write in self._pending:
            write()
        self._pending.clear()
        self._prune()
        info = metrics_info(bench)
        manifest = {
            "benchmark": bench.name,
            "benchmark_file": str(bench.path),
            "harness_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": sys.argv,
            "limit": runner.options.limit,
            "fresh": runner.options.fresh,
            "seed": bench.seed,
            "config": bench.resolved(),
            "metrics": info,
            "plugins": plugin_table(bench),
            "packages": package_versions(),
            "git": git_state(bench.path.resolve()),
            "hardware": hardware(runner.device_name or runner.options.device),
            "data": {key: {"sha256": runner._data_hash.get(key), "documents": len(runner._docs.get(key, []))} for key in bench.datasets},
            "models": runner._model_facts,
            "disjointness": runner.disjointness,
            "stage_keys": runner.stage_keys,
            "stages": {"computed": summary.computed, "reused": summary.reused},
            "timings_seconds": {k: round(v, 3) for k, v in summary.timings.items()},
            "cache_dir": str(runner.cache.root),
        }
        atomic_write_text(self.root / "scores.csv", scores_csv(summary.scores))
        atomic_write_json(self.root / "manifest.json", manifest)
        scores, loaded_info = load_results(self.root)
        board = render_markdown(build_table(scores, loaded_info), bench.name)
        spread_path = self.root / "seed_spread.csv"
        if runner.seed_spread:
            atomic_write_text(spread_path, seed_spread_csv(runner.seed_spread))
            board += "\n" + seed_spread_markdown(runner.seed_spread)
        else:
            spread_path.unlink(missing_ok=True)
        board += self._pictures(bench, runner)
        atomic_write_text(self.root / "leaderboard.md", board)

    def _pictures(self, bench: "Benchmark", runner: "Runner") -> str:
        """Image benchmarks: write the grids and return the leaderboard section linking them ("" otherwise)."""
        from harness.pictures import markdown_section, write_grids

        codecs = {cell: runner._codecs.get(model) for cell, (model, _) in self._image_cells.items()}
        cells = {cell: records for cell, (_, records) in self._image_cells.items() if codecs[cell] is not None}
        paths = write_grids(self.root, cells, codecs, bench.eval.datasets) if cells else []  # type: ignore[arg-type]
        if not paths:
            return ""
        return "\n" + markdown_section(paths)


def plugin_table(bench: "Benchmark") -> list[dict[str, Any]]:
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for section in (bench.models, bench.datasets, bench.recipes, bench.decoders, bench.metrics):
        for comp in section.values():
            reg = comp.registration
            seen[(reg.kind, reg.name)] = {
                "kind": reg.kind,
                "name": reg.name,
                "version": reg.cls.version,
                "plugin": reg.source.plugin,
                "distribution": reg.source.distribution,
                "distribution_version": reg.source.version,
            }
    return list(seen.values())
