"""Training checkpoints in the fit's work dir: model, optimizer, RNG, position in the data order, curve so far.

Only the newest checkpoint is kept. A save writes a staging folder, marks it complete (``complete.json``,
written last, after every process has written its part), then swaps it in by two renames: current →
retired, staging → current. A kill at any moment leaves at least one complete copy: the current one, the
retired one (a kill between the renames), or the complete staging one (a kill after the marker). ``restore``
first finishes an interrupted swap on the main process, so ``checkpoint/`` holds the newest complete copy,
then every process loads it. A copy is deleted marker first, so a half-deleted folder is never trusted.

When to save is decided identically on every process of a multi-process launch: by update count (the same
on every rank) or, for time-based checkpoints, on rank 0's clock and broadcast, so no rank enters the save
barrier while the others train on.

The data order needs no saving: each epoch's permutation is derived from (shuffle seed, epoch), so the step
counter says where to continue.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CHECKPOINT = "checkpoint"
STAGING = ".checkpoint-staging"
RETIRED = ".checkpoint-retired"
#: written last into a finished copy; a folder without it is never restored (except a legacy ``checkpoint/``)
COMPLETE = "complete.json"


@dataclass
class LoopState:
    """Everything besides tensors that the loop needs to continue exactly where it stopped."""

    step: int = 0
    epoch_losses: list[float] = field(default_factory=list)
    curves: list[dict[str, float]] = field(default_factory=list)
    best_loss: float | None = None
    best_step: int | None = None
    evals_since_best: int = 0
    stopped_early: bool = False


class Checkpointer:
    """Saves every ``every`` updates and/or every ``minutes`` of wall time (0 disables either)."""

    def __init__(self, work_dir: Path, every: int, minutes: float, engine: Any):
        self.work_dir = Path(work_dir)
        self.every = every
        self.seconds = minutes * 60.0
        self.engine = engine
        self.last_saved = time.monotonic()

    @property
    def path(self) -> Path:
        return self.work_dir / CHECKPOINT

    def due(self, step: int, total: int) -> bool:
        """Whether to save after update ``step``; the same answer on every process (call it on all of them)."""
        if step >= total:
            return False  # the finished fit is stored by the runner, not as a checkpoint
        if self.every > 0 and step % self.every == 0:
            return True  # the update count is the same on every rank: no collective needed
        if self.seconds <= 0:
            return False
        by_time = time.monotonic() - self.last_saved >= self.seconds
        if getattr(self.engine, "world", 1) > 1:
            by_time = bool(self.engine.broadcast_flag(by_time if self.engine.is_main else False))
        return by_time

    def save(self, state: LoopState, module: Any, optimizer: Any, best_weights: dict | None) -> None:
        import torch

        staging = self.work_dir / STAGING
        if self.engine.is_main:
            _remove(staging)
            staging.mkdir(parents=True)
        self.engine.barrier()
        self.engine.save_state(staging, module, optimizer)
        self.engine.barrier()  # every rank's part is written before the copy is marked complete
        if self.engine.is_main:
            if best_weights is not None:
                torch.save(best_weights, staging / "best_weights.pt")
            (staging / "loop.json").write_text(json.dumps(asdict(state)), encoding="utf-8")
            (staging / COMPLETE).write_text(json.dumps({"step": state.step}), encoding="utf-8")
            self._swap_in(staging)
        self.engine.barrier()
        self.last_saved = time.monotonic()

    def _swap_in(self, staging: Path) -> None:
        """current → retired, staging → current, retired removed; a kill between any two steps loses nothing."""
        retired = self.work_dir / RETIRED
        _remove(retired)
        if self.path.exists():
            self.path.rename(retired)
        staging.rename(self.path)
        _remove(retired)

    def _settle(self) -> None:
        """Finish a swap that a kill interrupted: ``checkpoint/`` becomes the newest complete copy (main only)."""
        staging, retired = self.work_dir / STAGING, self.work_dir / RETIRED
        copies = [(step, rank, folder) for rank, folder in enumerate((self.path, staging, retired))
                  if (step := _complete_step(folder, legacy=folder == self.path)) is not None]  # fmt: skip
        if not copies:
            return
        _, _, newest = max(copies, key=lambda c: (c[0], -c[1]))  # the highest step; on a tie, current first
        if newest == staging:
            self._swap_in(staging)
        elif newest == retired:
            _remove(self.path)  # never complete here: a complete current would be at least as new
            retired.rename(self.path)

    def restore(self, module: Any, optimizer: Any) -> tuple[LoopState, dict | None] | None:
        """The saved loop state and best weights, after loading model/optimizer/RNG; None if no checkpoint.

        Falls back to the retired copy, or a complete staging copy, when a kill interrupted a save's swap.
        """
        import torch

        if self.engine.is_main:
            self._settle()
        self.engine.barrier()
        if _complete_step(self.path, legacy=True) is None:
            return None
        self.engine.load_state(self.path, module, optimizer)
        state = LoopState(**json.loads((self.path / "loop.json").read_text(encoding="utf-8")))
        best_file = self.path / "best_weights.pt"
        best = torch.load(best_file, map_location="cpu", weights_only=True) if best_file.is_file() else None
        return state, best

    def clear(self) -> None:
        if self.engine.is_main:
            for name in (CHECKPOINT, STAGING, RETIRED):
                _remove(self.work_dir / name)


def _complete_step(folder: Path, legacy: bool = False) -> int | None:
    """The update a complete copy was saved at, or None. ``legacy``: a ``checkpoint/`` written before the
    marker existed (only ever made by renaming a finished staging folder) counts if it has its loop state."""
    marker, loop = folder / COMPLETE, folder / "loop.json"
    try:
        if marker.is_file():
            return int(json.loads(marker.read_text(encoding="utf-8"))["step"])
        if legacy and loop.is_file():
            return int(json.loads(loop.read_text(encoding="utf-8"))["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


def _remove(folder: Path) -> None:
    """Delete a copy, its markers first, so a kill half-way through never leaves a folder that looks complete."""
    if folder.is_dir():
        for name in (COMPLETE, "loop.json"):
            (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
