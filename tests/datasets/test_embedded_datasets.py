"""embedded-wikipedia and embedded-news read the corpora bundled in the gensim wheel (no network)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

import pytest

import harness_plugins.datasets as dataset_plugins
from harness.api import Dataset, Document
from harness.errors import InputError
from harness.params import resolve_params
from harness.registry import Registry, Source
from harness_plugins.datasets import embedded_wikipedia
from harness_plugins.datasets.embedded_fiction import EmbeddedFiction
from harness_plugins.datasets.embedded_news import EmbeddedNews
from harness_plugins.datasets.embedded_wikipedia import EmbeddedWikipedia
from harness_plugins.datasets.hf_datasets import HFTextDataset
from harness_plugins.datasets.local_files import LocalText
from harness_plugins.datasets.digits import Digits
from harness_plugins.datasets.fashion_mnist import FashionMNIST
from harness_plugins.datasets.hf_images import HFImages

ALL = (EmbeddedWikipedia, EmbeddedNews, EmbeddedFiction, LocalText, HFTextDataset)
IMAGES = (Digits, FashionMNIST, HFImages)  # tested in tests/image
EXPECTED_NEWS_DOCS = 300  # lee_background.cor: 300 lines, one article each
EXPECTED_NEWS_WORDS = 59_890


def make(cls, **given):
    config, problems = resolve_params(cls.params, given)
    assert not problems.items, problems.items
    return cls(config)


def test_hook_registers_all_dataset_classes() -> None:
    got = []
    dataset_plugins.harness_register_datasets(register=got.append)
    assert got == list(ALL + IMAGES)
    registry = Registry()
    for cls in got:
        registry.add("dataset", cls, Source("test"))
    assert sorted(registry.names("dataset")) == [
        "digits", "embedded-fiction", "embedded-news", "embedded-wikipedia", "fashion-mnist", "hf-images", "hf-text",
        "local-text",
    ]  # fmt: skip


@pytest.mark.parametrize("cls", ALL)
def test_plugin_metadata(cls) -> None:
    assert issubclass(cls, Dataset)
    assert cls.version == "1"
    assert cls.modality == "text"
    assert cls.description and "\n" not in cls.description
    for p in cls.params:
        p.describe()  # JSON-able schema


def test_import_is_cheap() -> None:
    code = (
        "import sys, harness_plugins.datasets;"
        "heavy = [m for m in ('torch', 'numpy', 'datasets', 'transformers', 'gensim') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_embedded_wikipedia_documents() -> None:
    start = time.perf_counter()
    docs = list(make(EmbeddedWikipedia).documents())
    elapsed = time.perf_counter() - start
    words = sum(len(d.text.split()) for d in docs)
    print(f"embedded-wikipedia: {len(docs)} documents, {words} words in {elapsed:.2f} s")
    assert len(docs) >= 90
    assert words > 300_000
    assert all(isinstance(d, Document) and d.id.startswith("enwiki:") for d in docs)
    assert len({d.id for d in docs}) == len(docs)
    assert docs[0].id == "enwiki:Anarchism"
    for d in docs:
        for marker in ("{{", "}}", "[[", "]]", "<ref", "'''", "{|", "File:", "http://", "=="):
            assert marker not in d.text, (d.id, marker)
        assert len(d.text.split()) >= 50
        assert "\n\n" not in d.text and d.text == d.text.strip()
    assert elapsed < 30  # a few seconds on a laptop


def test_embedded_wikipedia_min_words_and_order() -> None:
    all_docs = list(make(EmbeddedWikipedia, min_words=0).documents())
    long_docs = list(make(EmbeddedWikipedia, min_words=5000).documents())
    assert 0 < len(long_docs) < len(all_docs)
    assert all(len(d.text.split()) >= 5000 for d in long_docs)
    long_ids = [d.id for d in long_docs]
    assert long_ids == [d.id for d in all_docs if d.id in set(long_ids)]  # same deterministic order


def test_embedded_news_documents() -> None:
    start = time.perf_counter()
    docs = list(make(EmbeddedNews).documents())
    elapsed = time.perf_counter() - start
    words = sum(len(d.text.split()) for d in docs)
    print(f"embedded-news: {len(docs)} documents, {words} words in {elapsed:.3f} s")
    assert len(docs) == EXPECTED_NEWS_DOCS
    assert words == EXPECTED_NEWS_WORDS
    assert [d.id for d in docs] == [f"lee:{i}" for i in range(1, 301)]
    assert docs[0].text.startswith("Hundreds of people have been forced to vacate their homes")
    assert all("  " not in d.text and "\n" not in d.text for d in docs)


def test_embedded_news_min_words() -> None:
    docs = list(make(EmbeddedNews, min_words=300).documents())
    assert 0 < len(docs) < EXPECTED_NEWS_DOCS
    assert all(len(d.text.split()) >= 300 for d in docs)


@pytest.mark.parametrize("cls", [EmbeddedWikipedia, EmbeddedNews])
def test_missing_gensim_is_input_error(cls, monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        embedded_wikipedia.importlib.util, "find_spec", lambda name, *a: None if name == "gensim" else real(name, *a)
    )
    with pytest.raises(InputError, match=r"pip install --no-deps gensim==4\.4\.0"):
        list(make(cls).documents())


def test_missing_data_file_is_input_error(monkeypatch, tmp_path) -> None:
    fake = tmp_path / "gensim" / "__init__.py"
    fake.parent.mkdir()
    fake.write_text("")
    spec = importlib.util.spec_from_file_location("gensim", fake)
    monkeypatch.setattr(embedded_wikipedia.importlib.util, "find_spec", lambda name, *a: spec)
    with pytest.raises(InputError, match="embedded data file not found.*pip install --no-deps gensim"):
        list(make(EmbeddedWikipedia).documents())
