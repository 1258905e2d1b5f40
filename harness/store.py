"""Atomic file writes, content keys, and the content-addressed stage cache with per-stage locks.

Every write goes to a temporary file in the target directory and is renamed into place, so a run
killed at any moment (even ``kill -9``) leaves either the old file or the new one, never half a file.
Several runs may share one cache: a stage is computed under its lock (``StageCache.lock``), so a
second run waits for the first and then reuses its result instead of computing it again. The locks
are OS file locks (``filelock``): the kernel releases them when their process dies, so a lock left by
a killed run never blocks the next one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

CACHE_ENV = "HARNESS_CACHE"


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hyperfit-harness"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_key(*parts: Any) -> str:
    """A short stable hash of JSON-able parts: the identity of a stage."""
    return hashlib.sha256(canonical_json(list(parts)).encode("utf-8")).hexdigest()[:20]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def atomic_write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_user_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of every non-blank line of a JSONL file a user hands us; a line that is not a JSON
    object is an InputError naming the file and line (files we wrote ourselves: :func:`read_jsonl`)."""
    from harness.errors import InputError

    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise InputError(f"{path}:{number}: expected a JSON object per line")
        records.append((number, record))
    return records


class StageCache:
    """JSON stage results and directories, addressed by stage kind and content key."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, stage: str, key: str, suffix: str = ".json") -> Path:
        return self.root / "stages" / stage / f"{key}{suffix}"

    def get(self, stage: str, key: str) -> Any | None:
        path = self.path(stage, key)
        if not path.exists():
            return None
        try:
            return read_json(path)
        except (json.JSONDecodeError, UnicodeDecodeError):
            path.unlink(missing_ok=True)  # cannot happen with atomic writes, but never trust a bad file
            return None

    def put(self, stage: str, key: str, value: Any) -> None:
        atomic_write_text(self.path(stage, key), canonical_json(value))

    def drop(self, stage: str, key: str) -> None:
        self.path(stage, key).unlink(missing_ok=True)

    def directory(self, stage: str, key: str) -> Path:
        """A finished directory (e.g. fitted weights); use :meth:`commit_directory` to create it."""
        return self.root / stage / key

    def commit_directory(self, stage: str, key: str, staging: Path) -> Path:
        """Move a fully written staging directory into place (rename is atomic on one filesystem)."""
        final = self.directory(stage, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        return final

    def lock_path(self, stage: str, key: str) -> Path:
        return self.root / "locks" / stage / f"{key}.lock"

    def _file_lock(self, stage: str, key: str) -> Any:
        from filelock import FileLock

        path = self.lock_path(stage, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(path))

    @contextmanager
    def lock(self, stage: str, key: str, on_wait: Callable[[Path], None] | None = None) -> Iterator[None]:
        """Hold the stage's lock; ``on_wait(lock file)`` is called once if another process holds it now."""
        with self.try_lock(stage, key) as mine:
            if mine:
                yield
                return
        if on_wait is not None:
            on_wait(self.lock_path(stage, key))
        with self._file_lock(stage, key):
            yield

    @contextmanager
    def try_lock(self, stage: str, key: str) -> Iterator[bool]:
        """Take the stage's lock if it is free (yields True) or yield False at once if another process holds it."""
        from filelock import Timeout

        lock = self._file_lock(stage, key)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def staging_directory(self, stage: str, key: str) -> Path:
        path = self.root / stage / f".{key}.partial"
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path
