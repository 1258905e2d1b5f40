"""``hf-text``: a text column of a Hugging Face ``datasets`` dataset (hub or local cache).

Needs the optional ``datasets`` package (``pip install datasets``), imported only when documents are
read. Documents are rows in dataset order with id ``<split>:<row index>``; rows whose text has fewer
than ``min_words`` words are skipped, and at most ``max_documents`` documents are yielded.

WikiText (``path: wikitext``) stores one *line* per row: article titles (``" = Title = "``), section
headings (``" = = Section = = "``), paragraphs and empty rows. With ``wikitext_articles: true`` the rows
are regrouped into articles: a new document starts at each top-level heading row, the following
non-heading, non-empty rows are joined with ``"\\n"`` (section headings are dropped), and the id is
``<split>:<row index of the title>``. ``min_words`` then applies to whole articles.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Iterator

from harness.api import Dataset, Document, InputError, Param

#: a WikiText top-level title row: " = Title = " (but not " = = Section = = ")
_WIKITEXT_TITLE = re.compile(r"^\s*=\s+(?!=)(.*?[^=\s])\s+=\s*$")
_WIKITEXT_HEADING = re.compile(r"^\s*(=\s+)+.*?(\s+=)+\s*$")


def is_wikitext_title(row_text: str) -> bool:
    return _WIKITEXT_TITLE.match(row_text) is not None


def is_wikitext_heading(row_text: str) -> bool:
    return _WIKITEXT_HEADING.match(row_text) is not None


class HFTextDataset(Dataset):
    """Documents from one split/column of a Hugging Face dataset (optional dependency ``datasets``)."""

    name = "hf-text"
    description = (
        "A text column of a Hugging Face dataset via datasets.load_dataset (e.g. wikitext); "
        "needs `pip install datasets` and network or a cached copy"
    )
    version = "1"
    requires_packages = ("datasets",)
    modality = "text"
    params = (
        Param("path", str, help='dataset path or hub id, e.g. "wikitext"'),
        Param("name", str, default=None, help='dataset configuration, e.g. "wikitext-103-raw-v1"'),
        Param("split", str, default="train", help="which split to read"),
        Param("text_field", str, default="text", help="the column that holds the text"),
        Param("revision", str, default=None, help="a hub revision (tag, branch or commit) to pin"),
        Param("min_words", int, default=20, min=0, help="skip documents with fewer whitespace-separated words"),
        Param("max_documents", int, default=None, min=1, help="stop after this many documents (default: all)"),
        Param(
            "wikitext_articles",
            bool,
            default=False,
            help='WikiText rows are lines: join them into articles split at " = Title = " rows',
        ),
    )

    def _describe_source(self) -> str:
        parts = [repr(self.option("path"))]
        if self.option("name"):
            parts.append(f"name={self.option('name')!r}")
        parts.append(f"split={self.option('split')!r}")
        if self.option("revision"):
            parts.append(f"revision={self.option('revision')!r}")
        return ", ".join(parts)

    def _load(self) -> Any:
        return load_hub_split(
            self,
            source=self._describe_source(),
            install_hint="pip install datasets (or use the offline datasets embedded-wikipedia, embedded-news or local-text)",
            offline_hint="There may be no network access to the Hugging Face hub: set HF_DATASETS_OFFLINE=1 to use a "
            "cached copy, or use a local dataset (local-text, embedded-wikipedia, embedded-news)",
        )

    def documents(self) -> Iterator[Document]:
        data = self._load()
        text_field = self.option("text_field")
        columns = getattr(data, "column_names", None)
        if columns is not None and text_field not in columns:
            raise InputError(
                f"{self.name}: dataset {self._describe_source()} has no column {text_field!r} "
                f"(columns: {', '.join(map(str, columns))}); set text_field"
            )
        split = self.option("split")
        rows = ((i, row.get(text_field) if isinstance(row, dict) else None) for i, row in enumerate(data))
        if self.option("wikitext_articles"):
            items = self._wikitext_articles(rows)
        else:
            items = ((i, (text or "").strip()) for i, text in rows)
        yield from self._emit(items, split)

    @staticmethod
    def _wikitext_articles(rows: Iterable[tuple[int, Any]]) -> Iterator[tuple[int, str]]:
        start = 0
        lines: list[str] = []
        for index, text in rows:
            text = text or ""
            if is_wikitext_title(text):
                if lines:
                    yield start, "\n".join(lines)
                start, lines = index, []
                continue
            if is_wikitext_heading(text) or not text.strip():
                continue
            lines.append(text.strip())
        if lines:
            yield start, "\n".join(lines)

    def _emit(self, items: Iterable[tuple[int, str]], split: str) -> Iterator[Document]:
        min_words = self.option("min_words")
        limit = self.option("max_documents")
        seen: set[str] = set()
        for index, text in items:
            if limit is not None and len(seen) >= limit:
                return
            if not text or len(text.split()) < min_words:
                continue
            doc_id = f"{split}:{index}"
            if doc_id in seen:  # pragma: no cover - row indexes are unique
                raise InputError(f"{self.name}: duplicate document id {doc_id}")
            seen.add(doc_id)
            yield Document(doc_id, text)


def load_hub_split(plugin: Dataset, source: str, install_hint: str, offline_hint: str) -> Any:
    """``datasets.load_dataset(path, name, split=, revision=)`` from the plugin's params, every failure an InputError.

    Shared by the hub text and image datasets; the hints name the offline alternatives of each.
    """
    try:
        import datasets  # optional dependency
    except ImportError:
        raise InputError(f"{plugin.name}: the Hugging Face `datasets` package is not installed; {install_hint}") from None
    kwargs: dict[str, Any] = {"split": plugin.option("split")}
    if plugin.option("revision"):
        kwargs["revision"] = plugin.option("revision")
    try:
        return datasets.load_dataset(plugin.option("path"), plugin.option("name"), **kwargs)
    except Exception as exc:  # no network, unknown dataset, missing cache, bad split ...
        raise InputError(
            f"{plugin.name}: dataset {source} could not be loaded: {type(exc).__name__}: {exc}. {offline_hint}"
        ) from None
