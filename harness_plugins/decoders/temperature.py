"""``temperature``: pure ancestral sampling from softmax(logits / T)."""

from __future__ import annotations

from harness.api import ComposableDecoder, DecodeContext, ModelHandle, Param, Processor
from harness_plugins.decoders._loop import Warp, scale_temperature


class Temperature(ComposableDecoder):
    """Definition: sample the next token from softmax(logits / temperature) over the whole vocabulary,
    with the row's own generator (temperature 1 = the model's own distribution)."""

    name = "temperature"
    description = "Pure sampling from the full distribution at a temperature (1.0 = ancestral sampling)."
    version = "1"
    samples = True
    stage = "warp"
    params = (Param("temperature", float, default=1.0, min=0.0, exclusive_min=True, help="softmax temperature"),)

    def processors(self, handle: ModelHandle, contexts: list[list[int]], ctx: DecodeContext) -> list[Processor]:
        return [Warp(scale_temperature, temperature=self.option("temperature"))]
