"""Turn a run's long score table into the leaderboards people read: rich, Markdown, CSV and LaTeX.

``scores.csv`` stays *long* (one row per model × recipe × decoder × dataset × metric) because that is
what scripts and pandas want; every display format is pivoted from that one frame, so all of them show
the same numbers. Layout follows peers.md §5: one table per eval dataset, the three experiment axes as
key columns, one column per metric with ↑/↓ from ``higher_is_better``, best value per column in bold,
``-`` for a missing cell. When the continuations of a dataset differ in length (only possible with
``eval.stop_at_eos: true``) a ``len`` column gives each row's mean continuation length in tokens, read from
``cells/*/generations.jsonl``; under the default fixed-length policy there is no such column. When the
benchmark names ``baselines``, each dataset's table is followed by one "vs <baseline>" table per baseline:
every other cell's paired difference (cell − baseline, read from ``comparisons.csv``, see harness.paired) per
metric column, with its interval and a * when that interval excludes 0.

Only ``harness leaderboard`` (and the results writer) import this module, so pandas and rich are
imported at the top; the core stays light because nothing else imports us.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import pandas as pd

from harness.errors import InputError, did_you_mean
from harness.paired import Comparison, format_difference, load_comparisons

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console, Group

KEYS: tuple[str, ...] = ("model", "recipe", "decoder")
SCORE_COLUMNS: tuple[str, ...] = ("model", "recipe", "decoder", "dataset", "metric", "value", "ci_low", "ci_high", "n")
FORMATS: tuple[str, ...] = ("rich", "md", "csv", "latex")
UP, DOWN = "↑", "↓"
MISSING = "-"
# pandas 3 parses floats exactly by default (and deprecates the switch); pandas 2 needs it asked for.
_EXACT_FLOATS: dict[str, str] = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
LEGEND = (
    "values: metric value [95% CI]; ↑ higher is better, ↓ lower is better; "
    "bold = best in its column for that dataset; n = number of continuations scored"
)
LENGTH_HEADER = "len"
LENGTH_LEGEND = "; len = mean continuation length in tokens (shown because lengths differ: eval.stop_at_eos)"
WARNING_MARK = "†"
VERSUS_LEGEND = (
    "; vs <baseline>: difference row − baseline on the prompts both have [95% paired bootstrap interval over "
    "prompts], * = the interval excludes 0, - = not compared (comparisons.csv says why; definitions: docs/comparisons.md)"
)
#: optional scores.csv columns (results written before they existed lack them)
OPTIONAL_SCORE_COLUMNS: tuple[str, ...] = ("interval", "warning")


# --------------------------------------------------------------------------- table model


@dataclass(frozen=True)
class Cell:
    """One metric's score for one row; ``best`` is decided within its section and column."""

    value: float
    ci_low: float
    ci_high: float
    n: int | None
    best: bool = False
    #: a sentence the reader must see with the value (e.g. a sample too small for the metric); marked †
    warning: str = ""


@dataclass(frozen=True)
class MetricColumn:
    """A metric column; ``higher_is_better`` is None for a descriptive metric (no best) or an undescribed one."""

    name: str
    higher_is_better: bool | None

    @property
    def arrow(self) -> str:
        if self.higher_is_better is None:
            return ""
        return UP if self.higher_is_better else DOWN

    @property
    def header(self) -> str:
        return f"{self.name} {self.arrow}".rstrip()


@dataclass
class Row:
    """One model × recipe × decoder combination; a metric absent for it maps to None."""

    model: str
    recipe: str
    decoder: str
    cells: dict[str, Cell | None] = field(default_factory=dict)
    #: the continuations' lengths on this dataset (None: no generations.jsonl to read them from)
    lengths: "Lengths | None" = None

    @property
    def length_text(self) -> str:
        return f"{self.lengths.mean:.1f}" if self.lengths is not None else MISSING

    @property
    def n_text(self) -> str:
        """The row's sample count; distinct counts (e.g. a corpus metric over prompts) are joined by '/'."""
        seen: list[int] = []
        for cell in self.cells.values():
            if cell is not None and cell.n is not None and cell.n not in seen:
                seen.append(cell.n)
        return "/".join(str(n) for n in seen) if seen else MISSING


@dataclass
class Versus:
    """One baseline's paired comparisons on one dataset: per other row (model, recipe, decoder), per metric."""

    baseline: str
    rows: list[tuple[tuple[str, str, str], dict[str, Comparison | None]]]

    @property
    def title(self) -> str:
        return f"vs {self.baseline}"


@dataclass
class Section:
    """The leaderboard of one eval dataset: scores are only comparable within the same data."""

    dataset: str
    columns: list[MetricColumn]
    rows: list[Row]
    #: True when the continuations of this dataset differ in length: the tables add a mean-length column
    show_length: bool = False
    #: the benchmark's baselines with every other cell's paired differences (empty without baselines)
    versus: list[Versus] = field(default_factory=list)


@dataclass(frozen=True)
class Lengths:
    """Continuation lengths (tokens, ``len(output_ids)``) of one cell on one dataset."""

    count: int
    total: int
    shortest: int
    longest: int

    @property
    def mean(self) -> float:
        return self.total / self.count


#: (cell id ``model__recipe__decoder``, dataset) -> the lengths of its continuations
LengthTable = dict[tuple[str, str], Lengths]


# --------------------------------------------------------------------------- loading


def load_results(results_dir: Path) -> tuple[pd.DataFrame, dict[str, dict]]:
    """Read ``scores.csv`` and the metric descriptions of ``manifest.json`` from a results directory.

    Key columns are read as strings verbatim (a recipe called ``none`` or ``NA`` stays a name), and
    floats are parsed exactly, so the exported CSV repeats scores.csv.
    Raises InputError naming the path when anything is missing or malformed.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise InputError(f"{results_dir}: results directory not found")
    scores_path = results_dir / "scores.csv"
    manifest_path = results_dir / "manifest.json"
    for path in (scores_path, manifest_path):
        if not path.is_file():
            raise InputError(f"{path}: file not found (is {results_dir} the output of `harness run`?)")

    metrics_info = _read_metrics_info(manifest_path)
    scores = _read_scores(scores_path)
    scores.attrs["lengths"] = read_lengths(results_dir)  # build_table's default source of the len column
    scores.attrs["comparisons"] = load_comparisons(results_dir)  # and of the "vs <baseline>" tables
    return scores, metrics_info


def read_lengths(results_dir: Path) -> LengthTable:
    """Continuation lengths per (cell, dataset) from ``cells/*/generations.jsonl`` ({} where there are none).

    Lengths are only a display aid: an unreadable file or record is skipped, never an error.
    """
    acc: dict[tuple[str, str], list[int]] = {}
    for path in sorted(Path(results_dir).glob("cells/*/generations.jsonl")):
        cell = path.parent.name
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            ids = record.get("output_ids") if isinstance(record, dict) else None
            if not isinstance(ids, list):
                continue
            stats = acc.setdefault((cell, str(record.get("dataset", ""))), [0, 0, len(ids), len(ids)])
            stats[0] += 1
            stats[1] += len(ids)
            stats[2] = min(stats[2], len(ids))
            stats[3] = max(stats[3], len(ids))
    return {key: Lengths(*stats) for key, stats in acc.items()}


def _read_metrics_info(path: Path) -> dict[str, dict]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read manifest JSON: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("metrics"), dict):
        raise InputError(f'{path}: expected an object with a "metrics" object')
    metrics: dict[str, dict] = {}
    for name, info in manifest["metrics"].items():
        if not isinstance(info, dict) or not isinstance(info.get("higher_is_better", "missing"), (bool, type(None))):
            raise InputError(f"{path}: metrics.{name}.higher_is_better: expected true, false or null, got {info!r}")
        metrics[str(name)] = info
    return metrics


def _read_scores(path: Path) -> pd.DataFrame:
    numeric = ("value", "ci_low", "ci_high", "n")
    try:
        frame = pd.read_csv(
            path,
            dtype={c: str for c in ("model", "recipe", "decoder", "dataset", "metric")},
            keep_default_na=False,
            na_values={c: ["", "nan", "NaN", "NA"] for c in numeric},
            **_EXACT_FLOATS,
        )
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise InputError(f"{path}: cannot read CSV: {exc}") from None
    missing = [c for c in SCORE_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(SCORE_COLUMNS)}")
    frame = frame[list(SCORE_COLUMNS) + [c for c in OPTIONAL_SCORE_COLUMNS if c in frame.columns]].copy()
    for column in OPTIONAL_SCORE_COLUMNS:
        if column in frame.columns:
            frame[column] = frame[column].fillna("").astype(str)
    for column in numeric:
        try:
            frame[column] = pd.to_numeric(frame[column]).astype("Int64" if column == "n" else "float64")
        except (ValueError, TypeError) as exc:
            raise InputError(f"{path}: column {column}: not a number: {exc}") from None
    return frame


# --------------------------------------------------------------------------- pivot


def _columns(scores: pd.DataFrame, metrics_info: dict[str, dict]) -> list[MetricColumn]:
    """Manifest order first (the benchmark's order); metrics it does not describe follow, without arrows."""
    present = list(dict.fromkeys(scores["metric"]))
    ordered = [m for m in metrics_info if m in present] + [m for m in present if m not in metrics_info]
    return [MetricColumn(m, metrics_info[m].get("higher_is_better") if m in metrics_info else None) for m in ordered]


def _float(value: Any) -> float:
    return math.nan if value is None or pd.isna(value) else float(value)


def build_table(
    scores: pd.DataFrame,
    metrics_info: dict[str, dict],
    lengths: LengthTable | None = None,
    comparisons: Sequence[Comparison] | None = None,
) -> list[Section]:
    """Pivot the long table into one Section per eval dataset, flagging the best cell of each column.

    Rows and sections keep first-appearance order (the run's order, which the user chose in the YAML).
    A NaN value is never best; ties are all best. A duplicate score row is an error, not a silent pick.
    ``lengths`` (default: what :func:`load_results` read from the results dir) gives each row its mean
    continuation length; a section shows it only when the lengths on that dataset are not all equal.
    ``comparisons`` (default: what load_results read from comparisons.csv) fill each section's ``versus``.
    """
    if lengths is None:
        lengths = scores.attrs.get("lengths") or {}
    if comparisons is None:
        comparisons = scores.attrs.get("comparisons") or []
    columns = _columns(scores, metrics_info)
    sections: list[Section] = []
    for dataset, group in scores.groupby("dataset", sort=False):
        rows: dict[tuple[str, str, str], Row] = {}
        for rec in group.itertuples(index=False):
            key = (str(rec.model), str(rec.recipe), str(rec.decoder))
            row = rows.setdefault(key, Row(*key, cells={c.name: None for c in columns}))
            if row.cells[rec.metric] is not None:
                raise InputError(f"duplicate score for {'/'.join(key)} on {dataset}, metric {rec.metric}")
            n = None if pd.isna(rec.n) else int(rec.n)
            warning = str(getattr(rec, "warning", "") or "")
            row.cells[rec.metric] = Cell(_float(rec.value), _float(rec.ci_low), _float(rec.ci_high), n, warning=warning)
        section_columns = [c for c in columns if any(r.cells[c.name] is not None for r in rows.values())]
        for row in rows.values():
            row.cells = {c.name: row.cells[c.name] for c in section_columns}
        _flag_best(section_columns, list(rows.values()))
        for row in rows.values():
            row.lengths = lengths.get((f"{row.model}__{row.recipe}__{row.decoder}", str(dataset)))
        known = [r.lengths for r in rows.values() if r.lengths is not None]
        show = bool(known) and min(k.shortest for k in known) != max(k.longest for k in known)
        versus = _versus(str(dataset), list(rows), section_columns, comparisons)
        sections.append(Section(str(dataset), section_columns, list(rows.values()), show_length=show, versus=versus))
    return sections


def _versus(
    dataset: str, keys: list[tuple[str, str, str]], columns: Sequence[MetricColumn], comparisons: Sequence[Comparison]
) -> list[Versus]:
    """Per baseline (first-seen order), the comparisons of every other row of this dataset, by metric column."""
    found: dict[str, dict[str, dict[str, Comparison]]] = {}
    for comp in comparisons:
        if comp.dataset == dataset:
            found.setdefault(comp.cell_a, {}).setdefault(comp.cell_b, {})[comp.metric] = comp
    out = []
    for baseline, by_cell in found.items():
        rows = [(key, {c.name: by_cell["__".join(key)].get(c.name) for c in columns})
                for key in keys if "__".join(key) in by_cell]  # fmt: skip
        if rows:
            out.append(Versus(baseline, rows))
    return out


def _versus_n(cells: dict[str, Comparison | None]) -> str:
    seen = list(dict.fromkeys(c.n for c in cells.values() if c is not None and c.computed))
    return "/".join(str(n) for n in seen) if seen else MISSING


def versus_cell(comp: Comparison | None) -> str:
    """``+0.201 [+0.102, +0.300]*`` (* = the paired interval excludes 0); ``-`` when not compared."""
    return MISSING if comp is None or not comp.computed else format_difference(comp)


def _legend(sections: Sequence[Section]) -> str:
    text = LEGEND + (LENGTH_LEGEND if any(s.show_length for s in sections) else "")
    text += VERSUS_LEGEND if any(s.versus for s in sections) else ""
    warnings = dict.fromkeys(
        c.warning for s in sections for r in s.rows for c in r.cells.values() if c is not None and c.warning
    )
    for warning in warnings:
        text += f"; {WARNING_MARK} {warning}"
    return text


def _flag_best(columns: Sequence[MetricColumn], rows: Sequence[Row]) -> None:
    for column in columns:
        if column.higher_is_better is None:
            continue
        values = [c.value for r in rows if (c := r.cells[column.name]) is not None and not math.isnan(c.value)]
        if not values:
            continue
        best = max(values) if column.higher_is_better else min(values)
        for row in rows:
            cell = row.cells[column.name]
            if cell is not None and cell.value == best:
                row.cells[column.name] = Cell(cell.value, cell.ci_low, cell.ci_high, cell.n, best=True, warning=cell.warning)


# --------------------------------------------------------------------------- text formats


def format_number(value: float) -> str:
    """Three decimals for the usual 0..1 (or 0..100) metrics, one decimal for large ones like perplexity."""
    if math.isnan(value):
        return "nan"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"


def format_cell(cell: Cell | None) -> str:
    """``0.528 [0.490, 0.560]``; the interval is left out when it is unknown, ``-`` when there is no score."""
    if cell is None:
        return MISSING
    text = format_number(cell.value) + (WARNING_MARK if cell.warning else "")
    if not (math.isnan(cell.ci_low) or math.isnan(cell.ci_high)):
        text += f" [{format_number(cell.ci_low)}, {format_number(cell.ci_high)}]"
    return text


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(sections: Sequence[Section], title: str) -> str:
    """GitHub Markdown: a heading per dataset, so leaderboard.md reads well on GitHub and in PR comments."""
    lines = [f"# {title}", ""]
    if not sections:
        lines += ["_no scores yet_", ""]
    for section in sections:
        extra = [LENGTH_HEADER] if section.show_length else []
        header = [*KEYS, *(c.header for c in section.columns), *extra, "n"]
        lines += [f"## {section.dataset}", ""]
        lines.append("| " + " | ".join(_md_escape(h) for h in header) + " |")
        lines.append("|" + "---|" * len(KEYS) + "---:|" * (len(section.columns) + len(extra) + 1))
        for row in section.rows:
            cells = []
            for column in section.columns:
                cell = row.cells[column.name]
                text = _md_escape(format_cell(cell))
                cells.append(f"**{text}**" if cell is not None and cell.best else text)
            length = [row.length_text] if section.show_length else []
            values = [_md_escape(row.model), _md_escape(row.recipe), _md_escape(row.decoder), *cells, *length, row.n_text]
            lines.append("| " + " | ".join(values) + " |")
        lines.append("")
        for versus in section.versus:
            lines += [f"**{section.dataset}, {_md_escape(versus.title)}** (row − baseline, paired over prompts)", ""]
            lines.append("| " + " | ".join(_md_escape(h) for h in [*KEYS, *(c.header for c in section.columns), "n"]) + " |")
            lines.append("|" + "---|" * len(KEYS) + "---:|" * (len(section.columns) + 1))
            for key, comps in versus.rows:
                cells = [_md_escape(versus_cell(comps[c.name])).replace("*", "\\*") for c in section.columns]
                lines.append("| " + " | ".join([*(_md_escape(k) for k in key), *cells, _versus_n(comps)]) + " |")
            lines.append("")
    lines.append(f"_{_legend(sections)}._")
    return "\n".join(lines) + "\n"


def _csv_float(value: Any) -> str:
    """``repr`` is the shortest text that parses back to the same float, so the CSV loses nothing."""
    return "" if value is None or pd.isna(value) else repr(float(value))


def render_csv(scores: pd.DataFrame, metrics_info: dict[str, dict]) -> str:
    """A wide CSV (one row per dataset × model × recipe × decoder) for spreadsheets, at full precision.

    A final ``mean_length`` column appears when continuation lengths differ (see :func:`build_table`)."""
    columns = [c.name for c in _columns(scores, metrics_info)]
    header = ["dataset", *KEYS]
    for name in columns:
        header += [name, f"{name}_ci_low", f"{name}_ci_high", f"{name}_n"]
    rows: dict[tuple[str, ...], dict[str, str]] = {}
    seen: set[tuple[str, ...]] = set()
    for rec in scores.itertuples(index=False):
        key = (str(rec.dataset), str(rec.model), str(rec.recipe), str(rec.decoder))
        if (*key, rec.metric) in seen:
            raise InputError(f"duplicate score for {'/'.join(key[1:])} on {key[0]}, metric {rec.metric}")
        seen.add((*key, rec.metric))
        row = rows.setdefault(key, {})
        row[str(rec.metric)] = _csv_float(rec.value)
        row[f"{rec.metric}_ci_low"] = _csv_float(rec.ci_low)
        row[f"{rec.metric}_ci_high"] = _csv_float(rec.ci_high)
        row[f"{rec.metric}_n"] = "" if pd.isna(rec.n) else str(int(rec.n))
    lengths: LengthTable = scores.attrs.get("lengths") or {}
    if any(s.show_length for s in build_table(scores, metrics_info, lengths)):
        header.append("mean_length")
        for (dataset, model, recipe, decoder), row in rows.items():
            found = lengths.get((f"{model}__{recipe}__{decoder}", dataset))
            row["mean_length"] = repr(found.mean) if found is not None else ""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for key, row in rows.items():
        writer.writerow([*key, *(row.get(h, "") for h in header[len(key):])])
    return out.getvalue()


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX specials so model and metric names like ``self_bleu`` or ``top-p 90%`` compile."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def render_latex(sections: Sequence[Section], title: str) -> str:
    """One booktabs table per dataset, ready to paste into a paper (needs ``\\usepackage{booktabs}``)."""
    arrows = {UP: r"$\uparrow$", DOWN: r"$\downarrow$", "": ""}
    parts = [f"% {latex_escape(title)}: {_legend(sections).replace('↑', 'up').replace('↓', 'down')}"]
    for section in sections:
        extra = [LENGTH_HEADER] if section.show_length else []
        spec = "l" * len(KEYS) + "r" * (len(section.columns) + len(extra) + 1)
        header = [*KEYS, *(f"{latex_escape(c.name)} {arrows[c.arrow]}".rstrip() for c in section.columns), *extra, "$n$"]
        lines = [
            r"\begin{table}[ht]",
            r"\centering",
            rf"\caption{{{latex_escape(title)}: {latex_escape(section.dataset)}}}",
            rf"\begin{{tabular}}{{{spec}}}",
            r"\toprule",
            " & ".join(header) + r" \\",
            r"\midrule",
        ]
        for row in section.rows:
            cells = []
            for column in section.columns:
                cell = row.cells[column.name]
                text = latex_escape(format_cell(cell))
                cells.append(rf"\textbf{{{text}}}" if cell is not None and cell.best else text)
            keys = [latex_escape(row.model), latex_escape(row.recipe), latex_escape(row.decoder)]
            length = [row.length_text] if section.show_length else []
            lines.append(" & ".join([*keys, *cells, *length, row.n_text]) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------- rich


def render_rich(sections: Sequence[Section], title: str) -> "Group":
    """Terminal tables, one per dataset, for ``harness leaderboard`` (the default format)."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    items: list[Any] = [Text(title, style="bold")]
    if not sections:
        items.append(Text("no scores yet", style="dim"))
    for section in sections:
        table = Table(title=section.dataset, box=box.SIMPLE_HEAVY, title_justify="left")
        for key in KEYS:
            table.add_column(key)
        for column in section.columns:
            table.add_column(column.header, justify="right")
        if section.show_length:
            table.add_column(LENGTH_HEADER, justify="right")
        table.add_column("n", justify="right")
        for row in section.rows:
            cells = []
            for column in section.columns:
                cell = row.cells[column.name]
                cells.append(Text(format_cell(cell), style="bold" if cell is not None and cell.best else ""))
            length = [row.length_text] if section.show_length else []
            table.add_row(row.model, row.recipe, row.decoder, *cells, *length, row.n_text)
        items.append(table)
        for versus in section.versus:
            table = Table(title=f"{section.dataset}, {versus.title} (row − baseline, paired)", box=box.SIMPLE_HEAVY,
                          title_justify="left")  # fmt: skip
            for key in KEYS:
                table.add_column(key)
            for column in section.columns:
                table.add_column(column.header, justify="right")
            table.add_column("n", justify="right")
            for key, comps in versus.rows:
                cells = [Text(versus_cell(comp), style="bold" if comp is not None and comp.excludes_zero else "")
                         for comp in (comps[c.name] for c in section.columns)]  # fmt: skip
                table.add_row(*key, *cells, _versus_n(comps))
            items.append(table)
    items.append(Text(_legend(sections), style="dim"))
    return Group(*items)


def print_leaderboard(results_dir: Path, fmt: str = "rich", console: "Console | None" = None) -> None:
    """Entry point of ``harness leaderboard``: load, pivot and print in the chosen format.

    Text formats go to stdout unwrapped (so ``> table.csv`` gives a valid file) unless a console is passed.
    """
    if fmt not in FORMATS:
        raise InputError(f'--format "{fmt}": unknown format{did_you_mean(fmt, FORMATS)}')
    results_dir = Path(results_dir)
    scores, metrics_info = load_results(results_dir)
    title = results_dir.resolve().name
    if fmt == "rich":
        from rich.console import Console

        (console or Console()).print(render_rich(build_table(scores, metrics_info), title))
        return
    if fmt == "csv":
        text = render_csv(scores, metrics_info)
    elif fmt == "md":
        text = render_markdown(build_table(scores, metrics_info), title)
    else:
        text = render_latex(build_table(scores, metrics_info), title)
    if console is None:
        sys.stdout.write(text)
    else:
        console.print(text, end="", markup=False, highlight=False, soft_wrap=True, emoji=False)
