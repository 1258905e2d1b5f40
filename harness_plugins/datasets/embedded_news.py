"""``embedded-news``: the Lee news corpus (300 ABC news articles) that ships inside the gensim 4.4.0 wheel.

``gensim/test/test_data/lee_background.cor`` holds one article per line (Lee, Pincombe & Welsh 2005,
Australian Broadcasting Corporation news). gensim is located, never imported.
"""

from __future__ import annotations

import re
from typing import Iterator

from harness.api import Dataset, Document, InputError, Param

NEWS_FILE = "lee_background.cor"
_SPACE = re.compile(r"\s+")


class EmbeddedNews(Dataset):
    """One document per line of ``lee_background.cor``; id ``lee:<1-based line number>``."""

    name = "embedded-news"
    description = "300 ABC news articles (Lee et al. 2005 corpus) read from the gensim 4.4.0 wheel; offline"
    version = "1"
    requires_packages = ("gensim",)
    modality = "text"
    params = (
        Param("min_words", int, default=20, min=0, help="skip articles with fewer whitespace-separated words"),
    )

    def documents(self) -> Iterator[Document]:
        from harness_plugins.datasets.embedded_wikipedia import gensim_data_file

        path = gensim_data_file(NEWS_FILE)
        min_words = self.option("min_words")
        try:
            content = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise InputError(f"cannot read embedded news corpus {path}: {exc}") from None
        seen: set[str] = set()
        for number, line in enumerate(content.splitlines(), start=1):
            text = _SPACE.sub(" ", line).strip()
            if not text or len(text.split()) < min_words:
                continue
            doc_id = f"lee:{number}"
            if doc_id in seen:  # pragma: no cover - line numbers are unique by construction
                raise InputError(f"{path}: duplicate document id {doc_id}")
            seen.add(doc_id)
            yield Document(doc_id, text)
