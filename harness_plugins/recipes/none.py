"""``none``: the model as loaded (the original, non-fitted baseline)."""

from __future__ import annotations

from harness.api import FitContext, FitOutcome, ModelHandle, Recipe


class NoFit(Recipe):
    name = "none"
    description = "No training: evaluate the model as loaded."
    version = "1"
    trains = False
    #: a `train:` block here only names sequences for decoders (citation-blocked): nothing to hold out
    train_defaults = {"samples": 2000, "tokens": 256, "heldout": 0}
    params = ()

    def fit(self, handle: ModelHandle, sequences: list[list[int]], ctx: FitContext) -> FitOutcome:
        return FitOutcome()  # nothing trained: the fit record holds only the runner's facts
