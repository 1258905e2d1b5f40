"""Leaderboard: pivoting the long score table and rendering it (md, csv, latex, rich) with the same numbers."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from harness.errors import InputError
from harness.leaderboard import (
    SCORE_COLUMNS,
    build_table,
    latex_escape,
    load_results,
    print_leaderboard,
    render_csv,
    render_latex,
    render_markdown,
    render_rich,
)

NAN = math.nan

# Manifest order is ttr then self_bleu; scores list self_bleu first for some rows to prove the order comes
# from the manifest. Values like 1/3 and 0.1 + 0.2 check that the csv export loses no precision.
ROWS = [
    # model, recipe, decoder, dataset, metric, value, ci_low, ci_high, n
    ("smollm2", "base", "greedy", "wiki", "self_bleu", 0.8, 0.7, 0.9, 12),
    ("smollm2", "base", "greedy", "wiki", "ttr", 0.5, 0.45, 0.55, 12),
    ("smollm2", "hyperfit", "greedy", "wiki", "ttr", 0.7, 0.65, 0.75, 12),
    ("smollm2", "hyperfit", "greedy", "wiki", "self_bleu", 1 / 3, 0.1 + 0.2, 0.4, 12),
    ("smollm2", "hyperfit", "blocked", "wiki", "ttr", 0.7, 0.6, 0.8, 12),
    ("smollm2", "hyperfit", "blocked", "wiki", "self_bleu", NAN, NAN, NAN, 12),
    ("smollm2", "base", "greedy", "news", "ttr", 0.4, 0.3, 0.5, 10),
    ("smollm2", "base", "greedy", "news", "self_bleu", 0.2, 0.1, 0.3, 10),
    ("smollm2", "hyperfit", "greedy", "news", "ttr", 0.6, 0.5, 0.7, 10),
    ("smollm2", "hyperfit", "greedy", "news", "self_bleu", 0.25, 0.2, 0.3, 10),
    ("smollm2", "hyperfit", "blocked", "news", "ttr", 123.456, 120.0, 130.0, 10),
    ("smollm2", "hyperfit", "blocked", "news", "self_bleu", 0.2, 0.15, 0.25, 10),
]
METRICS = {
    "ttr": {"plugin": "ttr", "higher_is_better": True, "level": "sample", "definition": "types/tokens", "params": {}},
    "self_bleu": {"plugin": "self-bleu", "higher_is_better": False, "level": "corpus", "definition": "", "params": {}},
}


def scores_frame(rows=ROWS) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def write_results(path: Path, scores: pd.DataFrame, metrics: dict = METRICS) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    scores.to_csv(path / "scores.csv", index=False)
    (path / "manifest.json").write_text(json.dumps({"name": path.name, "metrics": metrics}), encoding="utf-8")
    return path


def best_map(section) -> dict[tuple[str, str], bool]:
    return {
        (f"{r.recipe}/{r.decoder}", m): c.best for r in section.rows for m, c in r.cells.items() if c is not None
    }


# --------------------------------------------------------------------------- build_table


def test_sections_rows_and_columns_keep_order():
    sections = build_table(scores_frame(), METRICS)
    assert [s.dataset for s in sections] == ["wiki", "news"]
    assert [c.name for c in sections[0].columns] == ["ttr", "self_bleu"]
    assert [c.header for c in sections[0].columns] == ["ttr ↑", "self_bleu ↓"]
    assert [(r.model, r.recipe, r.decoder) for r in sections[0].rows] == [
        ("smollm2", "base", "greedy"),
        ("smollm2", "hyperfit", "greedy"),
        ("smollm2", "hyperfit", "blocked"),
    ]
    cell = sections[0].rows[0].cells["ttr"]
    assert (cell.value, cell.ci_low, cell.ci_high, cell.n) == (0.5, 0.45, 0.55, 12)


def test_best_respects_direction_ties_and_nan():
    wiki, news = build_table(scores_frame(), METRICS)
    assert best_map(wiki) == {
        ("base/greedy", "ttr"): False,
        ("hyperfit/greedy", "ttr"): True,  # tie at 0.7: both best
        ("hyperfit/blocked", "ttr"): True,
        ("base/greedy", "self_bleu"): False,
        ("hyperfit/greedy", "self_bleu"): True,  # lower is better
        ("hyperfit/blocked", "self_bleu"): False,  # NaN is never best
    }
    assert best_map(news) == {
        ("base/greedy", "ttr"): False,
        ("hyperfit/greedy", "ttr"): False,
        ("hyperfit/blocked", "ttr"): True,
        ("base/greedy", "self_bleu"): True,
        ("hyperfit/greedy", "self_bleu"): False,
        ("hyperfit/blocked", "self_bleu"): True,
    }


def test_missing_cell_and_metric_absent_from_manifest():
    rows = [
        ("m", "none", "greedy", "d", "ttr", 0.5, 0.4, 0.6, 4),
        ("m", "none", "top-p", "d", "extra", 2.0, NAN, NAN, 4),
    ]
    (section,) = build_table(scores_frame(rows), METRICS)
    assert [c.header for c in section.columns] == ["ttr ↑", "extra"]  # unknown direction: no arrow, no best
    assert section.rows[0].cells["extra"] is None
    assert section.rows[1].cells["ttr"] is None
    assert section.rows[1].cells["extra"].best is False
    assert "| m | none | top-p | - | 2.000 | 4 |" in render_markdown([section], "t")


def test_duplicate_score_is_an_error():
    rows = [ROWS[0], ROWS[0]]
    with pytest.raises(InputError, match="duplicate score"):
        build_table(scores_frame(rows), METRICS)


# --------------------------------------------------------------------------- markdown


def test_markdown_exact_text():
    rows = [
        ("gpt|2", "base", "greedy", "wiki", "ttr", 0.528, 0.49, 0.56, 12),
        ("gpt|2", "base", "greedy", "wiki", "self_bleu", 0.25, 0.2, 0.3, 12),
        ("gpt|2", "hyperfit", "greedy", "wiki", "ttr", 0.61234, 0.6, 0.63, 12),
        ("gpt|2", "hyperfit", "greedy", "wiki", "self_bleu", 150.0, 140.04, NAN, 12),
    ]
    text = render_markdown(build_table(scores_frame(rows), METRICS), "tiny")
    assert text == (
        "# tiny\n"
        "\n"
        "## wiki\n"
        "\n"
        "| model | recipe | decoder | ttr ↑ | self_bleu ↓ | n |\n"
        "|---|---|---|---:|---:|---:|\n"
        "| gpt\\|2 | base | greedy | 0.528 [0.490, 0.560] | **0.250 [0.200, 0.300]** | 12 |\n"
        "| gpt\\|2 | hyperfit | greedy | **0.612 [0.600, 0.630]** | 150.0 | 12 |\n"
        "\n"
        "_values: metric value [95% CI]; ↑ higher is better, ↓ lower is better; "
        "bold = best in its column for that dataset; n = number of continuations scored._\n"
    )


def test_markdown_large_values_and_nan():
    text = render_markdown(build_table(scores_frame(), METRICS), "bench")
    assert "## wiki" in text and "## news" in text and text.index("## wiki") < text.index("## news")
    assert "| smollm2 | hyperfit | blocked | **0.700 [0.600, 0.800]** | nan | 12 |" in text
    assert "**123.5 [120.0, 130.0]**" in text


# --------------------------------------------------------------------------- csv


def test_csv_round_trip_equals_long_table(tmp_path):
    scores, metrics = load_results(write_results(tmp_path / "bench", scores_frame()))
    # parse with the csv module and float(): exact, whatever pandas' float parser does
    header, *body = list(csv.reader(io.StringIO(render_csv(scores, metrics))))
    assert header == [
        "dataset", "model", "recipe", "decoder",
        "ttr", "ttr_ci_low", "ttr_ci_high", "ttr_n",
        "self_bleu", "self_bleu_ci_low", "self_bleu_ci_high", "self_bleu_n",
    ]  # fmt: skip
    assert len(body) == 6
    wide = {tuple(line[:4]): dict(zip(header, line)) for line in body}
    for model, recipe, decoder, dataset, metric, value, lo, hi, n in ROWS:
        got = wide[(dataset, model, recipe, decoder)]
        for column, expected in ((metric, value), (f"{metric}_ci_low", lo), (f"{metric}_ci_high", hi)):
            if math.isnan(expected):
                assert got[column] == ""
            else:
                assert float(got[column]) == expected  # exact, not approx
        assert int(got[f"{metric}_n"]) == n


# --------------------------------------------------------------------------- latex


def test_latex_escapes_and_bolds():
    rows = [
        ("gpt_2 & co", "50%", "#1", "wiki", "ttr", 0.5, 0.4, 0.6, 8),
        ("gpt_2 & co", "50%", "#2", "wiki", "ttr", 0.75, 0.7, 0.8, 8),
    ]
    text = render_latex(build_table(scores_frame(rows), METRICS), "my_bench")
    assert latex_escape("a_b & c % d # e") == r"a\_b \& c \% d \# e"
    assert r"\caption{my\_bench: wiki}" in text
    assert r"\begin{tabular}{lllrr}" in text
    assert r"\toprule" in text and r"\midrule" in text and r"\bottomrule" in text
    assert r"model & recipe & decoder & ttr $\uparrow$ & $n$ \\" in text
    assert r"gpt\_2 \& co & 50\% & \#1 & 0.500 [0.400, 0.600] & 8 \\" in text
    assert r"gpt\_2 \& co & 50\% & \#2 & \textbf{0.750 [0.700, 0.800]} & 8 \\" in text


# --------------------------------------------------------------------------- rich


def test_rich_tables_contain_cells():
    console = Console(width=120, file=io.StringIO(), force_terminal=False, color_system=None)
    console.print(render_rich(build_table(scores_frame(), METRICS), "bench"))
    out = console.file.getvalue()
    for expected in ("bench", "wiki", "news", "ttr ↑", "self_bleu ↓", "0.700 [0.650, 0.750]", "0.333 [0.300, 0.400]",
                     "123.5 [120.0, 130.0]", "hyperfit", "blocked", "nan", "number of continuations"):  # fmt: skip
        assert expected in out, expected
    assert out.index("wiki") < out.index("news")


def test_rich_best_is_bold():
    console = Console(width=120, file=io.StringIO(), force_terminal=True, color_system="standard", _environ={})
    console.print(render_rich(build_table(scores_frame(), METRICS), "bench"))
    out = console.file.getvalue()
    assert "\x1b[1m0.333 [0.300, 0.400]" in out
    assert "\x1b[1m0.800 [0.700, 0.900]" not in out


# --------------------------------------------------------------------------- load_results / print


def test_load_results_keeps_names_verbatim(tmp_path):
    rows = [("NA", "none", "None", "nan", "ttr", 0.5, 0.4, 0.6, 3)]
    scores, metrics = load_results(write_results(tmp_path / "b", scores_frame(rows)))
    assert list(scores.iloc[0][["model", "recipe", "decoder", "dataset"]]) == ["NA", "none", "None", "nan"]
    assert list(metrics) == ["ttr", "self_bleu"]


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda d: (d / "scores.csv").unlink(), "scores.csv: file not found"),
        (lambda d: (d / "manifest.json").unlink(), "manifest.json: file not found"),
        (lambda d: (d / "manifest.json").write_text("{not json"), "manifest.json: cannot read manifest JSON"),
        (lambda d: (d / "manifest.json").write_text('{"name": "x"}'), 'manifest.json: expected an object with a "metrics"'),
        (lambda d: (d / "manifest.json").write_text('{"metrics": {"ttr": {}}}'), "metrics.ttr.higher_is_better"),
        (lambda d: (d / "scores.csv").write_text("model,recipe\nm,r\n"), "scores.csv: missing column(s) decoder"),
        (lambda d: (d / "scores.csv").write_text(""), "scores.csv: cannot read CSV"),
        (
            lambda d: (d / "scores.csv").write_text(",".join(SCORE_COLUMNS) + "\nm,r,g,d,ttr,high,0,1,3\n"),
            "scores.csv: column value: not a number",
        ),
    ],
)
def test_load_results_errors_name_the_path(tmp_path, breakage, message):
    results = write_results(tmp_path / "bench", scores_frame())
    breakage(results)
    with pytest.raises(InputError) as info:
        load_results(results)
    assert message in str(info.value)
    assert str(results) in str(info.value)


def test_load_results_missing_dir(tmp_path):
    with pytest.raises(InputError, match="results directory not found"):
        load_results(tmp_path / "nope")


def test_print_leaderboard_formats(tmp_path, capsys):
    results = write_results(tmp_path / "bench", scores_frame())
    print_leaderboard(results, "csv")
    assert capsys.readouterr().out.startswith("dataset,model,recipe,decoder,ttr,")
    print_leaderboard(results, "md")
    assert capsys.readouterr().out.startswith("# bench\n")
    console = Console(width=120, file=io.StringIO(), force_terminal=False, color_system=None)
    print_leaderboard(results, "latex", console=console)
    assert r"\begin{tabular}" in console.file.getvalue()
    console = Console(width=120, file=io.StringIO(), force_terminal=False, color_system=None)
    print_leaderboard(results, "rich", console=console)
    assert "ttr ↑" in console.file.getvalue()
    with pytest.raises(InputError, match='did you mean "latex"'):
        print_leaderboard(results, "latx")


# --------------------------------------------------------------------------- mean length (eval.stop_at_eos)


def write_generations(results: Path, lengths: dict[tuple[str, str], list[int]]) -> None:
    """cells/<cell>/generations.jsonl with one record per length, by (cell id, dataset)."""
    by_cell: dict[str, list[dict]] = {}
    for (cell, dataset), sizes in lengths.items():
        for i, size in enumerate(sizes):
            by_cell.setdefault(cell, []).append({"prompt_id": f"{dataset}-{i}", "dataset": dataset, "output_ids": [7] * size})
    for cell, records in by_cell.items():
        folder = results / "cells" / cell
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


CELLS = ("smollm2__base__greedy", "smollm2__hyperfit__greedy", "smollm2__hyperfit__blocked")


def test_equal_lengths_show_no_length_column(tmp_path):
    results = write_results(tmp_path / "bench", scores_frame())
    write_generations(results, {(cell, d): [24] * 3 for cell in CELLS for d in ("wiki", "news")})
    sections = build_table(*load_results(results))
    assert not any(s.show_length for s in sections)
    text = render_markdown(sections, "bench")
    assert "| len |" not in text and "mean continuation length" not in text
    assert "mean_length" not in render_csv(*load_results(results))


def test_differing_lengths_show_the_mean_length_per_dataset(tmp_path):
    results = write_results(tmp_path / "bench", scores_frame())
    lengths = {(cell, "news"): [24] * 3 for cell in CELLS}  # news: all full length, no column
    lengths |= {(CELLS[0], "wiki"): [24, 24, 3], (CELLS[1], "wiki"): [24] * 3, (CELLS[2], "wiki"): [0, 24]}
    write_generations(results, lengths)
    wiki, news = build_table(*load_results(results))
    assert wiki.show_length and not news.show_length
    assert [r.length_text for r in wiki.rows] == ["17.0", "24.0", "12.0"]
    text = render_markdown([wiki, news], "bench")
    assert "| model | recipe | decoder | ttr ↑ | self_bleu ↓ | len | n |" in text
    assert "| smollm2 | base | greedy | 0.500 [0.450, 0.550] | 0.800 [0.700, 0.900] | 17.0 | 12 |" in text
    news_part = text.split("## news", 1)[1]
    assert "| len |" not in news_part
    assert "len = mean continuation length in tokens" in text
    latex = render_latex([wiki, news], "bench")
    assert "& len & $n$" in latex and "& 17.0 & 12" in latex
    console = Console(width=160, file=io.StringIO(), force_terminal=False, color_system=None)
    console.print(render_rich([wiki, news], "bench"))
    assert "len" in console.file.getvalue() and "17.0" in console.file.getvalue()
    header, *body = list(csv.reader(io.StringIO(render_csv(*load_results(results)))))
    assert header[-1] == "mean_length"
    by_key = {tuple(r[:4]): r[-1] for r in body}
    assert float(by_key[("wiki", "smollm2", "base", "greedy")]) == 17.0
    assert float(by_key[("news", "smollm2", "base", "greedy")]) == 24.0
    # the results writer's call (build_table(scores, info) on load_results' frame) picks the lengths up
    scores, info = load_results(results)
    assert build_table(scores, info)[0].show_length
    # explicit lengths win; no generations at all: no column
    assert not build_table(scores, info, lengths={})[0].show_length


def test_a_score_with_a_warning_is_marked_and_explained(tmp_path):
    """A small-sample MAUVE keeps its value, gets a † and the warning in the legend; old CSVs without the
    interval/warning columns still load."""
    frame = scores_frame()
    frame["interval"] = "normal"
    frame["warning"] = ""
    frame.loc[frame.index[1], ["interval", "warning"]] = ["seeds", "small sample: 12 texts per side (< 100)"]
    scores, info = load_results(write_results(tmp_path / "warned", frame))
    text = render_markdown(build_table(scores, info), "t")
    assert "0.500† [0.450, 0.550]" in text
    assert text.count("†") == 2 and "† small sample: 12 texts per side (< 100)" in text
    old_scores, old_info = load_results(write_results(tmp_path / "old", scores_frame()))
    assert "†" not in render_markdown(build_table(old_scores, old_info), "t")
