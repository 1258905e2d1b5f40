"""``finetune``: the non-hyperfitted control on the same data — stop at the minimum held-out loss.

Same optimisation as ``hyperfit`` (Adam, wd 0, constant lr, batch 8, dropout off, same sequences), but
held-out loss is measured at every curve point (before training and every ``curve_every`` epochs); after
``patience`` points without a new minimum the fit stops, and the weights of the minimum are restored
(possibly the untouched model, if held-out loss never fell). Needs ``train.heldout`` > 0.
"""

from __future__ import annotations

from harness.api import FitContext, FitOutcome, InputError, ModelHandle, Param

from harness_plugins.recipes._trainer import LoopOptions, train
from harness_plugins.recipes._training_params import BatchedRecipe, training_params


class EarlyStoppedFinetune(BatchedRecipe):
    name = "finetune"
    description = "Fine-tune with the hyperfit optimiser, early-stopped at the minimum held-out loss."
    version = "1"
    trains = True
    selects_on_heldout = True  # the weights of the held-out minimum are kept
    train_defaults = {"samples": 2000, "tokens": 256}
    params = training_params(lr=1e-6, epochs=20, curve_selects_weights=True) + (
        Param("patience", int, default=1, min=1, help="curve points without a new held-out minimum before stopping"),
    )

    def fit(self, handle: ModelHandle, sequences: list[list[int]], ctx: FitContext) -> FitOutcome:
        if not ctx.heldout:
            raise InputError("recipe finetune needs held-out sequences to stop on: set train.heldout > 0")
        if not self.config["curve_every"]:
            raise InputError("recipe finetune measures held-out loss at curve points: curve_every must be > 0")
        return train(handle, sequences, ctx, self.config, LoopOptions(patience=self.config["patience"]))
