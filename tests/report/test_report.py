"""``harness report``: the embedded data (packing, token positions, copied spans), escaping, sections, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.report import board_view, render_report, write_report
from harness.report_data import (
    ALPHABET,
    PieceSource,
    TrainingGrams,
    align_pieces,
    collect_samples,
    embed_json,
    pack_ints,
    pack_levels,
    pack_spans,
    prefix_spans,
    unpack_ints,
    unpack_levels,
    unpack_spans,
)
from report_helpers import QUICKSTART, QUICKSTART_IMAGE, WordCodec, copy_results, plant_text_record, synthetic_results

JSON_BLOCK = re.compile(r'<script type="application/json" id="([\w-]+)">(.*?)</script>', re.S)


def blocks(html: str) -> dict[str, object]:
    """Every JSON block of a report, parsed (what the page's JSON.parse sees)."""
    return {name: json.loads(text) for name, text in JSON_BLOCK.findall(html)}


def contexts(html: str) -> list[dict]:
    found = blocks(html)
    return [slot for name, chunk in found.items() if name.startswith("chunk-") for slot in chunk]  # type: ignore[union-attr]


# --------------------------------------------------------------------------- packing


def test_ints_round_trip_including_large_values():
    values = [0, 1, 31, 32, 33, 1023, 1024, 65535, 10**9, 7]
    packed = pack_ints(values)
    assert set(packed) <= set(ALPHABET)
    assert unpack_ints(packed) == values
    assert len(pack_ints([3] * 100)) == 100  # small values: one character each
    with pytest.raises(ValueError):
        pack_ints([-1])


def test_entropy_levels_quantise_on_the_report_scale():
    packed = pack_levels([0.0, 1.0, 2.0, float("nan"), -1.0], scale=2.0)
    assert len(packed) == 5
    assert unpack_levels(packed) == [0, 32, 63, 0, 0]


def test_embedded_json_cannot_end_its_script_block():
    value = {"t": "</script><script>alert(1)</script><!-- x", "u": "a\u2028b"}
    text = embed_json(value)
    assert "<" not in text and "\u2028" not in text
    assert json.loads(text) == value


# --------------------------------------------------------------------------- token positions


def test_pieces_align_with_gaps_and_count_utf16_units():
    assert align_pieces("0 12 3", ["0", "12", "3"]) == [(0, 1), (2, 4), (5, 6)]
    # 😀 is one code point but two UTF-16 units: JavaScript indices count units
    assert align_pieces("a😀b", ["a", "😀", "b"]) == [(0, 1), (1, 3), (3, 4)]
    assert align_pieces("abc", ["a", "x"]) is None  # a piece that is not there: unknown, never a guess
    assert pack_spans([(0, 1), (2, 4)]) == pack_ints([0, 1, 1, 2])
    assert pack_spans([(0, 3), (3, 7)]) == "." + pack_ints([3, 4])  # pieces that tile the text: lengths only
    for spans in ([(0, 1), (2, 4), (9, 40)], [(0, 3), (3, 7)], [(0, 0), (0, 2)]):
        assert unpack_spans(pack_spans(spans)) == spans


class HalfCharCodec:
    """Like a byte-level BPE: the two ids of 'é' decode to U+FFFD alone, to 'é' together."""

    table = {1: "caf", 2: "\xc3", 3: "\xa9", 4: " ok"}

    def decode(self, ids):
        raw = "".join(self.table[i] for i in ids).encode("latin-1")
        return raw.decode("utf-8", errors="replace")


def test_a_codec_places_tokens_and_half_characters_fall_back_to_prefixes():
    source = PieceSource(lambda: WordCodec())
    assert source.spans(" w5 w17", [5, 17]) == [(0, 3), (3, 7)]
    text = HalfCharCodec().decode([1, 2, 3, 4])
    assert text == "café ok"
    assert prefix_spans(text, [1, 2, 3, 4], HalfCharCodec()) is None  # the prefix "caf\ufffd" is not in the text
    source = PieceSource(lambda: HalfCharCodec())
    assert source.spans(text, [1, 2, 3, 4]) is None
    assert PieceSource().spans("0 7 3", [0, 7, 3]) == [(0, 1), (2, 3), (4, 5)]  # ids spelled out: no codec needed
    assert PieceSource().spans(" some text", [5, 6]) is None


def test_the_codec_is_asked_once_and_only_when_needed():
    asked = []

    def load():
        asked.append(1)
        return WordCodec()

    source = PieceSource(load)
    assert source.spans("1 2", [1, 2]) is not None and not asked
    source.spans(" w1", [1])
    source.spans(" w2", [2])
    assert asked == [1]


# --------------------------------------------------------------------------- copied spans


def test_copied_spans_are_merged_ranges_of_training_ngrams():
    train = TrainingGrams.from_sequences([[1, 2, 3, 4, 5, 6], [10, 11, 12]], n=3)
    assert train.copied_spans([9, 1, 2, 3, 4, 9, 10, 11, 12]) == [[1, 5], [6, 9]]
    assert train.copied_spans([3, 2, 1]) == []
    assert train.copied_spans([1, 2]) == []  # shorter than n
    assert TrainingGrams.from_sequences([], n=3).copied_spans([1, 2, 3]) == []
    big = TrainingGrams.from_sequences([[2**40, 5, 6]], n=3)  # ids wider than 32 bits stay distinct
    assert big.copied_spans([2**40, 5, 6]) == [[0, 3]] and big.copied_spans([0, 5, 6]) == []


def test_samples_of_the_quickstart_carry_copies_entropy_and_order(tmp_path: Path):
    results = copy_results(QUICKSTART, tmp_path / "qs")
    planted = plant_text_record(results, "smollm2__hyperfit__greedy")
    data = collect_samples(results, copy_ngram=8, order=["smollm2__hyperfit__greedy"])
    assert data.records == 96 and data.cells[0] == "smollm2__hyperfit__greedy"
    assert data.copy_cells == ["smollm2__hyperfit__greedy", "smollm2__hyperfit__top-p"]
    assert set(data.index) == {"wiki", "news"} and len(data.index["wiki"]) == 12
    slots = [slot for chunk in data.chunks for slot in chunk]
    slot = next(s for s in slots if s["p"] == planted["prompt_id"])
    sample = next(s for s in slot["s"] if data.cells[s["k"]] == "smollm2__hyperfit__greedy")
    assert sample["x"] == [[50, 58]] and sample["t"] == planted["output_text"]
    assert len(sample["e"]) == len(planted["step_entropy"]) == 224
    base = next(s for s in slot["s"] if data.cells[s["k"]] == "smollm2__base__greedy")
    assert "x" not in base  # the original model has no training set to copy from
    assert data.positioned == 0  # text loaders give no cheap codec: copies go on the per-step strip


def test_image_samples_know_token_positions_and_blocked_steps():
    data = collect_samples(QUICKSTART_IMAGE)
    assert data.positioned == data.records == 192
    blocked = data.cells.index("igpt__hyperfit__blocked")
    samples = [s for chunk in data.chunks for slot in chunk for s in slot["s"] if s["k"] == blocked]
    assert samples and all(isinstance(s["b"], int) for s in samples)
    first = samples[0]
    spans = unpack_spans(first["o"])
    assert len(spans) == first["n"] and all(first["t"][a:b].isdigit() for a, b in spans)


# --------------------------------------------------------------------------- the page


def test_the_report_is_self_contained_and_escapes_everything(tmp_path: Path):
    results = copy_results(QUICKSTART, tmp_path / "qs")
    plant_text_record(results, "smollm2__hyperfit__greedy")
    html, samples = render_report(results)
    assert "<script>alert" not in html and "</b> ended" not in html  # the planted markup stays text
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from anywhere
    assert "<link" not in html and "<script src" not in html and "@import" not in html
    assert html.count("<script>") == 1  # the one inline script; data blocks are application/json
    parsed = contexts(html)
    texts = [s["t"] for slot in parsed for s in slot["s"]]
    assert any("<script>alert('x')</script>" in t for t in texts)  # ...and comes back intact in the page
    assert blocks(html)["report-meta"]["records"] == samples.records == 96  # type: ignore[index]


def test_names_in_the_leaderboard_are_escaped(tmp_path: Path):
    results = copy_results(QUICKSTART, tmp_path / "qs")
    scores = results / "scores.csv"
    scores.write_text(scores.read_text().replace("top-p", "top<i>p&amp;"), encoding="utf-8")
    html, _ = render_report(results)
    assert "top<i>p" not in html and "top&lt;i&gt;p&amp;amp;" in html


def test_sections_of_the_quickstart_reports():
    html, _ = render_report(QUICKSTART)
    for anchor in ('id="summary"', 'id="leaderboard"', 'id="curves"', 'id="samples"'):
        assert anchor in html
    assert 'id="pictures"' not in html and 'id="comparisons"' not in html
    assert html.count("<polyline") == 4  # train loss, held-out loss, held-out entropy, greedy TTR
    assert "AMD EPYC" in html and "transformers" in html  # hardware and packages from the manifest
    assert html.count('class="board sortable"') == 2 and html.count("†") >= 8  # MAUVE's small-sample warning
    image_html, _ = render_report(QUICKSTART_IMAGE)
    assert 'id="pictures"' in image_html and "data:image/png;base64," in image_html


def test_intervals_are_drawn_on_each_columns_scale():
    from harness.leaderboard import build_table, load_results

    scores, info = load_results(QUICKSTART)
    board = board_view(build_table(scores, info)[0], info)
    ttr = [row[3] for row in board.rows]
    assert all(c.bar is not None and 0 <= c.bar[0] <= c.bar[2] <= c.bar[0] + c.bar[1] + 1e-6 <= 100.01 for c in ttr)
    assert min(c.bar[0] for c in ttr) == 0 and max(c.bar[0] + c.bar[1] for c in ttr) == pytest.approx(100, abs=0.02)
    mauve = [row[5] for row in board.rows]
    assert all(c.warning for c in mauve)


def test_paired_comparisons_are_shown_when_the_run_has_them(tmp_path: Path):
    paired = pytest.importorskip("harness.paired")
    results = copy_results(QUICKSTART, tmp_path / "qs")
    row = paired.Comparison("wiki", "ttr", "smollm2__base__greedy", "smollm2__hyperfit__greedy", 0.26, 0.53, 0.27,
                            0.18, 0.35, 0.002, 12, 1000, "paired", True, "a <note>")  # fmt: skip
    (results / "comparisons.csv").write_text(paired.comparisons_csv([row]), encoding="utf-8")
    html, _ = render_report(results)
    assert 'id="comparisons"' in html and 'class="beyond"' in html and "a &lt;note&gt;" in html
    assert "0.270" in html and "[0.180, 0.350]" in html


# --------------------------------------------------------------------------- the CLI


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=120)


def test_cli_writes_the_report_beside_the_results_or_to_out(tmp_path: Path):
    results = copy_results(QUICKSTART, tmp_path / "qs")
    done = harness("report", str(results))
    assert done.returncode == 0, done.stderr
    assert (results / "report.html").is_file() and "96 continuations" in done.stderr
    out = tmp_path / "elsewhere" / "r.html"
    done = harness("report", str(results), "--out", str(out), "--copy-ngram", "4")
    assert done.returncode == 0, done.stderr
    assert blocks(out.read_text(encoding="utf-8"))["report-meta"]["copyNgram"] == 4  # type: ignore[index]


@pytest.mark.parametrize("case", ["missing", "no-scores", "out-is-a-folder", "bad-ngram", "broken-generations"])
def test_cli_bad_input_exits_2_with_one_message(tmp_path: Path, case: str):
    results = copy_results(QUICKSTART, tmp_path / "qs")
    args = ["report", str(results)]
    if case == "missing":
        args = ["report", str(tmp_path / "nowhere")]
    elif case == "no-scores":
        (results / "scores.csv").unlink()
    elif case == "out-is-a-folder":
        args += ["--out", str(tmp_path)]
    elif case == "bad-ngram":
        args += ["--copy-ngram", "0"]
    else:
        with (results / "cells" / "smollm2__base__greedy" / "generations.jsonl").open("a") as handle:
            handle.write("{not json\n")
    done = harness(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert {"missing": "results directory not found", "no-scores": "scores.csv: file not found",
            "out-is-a-folder": "is a folder", "bad-ngram": "--copy-ngram 0",
            "broken-generations": "cannot read generations"}[case] in done.stderr  # fmt: skip


# --------------------------------------------------------------------------- 10,000 continuations


def test_report_of_10000_continuations_builds_fast(tmp_path: Path):
    results = synthetic_results(tmp_path / "big")
    started = time.perf_counter()
    outcome = write_report(results, codec_for=lambda model: WordCodec())
    seconds = time.perf_counter() - started
    print(f"\n10,000-continuation report: built in {seconds:.2f}s, {outcome.size_bytes / 1e6:.1f} MB")
    assert outcome.records == 10_000
    html = outcome.path.read_text(encoding="utf-8")
    meta = blocks(html)["report-meta"]
    assert meta["positioned"] == 10_000  # type: ignore[index]
    copied = [s for slot in contexts(html) for s in slot["s"] if s.get("x")]
    assert len(copied) == 2 * 2 * 125 and all(s["x"] == [[40, 60]] for s in copied)
    assert seconds < 60, seconds  # measured about 6 s on the project's 2-core machine


def test_codecs_come_from_the_loaders_cheap_load_codec(tmp_path: Path):
    from harness.report import loader_codecs

    results = synthetic_results(tmp_path / "small", contexts=3, train=4)
    asked: list[str] = []

    class Loader:
        params = ()

        def __init__(self, params):
            self.params_given = params

        def load_codec(self, ctx):
            asked.append(str(ctx.device))
            return WordCodec()

    class Registry:
        def get(self, kind, name):
            assert (kind, name) == ("model_loader", "none-such")
            return type("Registration", (), {"cls": Loader})

    manifest = json.loads((results / "manifest.json").read_text())
    html, samples = render_report(results, registry=Registry())
    assert samples.positioned == samples.records == 24 and asked == ["cpu"]  # asked once, for the one model
    assert loader_codecs(manifest, object())("m") is None  # a registry that cannot help: no positions, no error
