"""Where the training loop's arithmetic runs: one local process, or a multi-process accelerate launch.

The loop in ``trainer.py`` is written once against this small interface. ``LocalEngine`` is plain
torch (autocast for bf16/fp16, a GradScaler for fp16 on CUDA). ``AccelerateEngine`` is used when the
harness was started by ``accelerate launch`` / ``torchrun`` with more than one process; the launch
config decides DDP, FSDP or DeepSpeed ZeRO-3, and this class only forwards to accelerate's API.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from harness.api import PRECISIONS, distributed


def _dtype(precision: str) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


class LocalEngine:
    """One process, the model where the loader put it."""

    rank = 0
    world = 1
    is_main = True

    def __init__(self, precision: str, device: str):
        import torch

        self.precision = precision
        self.device_type = "cuda" if str(device).startswith("cuda") else "cpu"
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" and self.device_type == "cuda" else None

    def prepare(self, module: Any, optimizer: Any) -> tuple[Any, Any]:
        return module, optimizer

    def autocast(self) -> contextlib.AbstractContextManager:
        import torch

        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=_dtype(self.precision))

    def backward(self, loss: Any) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def step(self, optimizer: Any) -> None:
        if self.scaler:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    @contextlib.contextmanager
    def no_sync(self, module: Any) -> Iterator[None]:
        yield

    def mean(self, value: float) -> float:
        return value

    def unwrap(self, module: Any) -> Any:
        return module

    def barrier(self) -> None:
        return None

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (one process: the flag itself)."""
        return bool(flag)

    def save_state(self, directory: Path, module: Any, optimizer: Any) -> None:
        import torch

        state = {"model": module.state_dict(), "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()}
        if self.scaler:
            state["scaler"] = self.scaler.state_dict()
        torch.save(state, directory / "state.pt")

    def load_state(self, directory: Path, module: Any, optimizer: Any) -> None:
        import torch

        state = torch.load(directory / "state.pt", map_location="cpu", weights_only=False)
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if self.scaler and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    def finish(self, handle: Any, prepared: Any) -> None:
        return None


class AccelerateEngine:
    """Data-parallel (or sharded) training across the processes of an ``accelerate launch``."""

    def __init__(self, precision: str, device: str):
        from accelerate import Accelerator

        mixed = {"fp32": "no"}.get(precision, precision)
        # cpu=True is what makes accelerate treat a torchrun launch on CPUs as multi-process (gloo)
        self.accelerator = Accelerator(mixed_precision=mixed, cpu=str(device) == "cpu")
        self.rank = self.accelerator.process_index
        self.world = self.accelerator.num_processes
        self.is_main = self.accelerator.is_main_process

    def prepare(self, module: Any, optimizer: Any) -> tuple[Any, Any]:
        return self.accelerator.prepare(module, optimizer)

    def autocast(self) -> contextlib.AbstractContextManager:
        return self.accelerator.autocast()

    def backward(self, loss: Any) -> None:
        self.accelerator.backward(loss)

    def step(self, optimizer: Any) -> None:
        optimizer.step()

    def no_sync(self, module: Any) -> contextlib.AbstractContextManager:
        return self.accelerator.no_sync(module)

    def mean(self, value: float) -> float:
        import torch

        tensor = torch.tensor([value], dtype=torch.float64, device=self.accelerator.device)
        return float(self.accelerator.reduce(tensor, reduction="mean").item())

    def unwrap(self, module: Any) -> Any:
        return self.accelerator.unwrap_model(module)

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (a collective: every rank calls it at the same point)."""
        import torch
        from accelerate.utils import broadcast

        tensor = torch.tensor([1 if flag else 0], dtype=torch.long, device=self.accelerator.device)
        return bool(broadcast(tensor, from_process=0).item())

    def save_state(self, directory: Path, module: Any, optimizer: Any) -> None:
        self.accelerator.save_state(str(directory))

    def load_state(self, directory: Path, module: Any, optimizer: Any) -> None:
        self.accelerator.load_state(str(directory))

    def finish(self, handle: Any, prepared: Any) -> None:
        """Hand the fitted weights back. Data parallel: every process's module holds all of them. Sharded
        (FSDP, DeepSpeed ZeRO-3): the full weights are gathered (a collective) into ``handle.gathered_state``
        on the main process, which the fit cache writes as they are; the module keeps only its shards and is
        never loaded with the full state (its partitioned parameters could not hold it)."""
        if distributed.sharding():
            state = self.accelerator.get_state_dict(prepared)
            handle.gathered_state = state if self.is_main else None
        handle.module = self.accelerator.unwrap_model(prepared)
        self.accelerator.wait_for_everyone()


def make_engine(precision: str, device: str) -> LocalEngine | AccelerateEngine:
    """The accelerate engine inside a multi-process launch, else the local one."""
    if precision not in PRECISIONS or precision == "auto":
        raise ValueError(f"precision must be a resolved one of {PRECISIONS} (resolve_precision decides auto), got {precision!r}")
    if distributed.is_distributed() or distributed.sharding():
        return AccelerateEngine(precision, device)
    return LocalEngine(precision, device)
