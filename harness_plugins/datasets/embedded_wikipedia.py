"""``embedded-wikipedia``: the English Wikipedia excerpt that ships inside the gensim 4.4.0 wheel.

The file ``gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2``
(an April 2016 dump excerpt, CC BY-SA) is located with ``importlib.util.find_spec`` (gensim itself is
never imported; installing it with ``pip install --no-deps gensim==4.4.0`` is enough), streamed through
bz2 + ``xml.etree.ElementTree.iterparse`` and cleaned with :mod:`harness_plugins.datasets._wiki_markup`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Iterator

from harness.api import Dataset, Document, InputError, Param

WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
INSTALL_HINT = "install the embedded data: pip install --no-deps gensim==4.4.0"


def gensim_data_file(filename: str) -> Path:
    """Path of a file in gensim's ``test/test_data`` folder, without importing gensim."""
    try:
        spec = importlib.util.find_spec("gensim")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        raise InputError(f"the gensim package (which carries the embedded corpus {filename}) is not installed; {INSTALL_HINT}")
    path = Path(spec.origin).parent / "test" / "test_data" / filename
    if not path.is_file():
        raise InputError(f"embedded data file not found: {path}; {INSTALL_HINT}")
    return path


def _local(tag: str) -> str:
    """Tag name without its XML namespace ("{http://…}page" → "page")."""
    return tag.rsplit("}", 1)[-1]


def iter_wiki_pages(path: Path) -> Iterator[tuple[str, str, bool, str]]:
    """Yield ``(title, namespace, is_redirect, wikitext)`` for each ``<page>`` of a bz2 XML dump."""
    import bz2
    import xml.etree.ElementTree as ET

    with bz2.open(path, "rb") as fh:
        context = ET.iterparse(fh, events=("start", "end"))
        root = None
        for event, elem in context:
            if root is None and event == "start":
                root = elem
            if event != "end" or _local(elem.tag) != "page":
                continue
            title, ns, redirect, text = "", "", False, ""
            for child in elem.iter():
                name = _local(child.tag)
                if name == "title" and not title:
                    title = (child.text or "").strip()
                elif name == "ns" and not ns:
                    ns = (child.text or "").strip()
                elif name == "redirect":
                    redirect = True
                elif name == "text":
                    text = child.text or ""
            yield title, ns, redirect, text
            elem.clear()
            if root is not None:
                root.clear()  # drop finished pages so memory stays flat


def _is_redirect_text(text: str) -> bool:
    return text.lstrip()[:9].upper() == "#REDIRECT"


class EmbeddedWikipedia(Dataset):
    """Plain-prose Wikipedia articles from the excerpt bundled in the gensim wheel (no network)."""

    name = "embedded-wikipedia"
    description = (
        "~100 English Wikipedia articles (2016 dump excerpt, CC BY-SA) read from the gensim 4.4.0 wheel, "
        "wiki markup cleaned to plain prose; offline"
    )
    version = "1"
    requires_packages = ("gensim",)
    modality = "text"
    params = (
        Param("min_words", int, default=50, min=0, help="skip articles with fewer whitespace-separated words after cleaning"),
    )

    def documents(self) -> Iterator[Document]:
        from harness_plugins.datasets._wiki_markup import clean_wikitext

        path = gensim_data_file(WIKI_FILE)
        min_words = self.option("min_words")
        seen: set[str] = set()
        for title, ns, redirect, wikitext in iter_wiki_pages(path):
            if ns not in ("0", "") or redirect or not title or _is_redirect_text(wikitext):
                continue
            if ns == "" and ":" in title:  # no <ns> element: fall back to the title prefix
                continue
            text = clean_wikitext(wikitext)
            if len(text.split()) < min_words:
                continue
            doc_id = f"enwiki:{title}"
            if doc_id in seen:
                raise InputError(f"{path}: duplicate article title {title!r}")
            seen.add(doc_id)
            yield Document(doc_id, text)
