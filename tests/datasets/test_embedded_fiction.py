"""embedded-fiction: the vendored Austen chapters, their ids, passages, novel selection and validation."""

from __future__ import annotations

import gzip
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_benchmark, write_yaml
from harness_plugins.datasets import embedded_fiction
from harness_plugins.datasets.embedded_fiction import NOVELS, EmbeddedFiction, passages, read_chapters

from harness.config import load_benchmark
from harness.errors import ConfigError, InputError
from harness.params import resolve_params
from harness.plugin_manager import PluginOptions, load_plugins

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = {"persuasion": 24, "northanger-abbey": 31}
WORDS = {"persuasion": 83_229, "northanger-abbey": 76_866}  # as printed by scripts/extract_austen.py


def make(**given) -> EmbeddedFiction:
    config, problems = resolve_params(EmbeddedFiction.params, given)
    assert not problems.items, problems.items
    return EmbeddedFiction(config)


def test_chapters_ids_and_text() -> None:
    docs = list(make().documents())
    expected_ids = [f"{novel}/ch{n}" for novel in NOVELS for n in range(1, CHAPTERS[novel] + 1)]
    assert [d.id for d in docs] == expected_ids
    for novel in NOVELS:
        words = sum(len(d.text.split()) for d in docs if d.id.startswith(novel + "/"))
        assert words == WORDS[novel]
    assert docs[0].text.startswith("Sir Walter Elliot, of Kellynch Hall, in Somersetshire, was a man who,")
    northanger = docs[CHAPTERS["persuasion"]]
    assert northanger.text.startswith("No one who had ever seen Catherine Morland in her infancy")
    assert docs[-1].text.endswith("Rambler.")  # Austen's own footnote stays, the modern editor's note does not
    for d in docs:
        assert d.text == d.text.strip() and "\n\n" not in d.text and "  " not in d.text
        assert "CHAPTER" not in d.text and "Signet" not in d.text and "ADVERTISEMENT" not in d.text
        assert len(d.text.split()) > 1000  # every chapter is long enough for a 256-token window


def test_novel_selection_keeps_the_given_order() -> None:
    only = [d.id for d in make(novels=["northanger-abbey"]).documents()]
    assert only == [f"northanger-abbey/ch{n}" for n in range(1, 32)]
    both = [d.id for d in make(novels=["northanger-abbey", "persuasion"]).documents()]
    assert both[:31] == only and both[31] == "persuasion/ch1"


@pytest.mark.parametrize(
    ("novels", "message"),
    [
        (["persuasian"], r'unknown novel .persuasian. \(did you mean "persuasion"\?\)'),
        ([], "novels is empty"),
        (["persuasion", "persuasion"], "lists a novel twice"),
    ],
)
def test_bad_novels_are_input_errors(novels, message) -> None:
    with pytest.raises(InputError, match=message):
        list(make(novels=novels).documents())


def test_passages_cover_each_chapter_exactly() -> None:
    chapters = {d.id: d.text for d in make(novels=["persuasion"]).documents()}
    parts = list(make(novels=["persuasion"], passage_words=300).documents())
    assert len(parts) > 4 * len(chapters)
    assert len({p.id for p in parts}) == len(parts)
    for chapter_id, text in chapters.items():
        mine = [p for p in parts if p.id.startswith(chapter_id + "/p")]
        assert [p.id for p in mine] == [f"{chapter_id}/p{k}" for k in range(1, len(mine) + 1)]
        assert "\n".join(p.text for p in mine) == text
        assert all(len(p.text.split()) >= 300 for p in mine)


def test_passages_grouping_rule() -> None:
    paragraphs = ["a b", "c d e", "f", "g h i j", "k"]
    assert passages(paragraphs, 3) == [["a b", "c d e"], ["f", "g h i j", "k"]]  # short tail joins the last run
    assert passages(paragraphs, 100) == [paragraphs]
    assert passages(["x"], 5) == [["x"]]


def test_vendored_files_match_the_extractor_format() -> None:
    """The plugin's reader and the extraction script agree: re-rendering a file gives it back byte for byte."""
    spec = importlib.util.spec_from_file_location("extract_austen", ROOT / "scripts" / "extract_austen.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert tuple(script.NOVELS) == NOVELS
    for novel in NOVELS:
        path = embedded_fiction.DATA_DIR / f"{novel}.txt.gz"
        assert path.stat().st_size < 200_000
        assert gzip.decompress(path.read_bytes()).decode("utf-8") == script.render(read_chapters(novel))
    # the chapter splitter on a miniature novel: front matter, volumes, wrapped lines, the end mark
    raw = ["EMMA", "", "VOLUME I", "", "CHAPTER I", "", "One  two", "three.", "", "Four.", "", "VOLUME II",
           "CHAPTER I", "Five.", "", "THE END", "", "A note."]  # fmt: skip
    assert script.chapters(raw) == [["One two three.", "Four."], ["Five."]]


def test_broken_data_file_is_input_error(tmp_path, monkeypatch) -> None:
    (tmp_path / "persuasion.txt.gz").write_bytes(b"not gzip")
    monkeypatch.setattr(embedded_fiction, "DATA_DIR", tmp_path)
    with pytest.raises(InputError, match="cannot read the embedded fiction file"):
        list(make(novels=["persuasion"]).documents())
    with pytest.raises(InputError, match="cannot read the embedded fiction file"):
        list(make(novels=["northanger-abbey"]).documents())  # missing


def test_benchmark_validation(tmp_path) -> None:
    plugins = load_plugins(PluginOptions()).registry
    bench = tiny_benchmark(tmp_path)
    bench["datasets"]["fiction"] = {"plugin": "embedded-fiction", "novels": ["persuasion"], "passage_words": 200}
    bench["eval"]["datasets"] = ["fiction"]
    bench["models"] = {"m": {"loader": "hf-causal-lm", "id": "x/y"}}
    load_benchmark(write_yaml(tmp_path / "ok.yaml", bench), plugins)
    bench["datasets"]["fiction"] = {"plugin": "embedded-fiction", "novels": "persuasion", "passage_words": -1}
    with pytest.raises(ConfigError) as info:
        load_benchmark(write_yaml(tmp_path / "bad.yaml", bench), plugins)
    text = str(info.value)
    assert "datasets.fiction.novels" in text and "expected list" in text
    assert "datasets.fiction.passage_words" in text and "at least 0" in text


def test_data_files_are_package_data() -> None:
    """pyproject's package-data globs (as setuptools reads them) pick up every vendored file."""
    from setuptools.config.pyprojecttoml import read_configuration

    config = read_configuration(ROOT / "pyproject.toml")["tool"]["setuptools"]
    package_dir = ROOT / config["package-dir"]["harness_plugins"] / "datasets"
    shipped = {p for pattern in config["package-data"]["harness_plugins.datasets"] for p in package_dir.glob(pattern)}
    wanted = {embedded_fiction.DATA_DIR / f"{novel}.txt.gz" for novel in NOVELS} | {embedded_fiction.DATA_DIR / "README.md"}
    assert wanted <= shipped


def test_import_stays_cheap() -> None:
    code = "import sys, harness_plugins.datasets.embedded_fiction; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
