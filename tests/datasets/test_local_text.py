"""local-text: .txt (three split modes), .jsonl and folders of .txt files, and every error case."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.api import Document
from harness.errors import InputError
from harness.params import resolve_params
from harness_plugins.datasets.local_files import LocalText


def make(**given) -> LocalText:
    config, problems = resolve_params(LocalText.params, given)
    assert not problems.items, problems.items
    return LocalText(config)


def docs(**given) -> list[tuple[str, str]]:
    return [(d.id, d.text) for d in make(**given).documents()]


TXT = "First doc line one.\nline two.\n\n\n  Second doc.  \n \nThird\n"


def test_txt_blank_line_split(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text(TXT)
    assert docs(path=str(f)) == [("1", "First doc line one.\nline two."), ("5", "Second doc."), ("7", "Third")]


def test_txt_line_split(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text(TXT)
    assert docs(path=str(f), split="line") == [
        ("1", "First doc line one."),
        ("2", "line two."),
        ("5", "Second doc."),
        ("7", "Third"),
    ]


def test_txt_file_split_and_crlf_bom(tmp_path: Path) -> None:
    f = tmp_path / "whole.txt"
    f.write_bytes("\ufeffA\r\n\r\nB\r\n".encode("utf-8"))
    assert docs(path=str(f), split="file") == [("whole.txt", "A\n\nB")]
    assert docs(path=str(f)) == [("1", "A"), ("3", "B")]


def test_jsonl_default_ids(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "alpha"}\n\n{"text": " beta ", "x": 1}\n{"text": "   "}\n')
    result = list(make(path=str(f)).documents())
    assert result == [Document("1", "alpha"), Document("3", "beta")]


def test_jsonl_custom_fields(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text('{"body": "alpha", "key": "k1"}\n{"body": "beta", "key": 7}\n')
    assert docs(path=str(f), text_field="body", id_field="key") == [("k1", "alpha"), ("7", "beta")]


def test_directory_of_txt_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("bee\n")
    (tmp_path / "a.txt").write_text("ay\n\nstill ay")
    (tmp_path / "sub" / "c.txt").write_text("sea")
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "skip.md").write_text("not a txt")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "h.txt").write_text("hidden")
    assert docs(path=str(tmp_path)) == [("a.txt", "ay\n\nstill ay"), ("b.txt", "bee"), ("sub/c.txt", "sea")]


def test_relative_path_uses_cwd_then_base_dir(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "r.txt").write_text("from cwd")
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "r.txt").write_text("from base")
    monkeypatch.chdir(tmp_path / "cwd")
    assert docs(path="r.txt") == [("1", "from cwd")]
    ds = make(path="r.txt")
    ds.base_dir = tmp_path / "base"
    assert [(d.id, d.text) for d in ds.documents()] == [("1", "from base")]
    monkeypatch.setattr(LocalText, "base_dir", tmp_path / "base")
    assert docs(path="r.txt") == [("1", "from base")]


def test_missing_path_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(InputError, match="path not found") as info:
        list(make(path=str(missing)).documents())
    assert str(missing) in str(info.value)


def test_bad_json_line_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text('{"text": "ok"}\n{"text": broken}\n')
    with pytest.raises(InputError, match="invalid JSON") as info:
        list(make(path=str(f)).documents())
    assert f"{f}:2" in str(info.value)


def test_jsonl_not_an_object(tmp_path: Path) -> None:
    f = tmp_path / "list.jsonl"
    f.write_text('["text"]\n')
    with pytest.raises(InputError, match=r"list\.jsonl:1: expected a JSON object"):
        list(make(path=str(f)).documents())


def test_missing_text_field_names_file_line_and_field(tmp_path: Path) -> None:
    f = tmp_path / "nofield.jsonl"
    f.write_text('{"text": "ok"}\n{"body": "x"}\n')
    with pytest.raises(InputError, match="missing text field 'text'") as info:
        list(make(path=str(f)).documents())
    assert f"{f}:2" in str(info.value) and "body" in str(info.value)


def test_text_field_not_a_string(tmp_path: Path) -> None:
    f = tmp_path / "num.jsonl"
    f.write_text('{"text": 5}\n')
    with pytest.raises(InputError, match=r"num\.jsonl:1: field 'text' must be a string"):
        list(make(path=str(f)).documents())


def test_missing_id_field(tmp_path: Path) -> None:
    f = tmp_path / "noid.jsonl"
    f.write_text('{"text": "a", "id": "x"}\n{"text": "b"}\n')
    with pytest.raises(InputError, match=r"noid\.jsonl:2: missing id field 'id'"):
        list(make(path=str(f), id_field="id").documents())


def test_duplicate_ids(tmp_path: Path) -> None:
    f = tmp_path / "dup.jsonl"
    f.write_text('{"text": "a", "id": "x"}\n{"text": "b", "id": "x"}\n')
    with pytest.raises(InputError, match=r"dup\.jsonl:2: duplicate document id 'x'.*dup\.jsonl:1"):
        list(make(path=str(f), id_field="id").documents())


def test_not_utf8(tmp_path: Path) -> None:
    f = tmp_path / "latin.txt"
    f.write_bytes(b"caf\xe9\n")
    with pytest.raises(InputError, match=r"latin\.txt: not UTF-8"):
        list(make(path=str(f)).documents())


def test_directory_without_txt_files(tmp_path: Path) -> None:
    (tmp_path / "x.md").write_text("x")
    with pytest.raises(InputError, match="no .txt files") as info:
        list(make(path=str(tmp_path)).documents())
    assert str(tmp_path) in str(info.value)


def test_params_schema() -> None:
    _, problems = resolve_params(LocalText.params, {})
    assert [name for name, _ in problems.items] == ["path"]
    _, problems = resolve_params(LocalText.params, {"path": "x", "split": "paragraph"})
    assert [name for name, _ in problems.items] == ["split"]
