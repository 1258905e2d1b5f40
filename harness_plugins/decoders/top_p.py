"""``top-p``: nucleus sampling with temperature and top-k, as the paper's baseline (p 0.9, T 0.7, k 50)."""

from __future__ import annotations

from harness.api import ComposableDecoder, DecodeContext, ModelHandle, Param, Processor
from harness_plugins.decoders._loop import top_p_warps


class TopP(ComposableDecoder):
    name = "top-p"
    description = "Nucleus sampling: temperature, then top-k, then the smallest token set with mass ≥ p."
    version = "1"
    samples = True
    stage = "warp"
    params = (
        Param("p", float, default=0.9, min=0.0, max=1.0, exclusive_min=True, help="nucleus mass"),
        Param("temperature", float, default=0.7, min=0.0, exclusive_min=True, help="softmax temperature"),
        Param("top_k", int, default=50, min=0, help="keep only the k most likely tokens first (0 = off)"),
    )

    def processors(self, handle: ModelHandle, contexts: list[list[int]], ctx: DecodeContext) -> list[Processor]:
        return list(top_p_warps(self.option("temperature"), self.option("top_k"), self.option("p")))
