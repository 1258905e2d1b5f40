"""Write the results directory (the contract in the README): small, committable, reproducible files.

    results/<benchmark>/
      manifest.json   scores.csv   leaderboard.md   [comparisons.csv: every cell vs each baseline]
      cells/<model>__<recipe>__<decoder>/generations.jsonl
      recipes/<model>__<recipe>/train_samples.jsonl, curves.csv, curves.png
      pictures/<dataset>.png   image models only: a grid of originals and every cell's completions
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
from dataclasses import astuple
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from harness import __version__
from harness.api import OPTIONAL_SAMPLE_FIELDS, SAMPLE_FIELDS
from harness.config import Benchmark
from harness.curve_plot import plot_curves
from harness.manifest import git_state, hardware, package_versions
from harness.paired import write_comparisons
from harness.run_record import SCORE_HEADER, RecipeOutput, RunRecord, ScoreRow, SpreadRow
from harness.store import atomic_write_bytes, atomic_write_json, atomic_write_jsonl, atomic_write_text


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


def metrics_info(bench: Benchmark) -> dict[str, dict[str, Any]]:
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


def write_results(root: Path, record: RunRecord) -> None:
    """Write the results folder of a finished run; the previous run's files stay until this one has finished.

    A failed or interrupted run never reaches here, so it never leaves new generations beside old scores
    (the stage cache holds its finished work).
    """
    root = Path(root)
    recipe_folders = {f"{r.model}__{r.recipe}" for r in record.recipes}
    for output in record.recipes:
        _write_recipe(root / "recipes" / f"{output.model}__{output.recipe}", output)
    image_cells: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for cell, records in record.generations:
        fields = SAMPLE_FIELDS + OPTIONAL_SAMPLE_FIELDS
        ordered = [{k: r[k] for k in fields if k in r} | r for r in records]  # same bytes cached or not
        if any(r.get("image_shape") for r in records):
            image_cells[cell.id] = (cell.model, ordered)
        atomic_write_jsonl(root / "cells" / cell.id / "generations.jsonl", ordered)
    _prune(root, {cell.id for cell, _ in record.generations}, recipe_folders)
    for path, data in sorted(record.artifacts.items()):  # what metrics keep beside their scores (probe tables, plots)
        atomic_write_bytes(root / path, data)
    atomic_write_text(root / "scores.csv", scores_csv(record.scores))
    atomic_write_json(root / "manifest.json", manifest(record))
    write_comparisons(root, record.comparisons)  # comparisons.csv: every cell vs each baseline (paired)
    board = _leaderboard(root, record.bench.name)
    spread_path = root / "seed_spread.csv"
    if record.seed_spread:
        atomic_write_text(spread_path, seed_spread_csv(record.seed_spread))
        board += "\n" + seed_spread_markdown(record.seed_spread)
    else:
        spread_path.unlink(missing_ok=True)
    board += _pictures(root, record, image_cells)
    atomic_write_text(root / "leaderboard.md", board)


def manifest(record: RunRecord) -> dict[str, Any]:
    bench = record.bench
    return {
        "benchmark": bench.name,
        "benchmark_file": str(bench.path),
        "harness_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "limit": record.limit,
        "fresh": record.fresh,
        "seed": bench.seed,
        "config": bench.resolved(),
        "metrics": metrics_info(bench),
        "plugins": plugin_table(bench),
        "packages": package_versions(bench.components()),
        "git": git_state(bench.path.resolve()),
        "hardware": hardware(record.device),
        "data": record.data,
        "models": record.models,
        "fits": record.fits,
        "disjointness": record.disjointness,
        "stage_keys": record.stage_keys,
        "stages": {"computed": record.computed, "reused": record.reused},
        "timings_seconds": {k: round(v, 3) for k, v in record.timings.items()},
        "cache_dir": record.cache_dir,
    }


def _write_recipe(folder: Path, output: RecipeOutput) -> None:
    """The sequences a recipe trained on, those held out for its curve, and the curve."""
    atomic_write_jsonl(folder / "train_samples.jsonl", [s.to_json() for s in output.train_samples])
    if output.heldout_samples:
        atomic_write_jsonl(folder / "heldout_samples.jsonl", [s.to_json() for s in output.heldout_samples])
    if output.curves:
        _write_curves(folder, f"{output.model} / {output.recipe}", output.curves)


def _write_curves(folder: Path, title: str, curves: list[dict[str, float]]) -> None:
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
    png = plot_curves(curves, title=title)
    if png is not None:
        atomic_write_bytes(folder / "curves.png", png)


def _prune(root: Path, cells: set[str], recipes: set[str]) -> None:
    """Drop cell/recipe folders of an earlier config: the results dir shows this run only."""
    for sub, keep in (("cells", cells), ("recipes", recipes)):
        folder = root / sub
        if folder.is_dir():
            for child in folder.iterdir():
                if child.is_dir() and child.name not in keep:
                    shutil.rmtree(child)


def _leaderboard(root: Path, name: str) -> str:
    from harness.leaderboard import build_table, load_results, render_markdown

    scores, loaded_info = load_results(root)
    return render_markdown(build_table(scores, loaded_info), name)


def _pictures(root: Path, record: RunRecord, image_cells: dict[str, tuple[str, list[dict[str, Any]]]]) -> str:
    """Image benchmarks: write the grids and return the leaderboard section linking them ("" otherwise)."""
    from harness.pictures import markdown_section, write_grids

    codecs = {cell: record.codecs.get(model) for cell, (model, _) in image_cells.items()}
    cells = {cell: records for cell, (_, records) in image_cells.items() if codecs[cell] is not None}
    paths = write_grids(root, cells, codecs, record.bench.eval.datasets) if cells else []  # type: ignore[arg-type]
    if not paths:
        return ""
    return "\n" + markdown_section(paths)


def plugin_table(bench: Benchmark) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for comp in bench.components():
        reg = comp.registration
        seen[(reg.kind, reg.name)] = {
            "kind": reg.kind,
            "name": reg.name,
            "version": reg.cls.version,
            "plugin": reg.source.plugin,
            "distribution": reg.source.distribution,
            "distribution_version": reg.source.version,
            "requires_packages": list(reg.cls.requires_packages),
        }
    return list(seen.values())
