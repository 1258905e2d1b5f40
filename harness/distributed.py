"""Which process of a multi-process launch this is, read from the launcher's environment.

``accelerate launch`` and ``torchrun`` start one ``harness run`` per process and export ``RANK`` /
``WORLD_SIZE``. Every process runs the fits together (data parallel) and generates its share of the
batches (``Generator.generate_share``); after a barrier the main process gathers the stored batches,
scores and writes results. Reading the environment (not torch.distributed) keeps this importable
without torch; only :func:`barrier` touches the process group.
"""

from __future__ import annotations

import os


def world_size() -> int:
    """Number of processes in this launch (1 when not launched distributed)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def rank() -> int:
    """This process's global rank (0 when not launched distributed)."""
    return int(os.environ.get("RANK", "0") or 0)


def local_rank() -> int:
    """This process's rank on its machine: which GPU it drives."""
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


def is_distributed() -> bool:
    return world_size() > 1


def is_main() -> bool:
    return rank() == 0


def sharding() -> str | None:
    """"fsdp" or "deepspeed" when the launch config shards the model over the processes, else None."""
    for engine in ("fsdp", "deepspeed"):
        if os.environ.get(f"ACCELERATE_USE_{engine.upper()}", "").lower() == "true":
            return engine
    return None


def barrier(device: str) -> None:
    """Wait until every process of the launch reaches this point (no-op in a single process).

    The process group is accelerate's (the one the fits used, or a new one: gloo on CPUs, NCCL on GPUs).
    If a process dies, the launcher stops the others; what each had stored stays in the cache for the rerun.
    """
    if not is_distributed():
        return
    from accelerate import PartialState

    PartialState(cpu=not str(device).startswith("cuda")).wait_for_everyone()
