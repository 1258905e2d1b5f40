"""Training checkpoints in the fit's work dir: model, optimizer, RNG, position in the data order, curve so far.

Only the newest checkpoint is kept. It is written to a staging folder and swapped in by rename, so a
kill during the write leaves the previous checkpoint intact. The data order needs no saving: each
epoch's permutation is derived from (shuffle seed, epoch), so the step counter says where to continue.
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
        if step >= total:
            return False  # the finished fit is stored by the runner, not as a checkpoint
        by_steps = self.every > 0 and step % self.every == 0
        by_time = self.seconds > 0 and time.monotonic() - self.last_saved >= self.seconds
        return by_steps or by_time

    def save(self, state: LoopState, module: Any, optimizer: Any, best_weights: dict | None) -> None:
        import torch

        staging = self.work_dir / STAGING
        if self.engine.is_main:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        self.engine.barrier()
        self.engine.save_state(staging, module, optimizer)
        if self.engine.is_main:
            if best_weights is not None:
                torch.save(best_weights, staging / "best_weights.pt")
            (staging / "loop.json").write_text(json.dumps(asdict(state)), encoding="utf-8")
            retired = self.work_dir / RETIRED
            shutil.rmtree(retired, ignore_errors=True)
            if self.path.exists():
                self.path.rename(retired)
            staging.rename(self.path)
            shutil.rmtree(retired, ignore_errors=True)
        self.engine.barrier()
        self.last_saved = time.monotonic()

    def restore(self, module: Any, optimizer: Any) -> tuple[LoopState, dict | None] | None:
        """The saved loop state and best weights, after loading model/optimizer/RNG; None if no checkpoint."""
        import torch

        if not (self.path / "loop.json").is_file():
            return None
        self.engine.load_state(self.path, module, optimizer)
        state = LoopState(**json.loads((self.path / "loop.json").read_text(encoding="utf-8")))
        best_file = self.path / "best_weights.pt"
        best = torch.load(best_file, map_location="cpu", weights_only=True) if best_file.is_file() else None
        return state, best

    def clear(self) -> None:
        if self.engine.is_main:
            for name in (CHECKPOINT, STAGING, RETIRED):
                shutil.rmtree(self.work_dir / name, ignore_errors=True)
