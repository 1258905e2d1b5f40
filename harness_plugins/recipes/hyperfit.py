"""``hyperfit``: the paper's recipe — full fine-tune to near-zero training loss on a tiny dataset.

Defaults follow the paper (Carlsson et al., ICLR 2025), not the official code: Adam with weight decay 0,
constant lr 1e-6, batch 8, 20 epochs over 2000 seeded-random sequences of exactly 256 tokens (5000
updates), next-token loss over every position, dropout off. The official code differs: AdamW's default
weight decay, another lr and epoch count, the first rows instead of a random sample, no checkpoints.
"""

from __future__ import annotations

from harness.api import FitContext, FitOutcome, ModelHandle

from harness_plugins.recipes._trainer import disable_dropout, train
from harness_plugins.recipes._training_params import BatchedRecipe, training_params

__all__ = ["Hyperfit", "disable_dropout"]


class Hyperfit(BatchedRecipe):
    name = "hyperfit"
    description = "Full fine-tune with Adam (wd 0), constant lr, fixed epochs, dropout off (paper defaults)."
    version = "2"
    trains = True
    train_defaults = {"samples": 2000, "tokens": 256}
    params = training_params(lr=1e-6, epochs=20)

    def fit(self, handle: ModelHandle, sequences: list[list[int]], ctx: FitContext) -> FitOutcome:
        return train(handle, sequences, ctx, self.config)
