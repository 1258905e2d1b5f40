"""`harness show`: continuations in the terminal, every repeated word n-gram styled, the text itself untouched."""

from __future__ import annotations

import io
import json
import re

import pytest
from rich.console import Console
from rich.text import Text

from harness.errors import InputError
from harness.show import REPEAT_STYLE, render_sample, repeated_ngram_spans, show_samples
from harness.testing import run_cli

# "the cat sat on the mat" occurs twice: both occurrences are styled, nothing else is
PLANTED = "Once the cat sat on the mat and then, later,  the cat sat on the mat again.\nThe end"
REPEAT = "the cat sat on the mat"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "run" / "cells" / "tiny__fit__greedy"
    folder.mkdir(parents=True)
    records = [
        {"prompt_id": "wiki/1", "dataset": "wiki", "context_text": "Context one. ", "output_text": PLANTED},
        {"prompt_id": "news/2", "dataset": "news", "context_text": "Context two. ", "output_text": "no repeat at all here"},
    ]
    (folder / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return tmp_path / "run"


def style_codes(style: str) -> tuple[str, str]:
    """The escape sequences a colour console writes before and after text in ``style``."""
    out = io.StringIO()
    Console(file=out, color_system="standard", force_terminal=True).print(Text("X", style=style), end="")
    on, off = out.getvalue().split("X")
    assert on and off
    return on, off


def occurrences(text: str, sub: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(re.escape(sub), text)]


def test_every_occurrence_of_a_repeated_ngram_is_a_span():
    assert repeated_ngram_spans(PLANTED, 4) == occurrences(PLANTED, REPEAT)
    assert repeated_ngram_spans(PLANTED, 6) == occurrences(PLANTED, REPEAT)
    assert repeated_ngram_spans(PLANTED, 7) == []
    assert repeated_ngram_spans(PLANTED, 0) == []  # off


def test_overlapping_repeats_merge_and_words_compare_exactly():
    assert repeated_ngram_spans("a b a b a b", 2) == [(0, 11)]
    assert repeated_ngram_spans("a b. a b", 2) == []  # "b." is not "b"
    assert repeated_ngram_spans("", 4) == []


def test_plain_output_is_the_text_itself(results):
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None, force_terminal=False)
    show_samples(results, None, None, 5, 4, console)
    text = out.getvalue()
    assert "\x1b" not in text
    assert f"[wiki/1] Context one. {PLANTED}\n" in text
    assert "[news/2] Context two. no repeat at all here\n" in text
    assert "tiny__fit__greedy" in text.splitlines()[0]


def test_forced_colour_styles_exactly_the_repeats(results):
    out = io.StringIO()
    console = Console(file=out, width=200, color_system="standard", force_terminal=True)
    show_samples(results, None, "wiki", 5, 4, console)
    text = out.getvalue()
    plain = ANSI.sub("", text)
    assert f"[wiki/1] Context one. {PLANTED}" in plain
    sample = render_sample({"prompt_id": "wiki/1", "context_text": "Context one. ", "output_text": PLANTED}, 4)
    offset = len("[wiki/1] Context one. ")
    styled = [(s.start - offset, s.end - offset) for s in sample.spans if s.style == REPEAT_STYLE]
    assert styled == occurrences(PLANTED, REPEAT)
    on, off = style_codes(REPEAT_STYLE)
    assert text.count(on) == 2 and text.count(on + REPEAT + off) == 2, repr(text)


def test_zero_turns_highlighting_off(results):
    out = io.StringIO()
    show_samples(results, "tiny__fit__greedy", None, 5, 0, Console(file=out, width=200, color_system="standard", force_terminal=True))
    assert style_codes(REPEAT_STYLE)[0] not in out.getvalue()


def test_unknown_cell_and_missing_folder_are_input_errors(results, tmp_path):
    with pytest.raises(InputError, match="no cell 'nope'"):
        show_samples(results, "nope", None, 3, 4, Console(file=io.StringIO()))
    with pytest.raises(InputError, match="not a results directory"):
        show_samples(tmp_path, None, None, 3, 4, Console(file=io.StringIO()))


def test_the_cli_option(results):
    code, output = run_cli(["show", str(results), "--repeat-ngram", "6", "-n", "1"])
    assert code == 0 and " ".join(f"[wiki/1] Context one. {PLANTED}".split()) in " ".join(output.split())
    code, output = run_cli(["show", str(results), "--repeat-ngram", "-1"])
    assert code == 2 and "--repeat-ngram" in output
    code, output = run_cli(["show", str(results), "--ngram", "3", "-n", "1"])  # the earlier name still works
    assert code == 0
