"""Which process of a multi-process launch this is, read from the launcher's environment.

``accelerate launch`` and ``torchrun`` start one ``harness run`` per process and export ``RANK`` /
``WORLD_SIZE``. Every process runs the fits together (data parallel); only the main process draws
nothing new into the cache, generates, scores and writes results, so the other processes leave after
the last fit. Reading the environment (not torch.distributed) keeps this importable without torch.
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
