"""Atomic writes, content keys and the stage cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.store import (
    StageCache,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    canonical_json,
    content_key,
    default_cache_dir,
    read_json,
    read_jsonl,
)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith("."))


# --------------------------------------------------------------------------- atomic writes


def test_atomic_writes_round_trip_and_leave_no_temp_files(tmp_path: Path):
    target = tmp_path / "deep" / "er" / "file.bin"
    atomic_write_bytes(target, b"\x00\x01abc")
    assert target.read_bytes() == b"\x00\x01abc"
    atomic_write_text(tmp_path / "t.txt", "héllo\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo\n"
    atomic_write_json(tmp_path / "j.json", {"b": [1, 2.5, None], "a": "ü"})
    assert read_json(tmp_path / "j.json") == {"b": [1, 2.5, None], "a": "ü"}
    rows = [{"i": i, "text": f"line {i}\nwith newline"} for i in range(3)]
    atomic_write_jsonl(tmp_path / "r.jsonl", rows)
    assert read_jsonl(tmp_path / "r.jsonl") == rows
    assert len((tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()) == 3
    # overwrite replaces the content completely
    atomic_write_text(tmp_path / "t.txt", "x")
    assert (tmp_path / "t.txt").read_text() == "x"
    assert leftovers(tmp_path) == []


def test_atomic_write_failure_keeps_old_file_and_removes_temp(tmp_path: Path):
    target = tmp_path / "keep.txt"
    atomic_write_text(target, "old content")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_text() == "old content"
    assert leftovers(tmp_path) == []


def test_atomic_write_interrupted_by_keyboard_interrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    target = tmp_path / "keep.json"
    atomic_write_json(target, {"v": 1})

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", boom)
        with pytest.raises(KeyboardInterrupt):
            atomic_write_json(target, {"v": 2})
    assert read_json(target) == {"v": 1}
    assert leftovers(tmp_path) == []


def test_read_jsonl_skips_blank_lines(tmp_path: Path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n  \n{"a": 2}\n', encoding="utf-8")
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]


# --------------------------------------------------------------------------- keys


def test_content_key_stable_and_short():
    key = content_key("fit", {"lr": 1e-6, "epochs": 20}, [1, 2, 3], 0)
    assert key == content_key("fit", {"lr": 1e-6, "epochs": 20}, [1, 2, 3], 0)
    assert len(key) == 20 and all(c in "0123456789abcdef" for c in key)


def test_content_key_ignores_dict_key_order():
    a = {"plugin": "top-p", "params": {"p": 0.9, "temperature": 0.7, "top_k": 50}}
    b = {"params": {"top_k": 50, "temperature": 0.7, "p": 0.9}, "plugin": "top-p"}
    assert content_key("x", a) == content_key("x", b)
    assert canonical_json(a) == canonical_json(b)


def test_content_key_is_sensitive_to_order_values_and_types():
    base = content_key("generate", ["wiki/1", "wiki/2"])
    assert base != content_key("generate", ["wiki/2", "wiki/1"])
    assert content_key("a", "b") != content_key("b", "a")
    assert content_key(1) != content_key("1")
    assert content_key(1) != content_key(1.5)
    assert content_key({"p": 0.9}) != content_key({"p": 0.8})
    assert content_key("a", "b") != content_key(["a", "b"])
    assert content_key(None) != content_key()


def test_default_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("HARNESS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "hyperfit-harness"


# --------------------------------------------------------------------------- stage cache


def test_stage_cache_get_put_drop(tmp_path: Path):
    cache = StageCache(tmp_path / "cache")
    assert cache.get("generate", "k1") is None
    value = [{"prompt_id": "wiki/1", "output_ids": [3, 4], "step_entropy": [0.5, 0.25]}]
    cache.put("generate", "k1", value)
    assert cache.path("generate", "k1") == tmp_path / "cache" / "stages" / "generate" / "k1.json"
    assert cache.get("generate", "k1") == value
    assert cache.get("score", "k1") is None, "stages are separate namespaces"
    # stored canonically (sorted keys, compact)
    assert cache.path("generate", "k1").read_text(encoding="utf-8") == canonical_json(value)
    cache.put("generate", "k1", {"new": True})
    assert cache.get("generate", "k1") == {"new": True}
    cache.drop("generate", "k1")
    assert cache.get("generate", "k1") is None
    cache.drop("generate", "k1")  # dropping twice is fine
    assert leftovers(tmp_path) == []


def test_stage_cache_discards_a_corrupt_file(tmp_path: Path):
    cache = StageCache(tmp_path)
    path = cache.path("score", "bad")
    path.parent.mkdir(parents=True)
    path.write_text('{"value": 0.5', encoding="utf-8")
    assert cache.get("score", "bad") is None
    assert not path.exists()
    path.write_bytes(b"\xff\xfe\x00")
    assert cache.get("score", "bad") is None


def test_stage_cache_never_reads_temp_files(tmp_path: Path):
    """A temp file a killed writer left behind is not the stage's file."""
    cache = StageCache(tmp_path)
    folder = cache.path("generate", "k").parent
    folder.mkdir(parents=True)
    (folder / ".k.json.abc123.tmp").write_text('{"half": ', encoding="utf-8")
    assert cache.get("generate", "k") is None


def test_commit_directory_moves_staging_into_place(tmp_path: Path):
    cache = StageCache(tmp_path / "c")
    final = cache.directory("fits", "key1")
    assert final == tmp_path / "c" / "fits" / "key1"
    assert not final.exists()
    staging = cache.staging_directory("fits", "key1")
    assert staging.is_dir() and staging.name.startswith(".") and staging != final
    (staging / "weights.bin").write_bytes(b"v1")
    assert cache.commit_directory("fits", "key1", staging) == final
    assert (final / "weights.bin").read_bytes() == b"v1"
    assert not staging.exists()

    # a second commit replaces the old directory entirely
    staging = cache.staging_directory("fits", "key1")
    (staging / "other.bin").write_bytes(b"v2")
    cache.commit_directory("fits", "key1", staging)
    assert sorted(p.name for p in final.iterdir()) == ["other.bin"]
    assert sorted(p.name for p in final.parent.iterdir()) == ["key1"]


def test_staging_directory_discards_a_partial_one(tmp_path: Path):
    cache = StageCache(tmp_path)
    staging = cache.staging_directory("fits", "k")
    (staging / "half-written").write_bytes(b"xx")
    again = cache.staging_directory("fits", "k")
    assert again == staging and list(again.iterdir()) == []
    assert not cache.directory("fits", "k").exists(), "a partial directory is never the finished one"


def test_stage_cache_values_survive_json_round_trip(tmp_path: Path):
    cache = StageCache(tmp_path)
    value = {"value": 1 / 3, "ci_low": 0.1 + 0.2, "n": 7, "text": "naïve \"quoted\"\n"}
    cache.put("score", "k", value)
    got = cache.get("score", "k")
    assert got == value and got["value"] == 1 / 3
    assert json.loads(cache.path("score", "k").read_text(encoding="utf-8")) == value
