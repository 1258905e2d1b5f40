"""``local-text``: documents from local files, with no network and no extra packages.

``path`` may name

* a ``.jsonl`` / ``.ndjson`` file: one JSON object per line; the text is ``text_field`` (default
  ``"text"``) and the id is ``id_field`` when given, else the 1-based line number; blank lines are skipped;
* any other file (``.txt``, ``.md``, …), read as UTF-8 text and split by ``split``:
  ``"blank-line"`` (default: documents separated by one or more blank lines; id = the 1-based line
  number where the document starts), ``"line"`` (one document per non-blank line; id = its line number)
  or ``"file"`` (the whole file is one document; id = the file name);
* a directory: every ``*.txt`` file below it (recursively, hidden files and folders skipped), one
  document per file, id = the path relative to the directory (``/``-separated), in sorted order.
  ``split`` does not apply to directories.

Documents are stripped of surrounding whitespace; empty ones are skipped. A relative ``path`` is resolved
against ``base_dir`` when the core sets it on the class or the instance (e.g. the benchmark file's folder),
else against the current working directory.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import ClassVar, Iterator

from harness.api import Dataset, Document, InputError, Param

_BLANK_LINE = re.compile(r"^\s*$")
JSONL_SUFFIXES = (".jsonl", ".ndjson")


class LocalText(Dataset):
    """Text documents from a local .txt / .jsonl file or a folder of .txt files."""

    name = "local-text"
    description = (
        "Documents from a local file or folder: .txt (split at blank lines, per line or whole file), "
        ".jsonl (one JSON object per line) or a directory of .txt files (one document each)"
    )
    version = "1"
    modality = "text"
    params = (
        Param("path", str, help="a .txt or .jsonl file, or a directory of .txt files; relative to the working directory"),
        Param("split", str, default="blank-line", choices=("blank-line", "line", "file"), help="how a text file is cut into documents"),
        Param("text_field", str, default="text", help=".jsonl: the field that holds the document text"),
        Param("id_field", str, default=None, help=".jsonl: the field that holds the document id (default: the line number)"),
    )

    #: folder that relative paths resolve against; None means the current working directory
    base_dir: ClassVar[Path | None] = None

    def resolved_path(self) -> Path:
        raw = self.option("path")
        path = Path(str(raw)).expanduser()
        if not path.is_absolute():
            base = self.base_dir
            path = (Path(base) if base is not None else Path.cwd()) / path
        return path

    def documents(self) -> Iterator[Document]:
        path = self.resolved_path()
        if not path.exists():
            raise InputError(f"{self.name}: path not found: {path} (from path: {self.option('path')!r})")
        if path.is_dir():
            docs = self._directory(path)
        elif path.suffix.lower() in JSONL_SUFFIXES:
            docs = self._jsonl(path)
        else:
            docs = self._text_file(path)
        seen: dict[str, str] = {}
        for doc_id, where, text in docs:
            if doc_id in seen:
                raise InputError(f"{where}: duplicate document id {doc_id!r} (first seen at {seen[doc_id]})")
            seen[doc_id] = where
            yield Document(doc_id, text)

    # ------------------------------------------------------------------ readers: yield (id, where, text)

    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None

    def _text_file(self, path: Path) -> Iterator[tuple[str, str, str]]:
        content = self._read(path)
        mode = self.option("split")
        if mode == "file":
            text = content.strip()
            if text:
                yield path.name, str(path), text
            return
        lines = content.splitlines()
        if mode == "line":
            for number, line in enumerate(lines, start=1):
                text = line.strip()
                if text:
                    yield str(number), f"{path}:{number}", text
            return
        if mode != "blank-line":
            raise InputError(f"{self.name}: unknown split {mode!r} (choose from: blank-line, line, file)")
        block: list[str] = []
        start = 0
        for number, line in enumerate(lines + [""], start=1):
            if _BLANK_LINE.match(line):
                text = "\n".join(block).strip()
                if text:
                    yield str(start), f"{path}:{start}", text
                block = []
                continue
            if not block:
                start = number
            block.append(line.rstrip())

    def _jsonl(self, path: Path) -> Iterator[tuple[str, str, str]]:
        text_field = self.option("text_field")
        id_field = self.option("id_field")
        content = self._read(path)
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})") from None
            if not isinstance(row, dict):
                raise InputError(f"{where}: expected a JSON object, got {type(row).__name__}")
            if text_field not in row:
                keys = ", ".join(sorted(map(str, row))) or "none"
                raise InputError(f"{where}: missing text field {text_field!r} (fields: {keys}); set text_field")
            text = row[text_field]
            if not isinstance(text, str):
                raise InputError(f"{where}: field {text_field!r} must be a string, got {type(text).__name__}")
            if id_field is None:
                doc_id = str(number)
            else:
                if id_field not in row or row[id_field] is None:
                    raise InputError(f"{where}: missing id field {id_field!r}")
                doc_id = str(row[id_field])
            text = text.strip()
            if text:
                yield doc_id, where, text

    def _directory(self, root: Path) -> Iterator[tuple[str, str, str]]:
        files = []
        for file in root.rglob("*"):
            rel = file.relative_to(root)
            if any(part.startswith(".") for part in rel.parts):
                continue
            if file.suffix.lower() == ".txt" and file.is_file():
                files.append((rel.as_posix(), file))
        if not files:
            raise InputError(f"{self.name}: no .txt files in directory {root}")
        for rel, file in sorted(files):
            text = self._read(file).strip()
            if text:
                yield rel, str(file), text
