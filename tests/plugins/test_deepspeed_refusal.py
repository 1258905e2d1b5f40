"""DeepSpeed steps its optimizer at every backward: the loop's micro-batch accumulation is refused there."""

from __future__ import annotations

import pytest

from harness.api import InputError
from harness_plugins.recipes._trainer import plan_updates


def test_micro_batches_under_deepspeed_are_refused(monkeypatch: pytest.MonkeyPatch):
    config = {"batch_size": 8, "micro_batch_size": 2, "updates": 0, "epochs": 1}
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert plan_updates(config, 16, 2) == (2, 2, 2)  # DDP: 2 micro-batches of 2 per process, one update
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert plan_updates(config, 16, 2) == (2, 2, 2)  # FSDP accumulates with no_sync like DDP
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    with pytest.raises(InputError, match="micro_batch_size 2 under DeepSpeed: accumulating 2 micro-batches per update"):
        plan_updates(config, 16, 2)
    # the whole per-process batch at once is what DeepSpeed runs correctly
    assert plan_updates(config | {"micro_batch_size": 0}, 16, 2) == (2, 2, 4)
    assert plan_updates(config | {"micro_batch_size": 4}, 16, 2) == (2, 2, 4)
