"""``harness show``: read continuations in the terminal with repetition made visible.

Every word n-gram that occurs more than once in a continuation is styled, all its occurrences (the rule of
the HTML report's sample browser: words are runs of non-space characters, compared exactly). Only styles
are added, never characters: without colour (a pipe, ``NO_COLOR``) the text reads exactly as generated.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from rich.console import Console
from rich.text import Text

from harness.errors import InputError
from harness.store import read_jsonl

#: the style of a repeated n-gram (reverse video still shows on a monochrome terminal)
REPEAT_STYLE = "reverse red"
_WORD = re.compile(r"\S+")


def repeated_ngram_spans(text: str, n: int) -> list[tuple[int, int]]:
    """Character ranges ``[start, end)`` of ``text`` covered by a word n-gram that occurs more than once in it,
    every occurrence included, overlapping ranges merged. ``n < 1``: none."""
    if n < 1:
        return []
    words = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
    grams = [tuple(w[2] for w in words[i : i + n]) for i in range(len(words) - n + 1)]
    counts: dict[tuple[str, ...], int] = {}
    for gram in grams:
        counts[gram] = counts.get(gram, 0) + 1
    spans: list[tuple[int, int]] = []
    for i, gram in enumerate(grams):
        if counts[gram] < 2:
            continue
        start, end = words[i][0], words[i + n - 1][1]
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


def render_sample(record: Mapping[str, Any], ngram: int) -> Text:
    """One continuation: ``[prompt id]``, the context (dim), then the output with its repeats styled."""
    text = Text()
    text.append(f"[{record.get('prompt_id')}] ", style="bold")  # a style of its own, not the Text's base style
    text.append(str(record.get("context_text", "")), style="dim")
    output = str(record.get("output_text", ""))
    offset = len(text)
    text.append(output)
    for start, end in repeated_ngram_spans(output, ngram):
        text.stylize(REPEAT_STYLE, offset + start, offset + end)
    return text


def show_samples(results_dir: Path, cell: str | None, dataset: str | None, count: int, ngram: int,
                 console: Console | None = None) -> None:  # fmt: skip
    """Print the first ``count`` continuations of each cell (or one cell), ``ngram``-word repeats highlighted."""
    cells_dir = results_dir / "cells"
    if not cells_dir.is_dir():
        raise InputError(f"{results_dir}: not a results directory (no cells/)")
    folders = sorted(p for p in cells_dir.iterdir() if p.is_dir())
    if cell:
        folders = [p for p in folders if p.name == cell]
        if not folders:
            raise InputError(f"{results_dir}: no cell {cell!r}")
    console = console or Console()
    for folder in folders:
        records = read_jsonl(folder / "generations.jsonl")
        if dataset:
            records = [r for r in records if r.get("dataset") == dataset]
        console.rule(folder.name)
        for record in records[:count]:
            console.print(render_sample(record, ngram))
            console.print()
