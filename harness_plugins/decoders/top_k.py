"""``top-k``: sample from the k most likely tokens after temperature (Fan et al. 2018)."""

from __future__ import annotations

from harness.api import ComposableDecoder, DecodeContext, ModelHandle, Param, Processor
from harness_plugins.decoders._loop import Warp, scale_temperature, top_k_filter


class TopK(ComposableDecoder):
    """Definition: scores = logits / temperature; keep the k highest scores (ties with the k-th kept),
    the rest -inf; sample from softmax(scores) with the row's own generator."""

    name = "top-k"
    description = "Top-k sampling: temperature, then sample among the k most likely tokens."
    version = "1"
    samples = True
    stage = "warp"
    params = (
        Param("k", int, default=50, min=1, help="number of most likely tokens kept"),
        Param("temperature", float, default=1.0, min=0.0, exclusive_min=True, help="softmax temperature"),
    )

    def processors(self, handle: ModelHandle, contexts: list[list[int]], ctx: DecodeContext) -> list[Processor]:
        return [Warp(scale_temperature, temperature=self.option("temperature")), Warp(top_k_filter, top_k=self.option("k"))]
