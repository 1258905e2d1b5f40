"""``none``: the model as loaded (the original, non-fitted baseline)."""

from __future__ import annotations

from harness.api import FitContext, ModelHandle, Recipe


class NoFit(Recipe):
    name = "none"
    description = "No training: evaluate the model as loaded."
    version = "1"
    trains = False
    params = ()

    def fit(self, handle: ModelHandle, sequences: list[list[int]], ctx: FitContext) -> None:
        return None
