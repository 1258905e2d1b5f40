"""``embedded-fiction``: chapters of Jane Austen's *Persuasion* and *Northanger Abbey*, vendored in this package.

The paper hyperfits on fiction (Fiction-Stories, not reachable offline); this is the offline stand-in for the
fiction domain of the data-type ablation. ``data/austen/<novel>.txt.gz`` holds one novel each, made by
``scripts/extract_austen.py`` from Debian's ``r-cran-janeaustenr`` (Project Gutenberg texts, public domain;
provenance in ``data/austen/README.md``): a line ``CHAPTER <n>`` opens chapter ``n`` (counted 1, 2, …
through the novel), then one paragraph per line.

Documents are whole chapters, id ``<novel>/ch<n>``; paragraphs are joined by ``"\\n"``. With
``passage_words > 0`` each chapter is cut at paragraph boundaries into passages of at least that many words
(a short remainder joins the passage before it), id ``<novel>/ch<n>/p<k>``: more, shorter documents, hence
more held-out contexts (each document gives at most one).
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterator

from harness.api import Dataset, Document, InputError, Param, did_you_mean

DATA_DIR = Path(__file__).resolve().parent / "data" / "austen"
#: the vendored novels, in the order documents are yielded
NOVELS = ("persuasion", "northanger-abbey")
_CHAPTER = "CHAPTER "


def read_chapters(novel: str) -> list[list[str]]:
    """The paragraphs of each chapter of one vendored novel."""
    path = DATA_DIR / f"{novel}.txt.gz"
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read the embedded fiction file {path}: {exc}; reinstall hyperfit-harness") from None
    chapters: list[list[str]] = []
    for line in lines:
        if line.startswith(_CHAPTER) and line[len(_CHAPTER) :].isdigit():
            if int(line[len(_CHAPTER) :]) != len(chapters) + 1:
                raise InputError(f"{path}: chapters out of order at {line!r}")
            chapters.append([])
        elif line.strip():
            if not chapters:
                raise InputError(f"{path}: text before the first CHAPTER line")
            chapters[-1].append(line.strip())
    return chapters


def passages(paragraphs: list[str], min_words: int) -> list[list[str]]:
    """Group consecutive paragraphs into runs of at least ``min_words`` words; a short tail joins the last run."""
    runs: list[list[str]] = []
    current: list[str] = []
    words = 0
    for paragraph in paragraphs:
        current.append(paragraph)
        words += len(paragraph.split())
        if words >= min_words:
            runs.append(current)
            current, words = [], 0
    if current:
        if runs:
            runs[-1].extend(current)
        else:
            runs.append(current)
    return runs


class EmbeddedFiction(Dataset):
    """Austen chapters (or passages of them) from the corpus vendored with the bundled plugins (no network)."""

    name = "embedded-fiction"
    description = "Jane Austen's Persuasion and Northanger Abbey (public domain), one document per chapter or passage; offline"
    version = "1"
    modality = "text"
    params = (
        Param("novels", list, default=None, help=f"which novels, any of {', '.join(NOVELS)} (default: all, in that order)"),
        Param(
            "passage_words",
            int,
            default=0,
            min=0,
            help="0: one document per chapter; N > 0: cut chapters at paragraph breaks into passages of at least N words",
        ),
    )

    def selected_novels(self) -> list[str]:
        chosen = self.option("novels")
        if chosen is None:
            return list(NOVELS)
        if not chosen:
            raise InputError(f"{self.name}: novels is empty; choose from {', '.join(NOVELS)}")
        for novel in chosen:
            if novel not in NOVELS:
                raise InputError(f"{self.name}: unknown novel {novel!r}" + did_you_mean(str(novel), NOVELS))
        if len(set(chosen)) != len(chosen):
            raise InputError(f"{self.name}: novels lists a novel twice: {chosen}")
        return list(chosen)

    def documents(self) -> Iterator[Document]:
        min_words = self.option("passage_words")
        for novel in self.selected_novels():
            for number, paragraphs in enumerate(read_chapters(novel), start=1):
                if not min_words:
                    yield Document(f"{novel}/ch{number}", "\n".join(paragraphs))
                    continue
                for k, run in enumerate(passages(paragraphs, min_words), start=1):
                    yield Document(f"{novel}/ch{number}/p{k}", "\n".join(run))
