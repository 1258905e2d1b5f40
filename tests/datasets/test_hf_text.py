"""hf-text: errors for a missing `datasets` package / no network, and row handling with a fake module."""

from __future__ import annotations

import sys
import types

import pytest

from harness.errors import InputError
from harness.params import resolve_params
from harness_plugins.datasets.hf_datasets import HFTextDataset, is_wikitext_heading, is_wikitext_title


def make(**given) -> HFTextDataset:
    config, problems = resolve_params(HFTextDataset.params, given)
    assert not problems.items, problems.items
    return HFTextDataset(config)


class FakeSplit(list):
    column_names = ["text", "label"]


def install_fake_datasets(monkeypatch, rows=None, error: Exception | None = None) -> list:
    calls: list = []
    module = types.ModuleType("datasets")

    def load_dataset(path, name=None, **kwargs):
        calls.append((path, name, kwargs))
        if error is not None:
            raise error
        return FakeSplit({"text": r, "label": 0} for r in rows)

    module.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", module)
    return calls


def test_missing_datasets_package(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(InputError, match="pip install datasets"):
        list(make(path="wikitext", name="wikitext-103-raw-v1").documents())


def test_no_network_is_input_error(monkeypatch) -> None:
    install_fake_datasets(monkeypatch, error=ConnectionError("Couldn't reach 'wikitext' on the Hub (LocalEntryNotFoundError)"))
    with pytest.raises(InputError) as info:
        list(make(path="wikitext", name="wikitext-103-raw-v1", revision="abc").documents())
    message = str(info.value)
    assert "'wikitext'" in message and "could not be loaded" in message
    assert "HF_DATASETS_OFFLINE" in message and "local" in message and "network" in message


def test_rows_min_words_max_documents(monkeypatch) -> None:
    rows = ["one two three", "", "a b c d e", "x y z w v u", "p q r s t"]
    calls = install_fake_datasets(monkeypatch, rows=rows)
    got = list(make(path="some/data", split="validation", min_words=4, max_documents=2).documents())
    assert [(d.id, d.text) for d in got] == [("validation:2", "a b c d e"), ("validation:3", "x y z w v u")]
    assert calls == [("some/data", None, {"split": "validation"})]


def test_missing_text_column(monkeypatch) -> None:
    install_fake_datasets(monkeypatch, rows=["x"])
    with pytest.raises(InputError, match="no column 'body'.*text, label"):
        list(make(path="d", text_field="body").documents())


WIKITEXT_ROWS = [
    "",
    " = Valkyria Chronicles III = \n",
    "",
    " Senjō no Valkyria 3 is a tactical role @-@ playing game . \n",
    " = = Gameplay = = \n",
    " The game plays like its predecessors . \n",
    " = = = Details = = = \n",
    " More words here . \n",
    " = Tower Building = \n",
    " The tower is tall . \n",
]


def test_wikitext_heading_patterns() -> None:
    assert is_wikitext_title(" = Valkyria Chronicles III = \n")
    assert not is_wikitext_title(" = = Gameplay = = \n")
    assert is_wikitext_heading(" = = = Details = = = \n") and is_wikitext_heading(" = A = ")
    assert not is_wikitext_heading(" a = b is an equation . ")


def test_wikitext_articles(monkeypatch) -> None:
    install_fake_datasets(monkeypatch, rows=WIKITEXT_ROWS)
    got = list(make(path="wikitext", name="wikitext-2-raw-v1", min_words=0, wikitext_articles=True).documents())
    assert [(d.id, d.text) for d in got] == [
        (
            "train:1",
            "Senjō no Valkyria 3 is a tactical role @-@ playing game .\n"
            "The game plays like its predecessors .\nMore words here .",
        ),
        ("train:8", "The tower is tall ."),
    ]


def test_wikitext_rows_without_grouping(monkeypatch) -> None:
    install_fake_datasets(monkeypatch, rows=WIKITEXT_ROWS)
    got = list(make(path="wikitext", min_words=6).documents())
    # rows are documents as they are: a long heading row counts like any other row
    assert [d.id for d in got] == ["train:3", "train:5", "train:6"]
