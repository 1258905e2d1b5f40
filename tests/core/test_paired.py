"""Paired comparisons between cells (harness.paired): the bootstrap against brute force, per-text and corpus
metrics, identical cells, pairing rules, the `harness compare` command and the baselines of a benchmark."""

from __future__ import annotations

import io
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from harness.api import InputError, Metric, MetricContext
from harness.errors import ConfigError
from harness.paired import (
    PAIRED,
    POINT,
    RECOMPUTED,
    SKIPPED,
    Comparison,
    compare_cells,
    compare_results,
    comparisons_csv,
    load_comparisons,
    p_value,
    paired_seed,
    render_rich,
    summarize,
)
from harness.testing import load_registry, load_test_benchmark, run_benchmark, run_cli, tiny_benchmark, TinyLlamaLoader

# --------------------------------------------------------------------------- hand-made data and metrics


class Length(Metric):
    """Per text: the number of words (a sample metric whose per-record values are easy to write by hand)."""

    name = "test-length"
    level = "sample"
    higher_is_better = True

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        return [float(len(r["output_text"].split())) for r in samples]


class DistinctShare(Metric):
    """Corpus: distinct texts / texts (no score_per_text, so a comparison recomputes it on every resample)."""

    name = "test-distinct"
    level = "corpus"
    higher_is_better = True
    seen: list[list[dict[str, Any]]] = []

    def score_corpus(self, samples: list[dict[str, Any]]) -> float:
        DistinctShare.seen.append(samples)
        return len({r["output_text"] for r in samples}) / len(samples)


class NeedsModel(Metric):
    name = "test-needs-model"
    level = "sample"

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        if self.context.model is None:
            raise InputError("test-needs-model needs the evaluated model, which is only available inside `harness run`")
        return [1.0] * len(samples)


def records(texts: list[str], dataset: str = "d", prefix: str = "p") -> list[dict[str, Any]]:
    return [{"prompt_id": f"{prefix}{i}", "dataset": dataset, "output_text": t} for i, t in enumerate(texts)]


def words(counts: list[int]) -> list[str]:
    return [" ".join(["w"] * c) for c in counts]


def percentile(values: list[float], q: float) -> float:
    """numpy's default (linear) percentile, written out: the point at rank q/100 · (n − 1) of the sorted values."""
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def brute_p(diffs: list[float]) -> float:
    below = sum(1 for d in diffs if d <= 0)
    above = sum(1 for d in diffs if d >= 0)
    return min(1.0, 2 * min(below + 1, above + 1) / (len(diffs) + 1))


# --------------------------------------------------------------------------- the bootstrap itself


def test_summarize_matches_the_enumerated_bootstrap_of_four_prompts():
    """All 4^4 equally likely resamples of 4 prompts: percentiles and p computed plainly."""
    a = [1.0, 2.0, 4.0, 3.0]
    b = [2.0, 2.5, 7.0, 2.0]
    d = [y - x for x, y in zip(a, b)]
    diffs = [sum(d[i] for i in idx) / 4 for idx in itertools.product(range(4), repeat=4)]
    point = sum(d) / 4
    low, high, p = summarize(point, diffs)
    assert low == pytest.approx(min(point, percentile(diffs, 2.5)), abs=1e-12)
    assert high == pytest.approx(max(point, percentile(diffs, 97.5)), abs=1e-12)
    assert p == pytest.approx(brute_p(diffs), abs=1e-12)
    assert low <= point <= high


def test_many_seeded_resamples_approach_the_exact_bootstrap():
    """compare_cells' Monte Carlo resamples are uniform draws with replacement: close to the enumeration."""
    counts_a, counts_b = [1, 2, 4, 3], [2, 3, 7, 2]
    d = [y - x for x, y in zip(counts_a, counts_b)]
    exact = [sum(d[i] for i in idx) / 4 for idx in itertools.product(range(4), repeat=4)]
    row = compare_cells(records(words(counts_a)), records(words(counts_b)), {"len": Length()}, 20000, seed=3)[0]
    assert row.ci_low == pytest.approx(percentile(exact, 2.5), abs=0.1)
    assert row.ci_high == pytest.approx(percentile(exact, 97.5), abs=0.1)
    assert row.p_value == pytest.approx(brute_p(exact), abs=0.02)


def test_p_value_edges():
    assert p_value([0.0] * 9) == 1.0
    assert p_value([1.0] * 9) == pytest.approx(2 / 10)  # never 0: at least 2 / (R + 1)
    assert p_value([-1.0, 1.0]) == 1.0
    assert math.isnan(p_value([]))


# --------------------------------------------------------------------------- per-text and corpus metrics


def test_per_text_metric_against_a_seeded_brute_force_loop():
    counts_a, counts_b = [3, 5, 2, 8, 6, 1, 4], [4, 9, 2, 7, 9, 3, 6]
    rows = compare_cells(records(words(counts_a)), records(words(counts_b)), {"len": Length()}, 200, seed=11,
                         cell_a="x", cell_b="y")  # fmt: skip
    (row,) = rows
    assert (row.cell_a, row.cell_b, row.dataset, row.method, row.n, row.resamples) == ("x", "y", "d", PAIRED, 7, 200)
    assert row.value_a == pytest.approx(sum(counts_a) / 7) and row.value_b == pytest.approx(sum(counts_b) / 7)
    # the prompts in canonical order ("p0" < "p1" < ...), each resample the r-th integers(0, n, size=n) call
    d = [float(y - x) for x, y in zip(counts_a, counts_b)]
    rng = np.random.default_rng(paired_seed(11, "d", "len"))
    diffs = []
    for _ in range(200):
        drawn = rng.integers(0, 7, size=7).tolist()
        diffs.append(sum(d[i] for i in drawn) / len(drawn))
    point = sum(d) / 7
    assert row.difference == pytest.approx(point, abs=1e-12)
    assert row.ci_low == pytest.approx(min(point, percentile(diffs, 2.5)), abs=1e-12)
    assert row.ci_high == pytest.approx(max(point, percentile(diffs, 97.5)), abs=1e-12)
    assert row.p_value == pytest.approx(brute_p(diffs), abs=1e-12)
    assert row.better == "B" and row.excludes_zero


def test_corpus_metric_recomputes_both_sides_on_the_same_resampled_prompts():
    texts_a = ["a", "a", "b", "c", "c", "d"]
    texts_b = ["a", "b", "c", "d", "e", "e"]
    DistinctShare.seen = []
    (row,) = compare_cells(records(texts_a), records(texts_b), {"distinct": DistinctShare()}, 40, seed=5)
    assert row.method == RECOMPUTED and row.n == 6 and row.resamples == 40
    assert row.value_a == pytest.approx(4 / 6) and row.value_b == pytest.approx(5 / 6)
    rng = np.random.default_rng(paired_seed(5, "d", "distinct"))
    diffs = []
    for _ in range(40):
        drawn = rng.integers(0, 6, size=6).tolist()
        stat_a = len({texts_a[i] for i in drawn}) / 6
        stat_b = len({texts_b[i] for i in drawn}) / 6
        diffs.append(stat_b - stat_a)
    point = 5 / 6 - 4 / 6
    assert row.difference == pytest.approx(point)
    assert row.ci_low == pytest.approx(min(point, percentile(diffs, 2.5)))
    assert row.ci_high == pytest.approx(max(point, percentile(diffs, 97.5)))
    assert row.p_value == pytest.approx(brute_p(diffs))
    # 2 point values + 2 per resample; a resample's A and B copies come from the same drawn prompts
    assert len(DistinctShare.seen) == 2 + 2 * 40
    first_a, first_b = DistinctShare.seen[2], DistinctShare.seen[3]
    assert [r["prompt_id"] for r in first_a] == [r["prompt_id"] for r in first_b]
    assert [r["_draw"] for r in first_a] == list(range(6))


def test_self_bleu_is_paired_on_its_per_text_contributions(tmp_path):
    """A corpus metric with score_per_text: its value is the scores.csv value, resampled like a per-text metric."""
    registry = load_registry()
    self_bleu = registry.get("metric", "self-bleu").cls({})
    a = records(["the cat sat on the mat", "the cat sat on a mat", "a dog ran far away", "the cat sat down"])
    b = records(["one two three four", "five six seven eight", "nine ten eleven twelve", "the cat sat on the mat"])
    (row,) = compare_cells(a, b, {"self-bleu": self_bleu}, 100, seed=0)
    assert row.method == PAIRED and row.resamples == 100
    assert row.value_a == pytest.approx(self_bleu.score_corpus(a)) and row.value_b == pytest.approx(self_bleu.score_corpus(b))
    assert row.better == "B"  # lower is better and B is more diverse


@pytest.mark.parametrize("metric", [Length(), DistinctShare()], ids=["per-text", "corpus"])
def test_identical_cells_differ_by_zero_with_p_one(metric):
    same = records(words([3, 1, 4, 1, 5, 9]))
    (row,) = compare_cells(same, [dict(r) for r in same], {"m": metric}, 100, seed=0)
    assert row.difference == 0.0 and row.ci_low <= 0.0 <= row.ci_high
    assert row.ci_low == row.ci_high == 0.0 and row.p_value == 1.0
    assert row.better == "tie" and not row.excludes_zero


def test_swapping_the_cells_negates_the_difference():
    a, b = records(words([3, 5, 2, 8, 6])), records(words([4, 9, 2, 7, 9]))
    forward = compare_cells(a, b, {"len": Length(), "distinct": DistinctShare()}, 60, seed=2)
    backward = compare_cells(list(reversed(b)), a[::-1], {"len": Length(), "distinct": DistinctShare()}, 60, seed=2)
    for f, r in zip(forward, backward):
        assert r.difference == pytest.approx(-f.difference)
        assert (r.ci_low, r.ci_high) == pytest.approx((-f.ci_high, -f.ci_low))
        assert r.p_value == pytest.approx(f.p_value)


def test_comparisons_are_deterministic():
    a, b = records(words([3, 5, 2, 8, 6])), records(words([4, 9, 2, 7, 9]))
    assert compare_cells(a, b, {"len": Length()}, 80, seed=1) == compare_cells(a, b, {"len": Length()}, 80, seed=1)


# --------------------------------------------------------------------------- pairing rules


def test_several_draws_are_averaged_per_prompt():
    a = records(words([2, 4, 6]))
    b = [{"prompt_id": f"p{i}", "dataset": "d", "sample_idx": k, "output_text": " ".join(["w"] * c)}
         for i, pair in enumerate([(1, 3), (4, 8), (5, 5)]) for k, c in enumerate(pair)]  # fmt: skip
    (row,) = compare_cells(a, b, {"len": Length()}, 50, seed=0)
    assert row.n == 3 and row.value_b == pytest.approx((2 + 6 + 5) / 3)
    assert "averaged per prompt" in row.note


def test_only_shared_prompts_count_and_no_overlap_is_refused():
    a = records(words([1, 2, 3, 4]))
    b = records(words([9, 2, 3]), prefix="p")[1:] + records(words([7]), prefix="q")  # p1, p2 and q0
    (row,) = compare_cells(a, b, {"len": Length()}, 20, seed=0)
    assert row.n == 2 and row.value_a == pytest.approx(2.5) and "only one cell" in row.note
    with pytest.raises(InputError, match="share no prompts"):
        compare_cells(records(words([1, 2]), dataset="wiki"), records(words([1, 2]), dataset="news"), {"len": Length()}, 10, 0)
    with pytest.raises(InputError, match="share no prompts"):
        compare_cells(records(words([1, 2]), prefix="x"), records(words([1, 2]), prefix="y"), {"len": Length()}, 10, 0)


def test_a_metric_that_needs_a_model_is_skipped_with_its_message():
    a, b = records(words([1, 2, 3])), records(words([2, 3, 4]))
    skip, ok = compare_cells(a, b, {"tf": NeedsModel(), "len": Length()}, 10, seed=0,
                             contexts=(MetricContext(), MetricContext()))  # fmt: skip
    assert skip.method == SKIPPED and "needs the evaluated model" in skip.note and math.isnan(skip.difference)
    assert ok.method == PAIRED
    assert compare_cells(a, b, {"len": Length()}, 0, seed=0)[0].method == POINT


def test_comparisons_csv_round_trips(tmp_path):
    rows = compare_cells(records(words([1, 2, 3])), records(words([2, 3, 5])), {"len": Length(), "tf": NeedsModel()}, 10, 0)
    (tmp_path / "comparisons.csv").write_text(comparisons_csv(rows), encoding="utf-8")
    loaded = load_comparisons(tmp_path)
    assert [r.to_json() for r in loaded] == [r.to_json() for r in rows]
    assert load_comparisons(tmp_path / "nowhere") == []


# --------------------------------------------------------------------------- a tiny run: CLI and baselines

BASELINE = "tiny__base__greedy"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("paired")
    bench = tiny_benchmark(tmp, baselines=[BASELINE])
    return run_benchmark(bench, tmp).results_dir


def test_baselines_are_compared_at_record_time_and_shown(tiny_run):
    rows = load_comparisons(tiny_run)
    assert {r.cell_a for r in rows} == {BASELINE}
    assert {r.cell_b for r in rows} == {"tiny__base__top-p", "tiny__fit__greedy", "tiny__fit__top-p"}
    assert {r.metric for r in rows} == {"ttr", "self-bleu", "entropy"} and {r.dataset for r in rows} == {"train-set", "other-set"}
    board = (tiny_run / "leaderboard.md").read_text(encoding="utf-8")
    assert f"**train-set, vs {BASELINE}** (row − baseline, paired over prompts)" in board
    assert "vs <baseline>: difference row − baseline" in board
    # the stored comparison is what `harness compare` computes from the results folder
    result = compare_results(tiny_run, BASELINE, "tiny__fit__greedy", load_registry())
    stored = {(r.dataset, r.metric): r for r in rows if r.cell_b == "tiny__fit__greedy"}
    for row in result.rows:
        assert row == stored[(row.dataset, row.metric)]
    fit_ttr = stored[("train-set", "ttr")]
    assert f"| tiny | fit | greedy | {fit_ttr.difference:+.3f}" in board
    # each (baseline, cell, metric) is a stage in the cache: a warm run recomputes none
    assert len(list((tiny_run.parents[1] / "cache" / "stages" / "compare").glob("*.json"))) == 3 * 3


def test_no_baselines_no_comparisons(tmp_path):
    run = run_benchmark(tiny_benchmark(tmp_path, eval={**tiny_benchmark(tmp_path)["eval"], "contexts": 3}), tmp_path)
    assert not (run.results_dir / "comparisons.csv").exists()
    assert " vs " not in (run.results_dir / "leaderboard.md").read_text(encoding="utf-8")


def test_compare_cli_formats(tiny_run):
    code, out = run_cli(["compare", str(tiny_run), BASELINE, "tiny__fit__greedy", "--format", "json"])
    assert code == 0, out
    data = json.loads(out)
    assert data["difference"] == "B - A" and data["cell_a"] == BASELINE and data["bootstrap"] == 50
    assert len(data["comparisons"]) == 6 and {"p_value", "ci_low", "better"} <= set(data["comparisons"][0])

    code, out = run_cli(["compare", str(tiny_run), BASELINE, "tiny__fit__greedy", "--format", "md",
                         "--metric", "ttr", "--dataset", "other-set", "--bootstrap", "20"])  # fmt: skip
    assert code == 0, out
    assert out.startswith(f"# {BASELINE} (A) vs tiny__fit__greedy (B)\n")
    assert "## other-set" in out and "## train-set" not in out and "| ttr ↑ |" in out and "self-bleu" not in out
    assert "(20 resamples unless noted" in out

    code, out = run_cli(["compare", str(tiny_run), BASELINE, "tiny__fit__greedy"])
    assert code == 0 and "A = tiny__base__greedy   B = tiny__fit__greedy" in out and "B − A" in out


def test_compare_rich_table_on_a_fixed_console(tiny_run):
    result = compare_results(tiny_run, BASELINE, "tiny__fit__greedy", load_registry(), metric="ttr", bootstrap=30)
    console = Console(width=100, file=io.StringIO(), force_terminal=False, color_system=None)
    console.print(render_rich(result))
    text = console.file.getvalue()
    row = next(r for r in result.rows if r.dataset == "train-set")
    assert "train-set" in text and "other-set" in text
    line = next(l for l in text.splitlines() if l.strip().startswith("ttr ↑") and f"{row.value_a:.3f}" in l)
    assert f"{row.difference:+.3f}" in line and line.rstrip().endswith("A")  # TTR fell: the baseline is better


@pytest.mark.parametrize(
    "args, message",
    [
        ([BASELINE, "tiny__fit__gredy"], 'no cell "tiny__fit__gredy" (did you mean "tiny__fit__greedy"?)'),
        (["tiny__bse__greedy", "tiny__fit__greedy"], 'no cell "tiny__bse__greedy" (did you mean "tiny__base__greedy"?)'),
        ([BASELINE, "tiny__fit__greedy", "--metric", "tttr"], 'did you mean "ttr"?'),
        ([BASELINE, "tiny__fit__greedy", "--dataset", "other"], 'did you mean "other-set"?'),
        ([BASELINE, "tiny__fit__greedy", "--format", "html"], "unknown format"),
    ],
)
def test_compare_cli_bad_input_exits_2(tiny_run, args, message):
    code, out = run_cli(["compare", str(tiny_run), *args])
    assert code == 2 and message in out


def test_baselines_are_validated(tmp_path):
    registry = load_registry(extra=(TinyLlamaLoader,))
    bench = load_test_benchmark(tiny_benchmark(tmp_path, baselines=[BASELINE]), tmp_path, registry)
    assert bench.baselines == [BASELINE] and bench.resolved()["baselines"] == [BASELINE]
    assert "baselines" not in load_test_benchmark(tiny_benchmark(tmp_path), tmp_path, registry).resolved()
    with pytest.raises(ConfigError) as err:
        load_test_benchmark(tiny_benchmark(tmp_path, baselines=["tiny__base__gredy", BASELINE, BASELINE]), tmp_path, registry)
    text = str(err.value)
    assert 'baselines.0: unknown cell "tiny__base__gredy": not in the matrix (did you mean "tiny__base__greedy"?)' in text
    assert 'baselines.2: "tiny__base__greedy" is listed twice' in text
    with pytest.raises(ConfigError, match="baselines: expected a list of cell ids"):
        load_test_benchmark(tiny_benchmark(tmp_path, baselines=BASELINE), tmp_path, registry)


def test_comparison_better_follows_the_metric_direction():
    def row(diff: float, hib: bool | None) -> Comparison:
        return Comparison("d", "m", "a", "b", 1.0, 1.0 + diff, diff, diff - 1, diff + 1, 0.5, 3, 10, PAIRED, hib)

    assert row(0.5, True).better == "B" and row(0.5, False).better == "A" and row(0.5, None).better == ""
    assert row(-0.5, True).better == "A" and row(0.0, True).better == "tie"


def test_docs_quickstart_output_is_what_compare_prints():
    """docs/comparisons.md shows `harness compare` on the committed quickstart; its fast metrics are pinned here."""
    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "comparisons.md").read_text(encoding="utf-8")
    block = doc.split("$ harness compare results/quickstart smollm2__hyperfit__greedy smollm2__base__top-p\n", 1)[1]
    lines = block.split("```", 1)[0].splitlines()
    for metric in ("ttr", "self-bleu", "entropy"):
        result = compare_results(root / "results" / "quickstart", "smollm2__hyperfit__greedy", "smollm2__base__top-p",
                                 load_registry(), metric=metric)  # fmt: skip
        shown = [t[2:] if t[1] in ("↑", "↓") else t[1:] for t in (line.split() for line in lines) if t[:1] == [metric]]
        assert len(shown) == len(result.rows) == 2
        for row, tokens in zip(result.rows, shown):
            ci = f"[{row.ci_low:+.3f}, {row.ci_high:+.3f}]" + ("*" if row.excludes_zero else "")
            assert tokens == [f"{row.value_a:.3f}", f"{row.value_b:.3f}", f"{row.difference:+.3f}", *ci.split(),
                              f"{row.p_value:.3f}", str(row.n), row.better or "-"]  # fmt: skip


class SkipsShort(Metric):
    """Per text, but rows of one word are not scored (as TTR skips short rows under stop_at_eos)."""

    name = "test-skips-short"
    level = "sample"

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        return [float(len(r["output_text"].split())) for r in samples if len(r["output_text"].split()) > 1]


def test_rows_a_sample_metric_skips_stay_with_their_prompts():
    a = records(words([2, 1, 4, 3]))  # p1 has no scored row in A
    b = records(words([3, 5, 1, 6]))  # p2 has none in B
    (row,) = compare_cells(a, b, {"m": SkipsShort()}, 30, seed=0)
    assert row.n == 2 and row.value_a == pytest.approx((2 + 3) / 2) and row.value_b == pytest.approx((3 + 6) / 2)
    assert "2 prompt(s) with no scored row on one side left out" in row.note


def test_rich_leaderboard_shows_the_baseline_tables(tiny_run):
    from harness.leaderboard import print_leaderboard

    console = Console(width=160, file=io.StringIO(), force_terminal=False, color_system=None)
    print_leaderboard(tiny_run, "rich", console)
    text = console.file.getvalue()
    assert f"train-set, vs {BASELINE} (row − baseline, paired)" in text and f"other-set, vs {BASELINE}" in text
