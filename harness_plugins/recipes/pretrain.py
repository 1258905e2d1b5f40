"""``pretrain``: train from random init — for models with no pretrained weights offline (small ImageGPT).

The loaded module's weights are re-initialised with the model's own init scheme under the fit seed,
then trained with AdamW, linear warmup over the first ``warmup`` share of updates and cosine decay to
``min_lr_ratio`` × lr. Dropout is off unless ``dropout: true``.
"""

from __future__ import annotations

import math
from typing import Any

from harness.api import FitContext, FitOutcome, ModelHandle, Param

from harness_plugins.recipes._trainer import LoopOptions, train
from harness_plugins.recipes._training_params import BatchedRecipe, training_params


def warmup_cosine(warmup: float, min_ratio: float):
    """lr multiplier: linear warmup over ``warmup`` × total updates, then cosine down to ``min_ratio``."""

    def scale(step: int, total: int) -> float:
        ramp = max(1, round(warmup * total))
        if step < ramp:
            return (step + 1) / ramp
        progress = (step - ramp) / max(1, total - ramp)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return scale


def reinitialise(module: Any, seed: int) -> None:
    """Fresh weights from the architecture's own initialiser (Hugging Face ``_init_weights``), seeded."""
    import torch

    torch.manual_seed(seed)
    init = getattr(module, "_init_weights", None)
    if init is None:
        for sub in module.modules():
            if hasattr(sub, "reset_parameters"):
                sub.reset_parameters()
    else:
        module.apply(init)
    if hasattr(module, "tie_weights"):
        module.tie_weights()


class Pretrain(BatchedRecipe):
    name = "pretrain"
    description = "Train from random init (AdamW, warmup + cosine); for models without offline weights."
    version = "1"
    trains = True
    train_defaults = {"samples": 1024, "tokens": 128}
    params = training_params(lr=1e-3, epochs=10, optimizer="adamw", weight_decay=0.1, batch_size=32) + (
        Param("warmup", float, default=0.05, min=0.0, max=1.0, help="share of updates with linear lr warmup"),
        Param("min_lr_ratio", float, default=0.1, min=0.0, max=1.0, help="final lr as a share of lr (cosine decay)"),
    )

    def fit(self, handle: ModelHandle, sequences: list[list[int]], ctx: FitContext) -> FitOutcome:
        reinitialise(handle.module, ctx.seed)
        options = LoopOptions(lr_scale=warmup_cosine(self.config["warmup"], self.config["min_lr_ratio"]))
        return train(handle, sequences, ctx, self.config, options)
