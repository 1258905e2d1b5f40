"""Stage bookkeeping for one run: the cache seen through ``--fresh``, locks, counts, timings and keys.

Every phase stores what it computes here as soon as it is done and asks here before computing, so a
killed run resumes where it stopped, and two runs on one cache never compute the same stage together.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Iterator

from harness import distributed
from harness.progress import Reporter
from harness.store import StageCache


class StageBook:
    """The run's view of the stage cache, plus what the manifest reports about the stages."""

    def __init__(self, cache: StageCache, fresh: bool, reporter: Reporter):
        self.cache = cache
        self.fresh = fresh
        self.reporter = reporter
        self.timings: dict[str, float] = {}
        self.computed: dict[str, int] = {}
        self.reused: dict[str, int] = {}
        #: stage → "what/it/is" → key, recorded in the manifest
        self.keys: dict[str, dict[str, str]] = {"contexts": {}, "train": {}, "fit": {}, "generate": {}, "score": {}}
        self._fresh_done: set[str] = set()  # keys computed in this run: --fresh honours them

    def get(self, stage: str, key: str) -> Any | None:
        """The stored value, or None when absent (or under --fresh, not yet computed in this run)."""
        if self.fresh and key not in self._fresh_done:
            return None
        return self.cache.get(stage, key)

    def put(self, stage: str, key: str, value: Any) -> None:
        self.cache.put(stage, key, value)
        self._fresh_done.add(key)

    def note_key(self, stage: str, what: str, key: str) -> None:
        self.keys.setdefault(stage, {})[what] = key

    def count(self, stage: str, reused: bool) -> None:
        table = self.reused if reused else self.computed
        table[stage] = table.get(stage, 0) + 1

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - started

    def fit_stored(self, key: str) -> bool:
        return self.get("fit", key) is not None and self.cache.directory("fits", key).exists()

    @contextlib.contextmanager
    def lock(self, stage: str, key: str, what: str) -> Iterator[None]:
        """Hold the stage's lock so a second run on this cache waits and reuses instead of computing it too.

        Inside a multi-process launch the processes of one fit work together, so no file lock is taken
        there (a lock per process would deadlock the collective calls)."""
        if distributed.is_distributed():
            yield
            return

        def waiting(path: Path) -> None:
            self.reporter.log(f"{what}: another run on this cache is computing it; waiting for it (lock {path})")

        with self.cache.lock(stage, key, on_wait=waiting):
            yield

    @contextlib.contextmanager
    def try_lock(self, stage: str, key: str) -> Iterator[bool]:
        """Take the lock if it is free: yields False when another run holds it (do other work first)."""
        if distributed.is_distributed():
            yield True
            return
        with self.cache.try_lock(stage, key) as mine:
            yield mine
