"""``harness report RESULTS_DIR``: one self-contained HTML file to read a run in a browser or an e-mail.

Everything is inline (CSS, JS, pictures as base64, curves as SVG, data as JSON blocks), so the file opens from
``file://`` and as an attachment with no network. Sections: the run summary (from ``manifest.json``), the
leaderboard of each dataset (sortable, intervals drawn, † warnings), paired comparisons (when
``harness.paired`` and ``comparisons.csv`` exist), the fit curves, the picture grids of image benchmarks and
the sample browser (its data: :mod:`harness.report_data`). The HTML comes from jinja2 templates in
``harness/templates`` with autoescape on; only this module imports jinja2 and pandas, and only the
``report`` command imports this module.
"""

from __future__ import annotations

import base64
import csv
import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from harness import __version__
from harness.curve_plot import panels_for
from harness.errors import InputError
from harness.leaderboard import WARNING_MARK, Section, build_table, format_number, load_results
from harness.report_data import DEFAULT_COPY_NGRAM, SampleData, TokenDecoder, collect_samples, embed_json
from harness.store import atomic_write_text

REPORT_NAME = "report.html"
SERIES_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


# --------------------------------------------------------------------------- leaderboard


@dataclass
class BoardCell:
    """One table cell: shown text, sort key, and where its value and interval sit on the column's scale."""

    text: str
    sort: str
    numeric: bool = False
    best: bool = False
    warning: str = ""
    interval: str = ""
    #: percentages on the column's scale: (interval left, interval width, value) or None
    bar: tuple[float, float, float] | None = None


@dataclass
class Board:
    dataset: str
    headers: list[tuple[str, bool, str]]  # (text, numeric, title)
    rows: list[list[BoardCell]]


def _finite(*values: float) -> list[float]:
    return [v for v in values if v is not None and not math.isnan(v)]


def board_view(section: Section, metrics_info: dict[str, dict]) -> Board:
    """A leaderboard section as rows of cells, each metric drawn as a bar on its column's own scale."""
    headers: list[tuple[str, bool, str]] = [("model", False, ""), ("recipe", False, ""), ("decoder", False, "")]
    for column in section.columns:
        info = metrics_info.get(column.name, {})
        headers.append((column.header, True, str(info.get("definition") or "")))
    if section.show_length:
        headers.append(("len", True, "mean continuation length in tokens"))
    headers.append(("n", True, "continuations scored"))
    scales: dict[str, tuple[float, float]] = {}
    for column in section.columns:
        points = [
            v for row in section.rows if (c := row.cells[column.name]) is not None for v in _finite(c.value, c.ci_low, c.ci_high)
        ]
        if points:
            scales[column.name] = (min(points), max(points))
    rows = []
    for row in section.rows:
        cells = [BoardCell(row.model, row.model), BoardCell(row.recipe, row.recipe), BoardCell(row.decoder, row.decoder)]
        for column in section.columns:
            cell = row.cells[column.name]
            if cell is None:
                cells.append(BoardCell("-", "", numeric=True))
                continue
            interval = ""
            if _finite(cell.ci_low, cell.ci_high) and len(_finite(cell.ci_low, cell.ci_high)) == 2:
                interval = f"[{format_number(cell.ci_low)}, {format_number(cell.ci_high)}]"
            bar = None
            if column.name in scales and not math.isnan(cell.value):
                lo, hi = scales[column.name]
                span = hi - lo or 1.0

                def at(v: float) -> float:
                    return round(100 * (v - lo) / span, 2)

                low, high = (cell.ci_low, cell.ci_high) if interval else (cell.value, cell.value)
                bar = (at(low), max(0.0, round(at(high) - at(low), 2)), at(cell.value))
            sort = "" if math.isnan(cell.value) else repr(cell.value)
            cells.append(BoardCell(format_number(cell.value), sort, True, cell.best, cell.warning, interval, bar))
        if section.show_length:
            cells.append(BoardCell(row.length_text, repr(row.lengths.mean) if row.lengths else "", numeric=True))
        cells.append(BoardCell(row.n_text, row.n_text.split("/")[0] if row.n_text != "-" else "", numeric=True))
        rows.append(cells)
    return Board(section.dataset, headers, rows)


# --------------------------------------------------------------------------- fit curves


@dataclass
class Panel:
    """One SVG panel of a fit's curve: polylines in a 0..width × 0..height box, axis labels as text."""

    title: str
    series: list[dict[str, Any]]
    x_range: tuple[str, str]
    #: (y position, label) at the lowest and highest value drawn
    y_ticks: list[tuple[float, str]]


@dataclass
class Curve:
    name: str
    panels: list[Panel] = field(default_factory=list)
    png: str = ""  # base64 of curves.png when there is no curves.csv to draw from


PANEL_W, PANEL_H, PAD_L, PAD_B, PAD_T, PAD_R = 300, 180, 46, 24, 22, 10


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_curves(path: Path) -> list[dict[str, float | None]]:
    """``curves.csv`` as rows of floats (None for a value not logged at that step)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def curve_panels(rows: list[dict[str, float | None]]) -> list[Panel]:
    """The panels of ``harness.curve_plot`` (losses, held-out entropy, greedy TTR, ...) as SVG geometry."""
    panels = []
    for title, columns in panels_for(rows):
        points = {
            c: [(r.get("step") if r.get("step") is not None else i, r[c]) for i, r in enumerate(rows) if r.get(c) is not None]
            for c in columns
        }
        xs = [x for pts in points.values() for x, _ in pts]
        ys = [y for pts in points.values() for _, y in pts]
        if not xs:
            continue
        x0, x1 = min(xs), max(xs)
        low, high = min(ys), max(ys)
        pad = (high - low) * 0.05 or abs(low) * 0.05 or 1.0
        y0, y1 = low - pad, high + pad
        inner_w, inner_h = PANEL_W - PAD_L - PAD_R, PANEL_H - PAD_T - PAD_B

        def sx(x: float) -> float:
            return round(PAD_L + inner_w * ((x - x0) / ((x1 - x0) or 1.0)), 1)

        def sy(y: float) -> float:
            return round(PAD_T + inner_h * (1 - (y - y0) / (y1 - y0)), 1)

        series = []
        for k, (column, pts) in enumerate(points.items()):
            xy = [(sx(x), sy(y)) for x, y in pts]
            series.append({
                "name": column, "colour": SERIES_COLOURS[k % len(SERIES_COLOURS)],
                "points": " ".join(f"{x},{y}" for x, y in xy), "dots": xy,
                "first": format_number(pts[0][1]), "last": format_number(pts[-1][1]),
            })  # fmt: skip
        y_ticks = [(sy(low), format_number(low)), (sy(high), format_number(high))] if high != low else [(sy(low), format_number(low))]
        panels.append(Panel(title, series, (format_number(x0), format_number(x1)), y_ticks))
    return panels


def collect_curves(results_dir: Path) -> list[Curve]:
    curves = []
    for folder in sorted(p for p in (results_dir / "recipes").glob("*") if p.is_dir()):
        csv_path, png_path = folder / "curves.csv", folder / "curves.png"
        if csv_path.is_file():
            panels = curve_panels(read_curves(csv_path))
            if panels:
                curves.append(Curve(folder.name.replace("__", " / "), panels))
                continue
        if png_path.is_file():
            curves.append(Curve(folder.name.replace("__", " / "), png=base64.b64encode(png_path.read_bytes()).decode()))
    return curves


# --------------------------------------------------------------------------- pictures, comparisons, summary


def collect_pictures(results_dir: Path) -> list[tuple[str, str]]:
    """(dataset, base64 PNG) for each ``pictures/<dataset>.png``."""
    return [(p.stem, base64.b64encode(p.read_bytes()).decode()) for p in sorted((results_dir / "pictures").glob("*.png"))]


def _display(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "-" if math.isnan(value) else format_number(value)
    if value is None:
        return "-"
    return str(value)


@dataclass
class ComparisonTable:
    """Paired comparisons as a sortable table; ``diff_column`` (if any) holds a difference drawn around 0."""

    headers: list[str]
    rows: list[list[BoardCell]]
    #: row indices whose interval excludes 0 (a difference beyond resampling noise)
    marked: set[int] = field(default_factory=set)


def _comparison_table(found: Sequence[Any]) -> ComparisonTable:
    """Rows of ``harness.paired.Comparison`` (duck-typed): B − A with its paired interval drawn around zero."""
    spans = [abs(v) for c in found for v in _finite(c.difference, c.ci_low, c.ci_high)]
    half = max(spans, default=0.0) or 1.0

    def at(v: float) -> float:
        return round(50 + 50 * v / half, 2)

    headers = ["dataset", "metric", "A", "B", "A value", "B value", "B − A [95% CI]", "p", "n", "better", "method"]
    rows, marked = [], set()
    for i, c in enumerate(found):
        diff = BoardCell(_display(c.difference), "" if math.isnan(c.difference) else repr(c.difference), numeric=True)
        if len(_finite(c.ci_low, c.ci_high)) == 2:
            diff.interval = f"[{format_number(c.ci_low)}, {format_number(c.ci_high)}]"
        if not math.isnan(c.difference):
            low, high = (c.ci_low, c.ci_high) if diff.interval else (c.difference, c.difference)
            diff.bar = (at(low), max(0.0, round(at(high) - at(low), 2)), at(c.difference))
        if getattr(c, "excludes_zero", False):
            marked.add(i)
            diff.best = True
        note = str(getattr(c, "note", "") or "")
        diff.warning = note
        numbers = [BoardCell(_display(v), "" if isinstance(v, float) and math.isnan(v) else repr(v), numeric=True)
                   for v in (c.value_a, c.value_b)]  # fmt: skip
        p = BoardCell(_display(c.p_value), "" if math.isnan(c.p_value) else repr(c.p_value), numeric=True)
        rows.append([
            BoardCell(c.dataset, c.dataset), BoardCell(c.metric, c.metric),
            BoardCell(c.cell_a.replace("__", " / "), c.cell_a), BoardCell(c.cell_b.replace("__", " / "), c.cell_b),
            *numbers, diff, p, BoardCell(str(c.n), str(c.n), numeric=True),
            BoardCell(str(getattr(c, "better", "")), str(getattr(c, "better", ""))), BoardCell(c.method, c.method),
        ])  # fmt: skip
    return ComparisonTable(headers, rows, marked)


def collect_comparisons(results_dir: Path) -> ComparisonTable | None:
    """The paired comparisons of ``harness.paired.load_comparisons``; None when there are none.

    That module is optional here: without it (or without ``comparisons.csv``) the section is left out."""
    if not (results_dir / "comparisons.csv").is_file():
        return None
    try:
        from harness.paired import load_comparisons
    except ImportError:
        return None
    found = list(load_comparisons(results_dir) or [])
    if not found:
        return None
    if all(hasattr(c, a) for c in found for a in ("dataset", "metric", "cell_a", "cell_b", "difference", "ci_low",
                                                   "ci_high", "p_value", "value_a", "value_b", "n", "method")):  # fmt: skip
        return _comparison_table(found)
    records = [r if isinstance(r, dict) else vars(r) for r in found]  # another shape: shown as it comes
    headers = list(dict.fromkeys(k for r in records for k in r))
    return ComparisonTable(headers, [[BoardCell(_display(r.get(h)), _display(r.get(h))) for h in headers] for r in records])


def _flat(value: Any) -> str:
    if isinstance(value, (dict, list)):
        if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
            return ", ".join(_display(v) for v in value)
        return json.dumps(value, ensure_ascii=False, sort_keys=False)
    return _display(value)


def run_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the summary section shows, read tolerantly (an older manifest may lack any part)."""
    config = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    git = manifest.get("git") if isinstance(manifest.get("git"), dict) else {}
    command = manifest.get("command")
    overview = [
        ("benchmark", manifest.get("benchmark")),
        ("benchmark file", manifest.get("benchmark_file")),
        ("created", manifest.get("created")),
        ("command", " ".join(command) if isinstance(command, list) else command),
        ("harness version", manifest.get("harness_version")),
        ("git", (str(git.get("commit", ""))[:12] + (" (dirty)" if git.get("dirty") else "")) if git else None),
        ("seed", manifest.get("seed")),
        ("limit", manifest.get("limit")),
        ("cache", manifest.get("cache_dir")),
    ]
    stages = manifest.get("stages") if isinstance(manifest.get("stages"), dict) else {}
    computed, reused = stages.get("computed") or {}, stages.get("reused") or {}
    stage_rows = [(k, computed.get(k, 0), reused.get(k, 0)) for k in dict.fromkeys([*computed, *reused])]
    timings = manifest.get("timings_seconds") if isinstance(manifest.get("timings_seconds"), dict) else {}

    def pairs(key: str) -> list[tuple[str, str]]:
        value = manifest.get(key)
        return [(str(k), _flat(v)) for k, v in value.items()] if isinstance(value, dict) else []

    eval_block = config.get("eval") if isinstance(config.get("eval"), dict) else {}
    return {
        "description": config.get("description") or "",
        "overview": [(k, _flat(v)) for k, v in overview if v not in (None, "")],
        "eval": [(str(k), _flat(v)) for k, v in eval_block.items()],
        "stages": stage_rows,
        "timings": [(str(k), f"{float(v):.1f}") for k, v in timings.items() if isinstance(v, (int, float))],
        "hardware": pairs("hardware"),
        "packages": [(k, v) for k, v in pairs("packages") if v != "-"],
        "models": pairs("models"),
        "data": pairs("data"),
        "config": json.dumps(config, indent=2, ensure_ascii=False),
        "disjointness": json.dumps(manifest.get("disjointness"), indent=2, ensure_ascii=False)
        if manifest.get("disjointness") else "",
    }  # fmt: skip


def read_spread(results_dir: Path) -> tuple[list[str], list[list[str]]] | None:
    path = results_dir / "seed_spread.csv"
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        return None
    body = [[format_number(float(v)) if h in ("mean", "sd") and _number(v) is not None else v for h, v in zip(rows[0], r)] for r in rows[1:]]
    return rows[0], body


# --------------------------------------------------------------------------- rendering


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("harness", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _asset(env: Any, name: str) -> Any:
    """A CSS or JS file inlined verbatim (read as source, so its braces are never taken for jinja syntax)."""
    import markupsafe

    source = env.loader.get_source(env, name)[0]
    if "</" + "script" in source.lower() or "</" + "style" in source.lower():
        raise AssertionError(f"{name} would end its own element")
    return markupsafe.Markup(source)


@dataclass(frozen=True)
class ReportOutcome:
    """What ``harness report`` says when it is done."""

    path: Path
    seconds: float
    records: int
    size_bytes: int


def loader_codecs(manifest: dict[str, Any], registry: Any) -> Callable[[str], TokenDecoder | None]:
    """``codec_for(model)``: the codec a model's loader gives without loading weights (``load_codec``), or None.

    Built from the manifest's resolved config and the plugin registry; any failure (plugin gone, params
    changed, files missing) gives None: the report then places no tokens in that model's texts, nothing worse."""
    from harness.api import LoadContext
    from harness.params import resolve_params
    from harness.store import default_cache_dir

    models = (manifest.get("config") or {}).get("models") or {}

    def codec_for(model: str) -> TokenDecoder | None:
        spec = dict(models.get(model) or {})
        try:
            registration = registry.get("model_loader", spec.pop("loader"))
            params, problems = resolve_params(registration.cls.params, spec)
            if problems.items:
                return None
            return registration.cls(params).load_codec(LoadContext(device="cpu", cache_dir=default_cache_dir() / "models"))
        except Exception:  # noqa: BLE001 - a display aid: never fail the report over it
            return None

    return codec_for


def render_report(results_dir: Path, copy_ngram: int = DEFAULT_COPY_NGRAM, registry: Any = None,
                  codec_for: Callable[[str], TokenDecoder | None] | None = None) -> tuple[str, SampleData]:  # fmt: skip
    """The report's HTML text and the sample data embedded in it.

    Token positions come from ``codec_for`` when given, else from the loaders of ``registry`` (if given)."""
    results_dir = Path(results_dir)
    scores, metrics_info = load_results(results_dir)
    manifest_path = results_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if codec_for is None and registry is not None:
        codec_for = loader_codecs(manifest, registry)
    sections = build_table(scores, metrics_info)
    boards = [board_view(s, metrics_info) for s in sections]
    warnings = list(dict.fromkeys(c.warning for b in boards for r in b.rows for c in r if c.warning))
    try:
        order = [f"{r.model}__{r.recipe}__{r.decoder}" for s in sections for r in s.rows]
        samples = collect_samples(results_dir, copy_ngram=copy_ngram, codec_for=codec_for, order=list(dict.fromkeys(order)))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{results_dir}/cells: cannot read generations: {exc}") from None
    env = _environment()
    title = str(manifest.get("benchmark") or results_dir.resolve().name)
    html = env.get_template("report.html.j2").render(
        title=title,
        summary=run_summary(manifest),
        boards=boards,
        warnings=warnings,
        warning_mark=WARNING_MARK,
        metrics=[(name, info.get("definition") or "") for name, info in metrics_info.items()],
        spread=read_spread(results_dir),
        comparisons=collect_comparisons(results_dir),
        curves=collect_curves(results_dir),
        pictures=collect_pictures(results_dir),
        samples=samples,
        meta_json=embed_json(samples.meta()),
        chunks_json=[embed_json(chunk) for chunk in samples.chunks],
        panel=(PANEL_W, PANEL_H, PAD_L, PAD_B, PAD_T, PAD_R),
        generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        version=__version__,
        css=_asset(env, "report.css"),
        js=_asset(env, "report.js"),
    )
    return html, samples


def write_report(results_dir: Path, out: Path | None = None, copy_ngram: int = DEFAULT_COPY_NGRAM,
                 registry: Any = None, codec_for: Callable[[str], TokenDecoder | None] | None = None) -> ReportOutcome:  # fmt: skip
    """Build the report of a results folder and write it (default ``RESULTS_DIR/report.html``), atomically."""
    started = time.perf_counter()
    results_dir = Path(results_dir)
    if copy_ngram < 1:
        raise InputError(f"--copy-ngram {copy_ngram}: must be at least 1")
    html, samples = render_report(results_dir, copy_ngram, registry, codec_for)
    path = Path(out) if out is not None else results_dir / REPORT_NAME
    if path.is_dir():
        raise InputError(f"--out {path}: is a folder; give a file name such as {path / REPORT_NAME}")
    try:
        atomic_write_text(path, html)
    except OSError as exc:
        raise InputError(f"--out {path}: cannot write: {exc}") from None
    return ReportOutcome(path, time.perf_counter() - started, samples.records, len(html.encode("utf-8")))


def describe(outcome: ReportOutcome) -> str:
    return (f"report: {outcome.path} ({outcome.size_bytes / 1e6:.1f} MB, {outcome.records} continuations, "
            f"{outcome.seconds:.1f}s)")  # fmt: skip


__all__: Sequence[str] = ("write_report", "render_report", "board_view", "curve_panels", "ReportOutcome", "describe")
