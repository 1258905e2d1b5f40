"""Progress display: rich bars on a terminal, a few plain log lines otherwise."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator

from rich.console import Console


class Reporter:
    """Shows long stages (training steps with loss, generation batches, metrics).

    With ``live`` (stderr is a terminal) each stage gets a rich progress bar; otherwise only one line per
    finished stage is printed, so logs and CI output stay readable.
    """

    def __init__(self, console: Console | None = None, live: bool | None = None, quiet: bool = False):
        self.console = console or Console(stderr=True)
        self.live = (sys.stderr.isatty() if live is None else live) and not quiet
        self.quiet = quiet
        self._progress: Any = None

    def __enter__(self) -> "Reporter":
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[info]}"),
                console=self.console,
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def log(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, highlight=False, markup=False)

    @contextmanager
    def task(self, description: str, total: int) -> Iterator["TaskHandle"]:
        handle = TaskHandle(self, description, total)
        try:
            yield handle
        finally:
            handle.finish()


class TaskHandle:
    def __init__(self, reporter: Reporter, description: str, total: int):
        self.reporter = reporter
        self.description = description
        self.total = total
        self.started = time.perf_counter()
        self.info = ""
        self.touched = False
        self._id = None
        if reporter._progress is not None:
            self._id = reporter._progress.add_task(description, total=total, info="")

    def update(self, completed: int, info: dict[str, float] | str | None = None, total: int | None = None) -> None:
        """Show ``completed`` of the total (which a stage may learn late, e.g. a fit's number of updates)."""
        if total is not None:
            self.total = total
        if isinstance(info, dict):
            info = "  ".join(f"{k} {v:.4g}" for k, v in info.items())
        if info is not None:
            self.info = info
        self.touched = True
        if self._id is not None:
            self.reporter._progress.update(self._id, completed=completed, info=self.info, total=self.total)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def finish(self) -> None:
        elapsed = self.elapsed()
        if self._id is None and self.touched:
            suffix = f"  {self.info}" if self.info else ""
            self.reporter.log(f"{self.description}: done in {elapsed:.1f}s{suffix}")
