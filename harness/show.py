"""``harness show``: read continuations with repetition made visible."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.text import Text

from harness.errors import InputError
from harness.store import read_jsonl


def repeated_word_mask(words: list[str], n: int) -> list[bool]:
    """True for each word inside an n-gram that already occurred earlier in the same text."""
    mask = [False] * len(words)
    seen: set[tuple[str, ...]] = set()
    for i in range(len(words) - n + 1):
        gram = tuple(words[i : i + n])
        if gram in seen:
            for j in range(i, i + n):
                mask[j] = True
        seen.add(gram)
    return mask


def show_samples(results_dir: Path, cell: str | None, dataset: str | None, count: int, ngram: int) -> None:
    cells_dir = results_dir / "cells"
    if not cells_dir.is_dir():
        raise InputError(f"{results_dir}: not a results directory (no cells/)")
    folders = sorted(p for p in cells_dir.iterdir() if p.is_dir())
    if cell:
        folders = [p for p in folders if p.name == cell]
        if not folders:
            raise InputError(f"{results_dir}: no cell {cell!r}")
    console = Console()
    for folder in folders:
        records = read_jsonl(folder / "generations.jsonl")
        if dataset:
            records = [r for r in records if r.get("dataset") == dataset]
        console.rule(folder.name)
        for record in records[:count]:
            text = Text(f"[{record.get('prompt_id')}] ", style="bold")
            text.append(record.get("context_text", ""), style="dim")
            words = record.get("output_text", "").split(" ")
            for word, repeated in zip(words, repeated_word_mask(words, ngram)):
                text.append(word + " ", style="reverse red" if repeated else "")
            console.print(text)
            console.print()
