"""``min-p``: sample among tokens at least p × as likely as the most likely one (Nguyen et al. 2024)."""

from __future__ import annotations

from harness.api import ComposableDecoder, DecodeContext, ModelHandle, Param, Processor
from harness_plugins.decoders._loop import Warp, min_p_filter, scale_temperature


class MinP(ComposableDecoder):
    """Definition: scores = logits / temperature, q = softmax(scores); remove every token with
    q(v) < p · max q; sample from the rest with the row's own generator (transformers' MinPLogitsWarper)."""

    name = "min-p"
    description = "Min-p sampling: temperature, then drop tokens below p times the top token's probability."
    version = "1"
    samples = True
    stage = "warp"
    params = (
        Param("p", float, default=0.1, min=0.0, max=1.0, help="relative probability threshold"),
        Param("temperature", float, default=1.0, min=0.0, exclusive_min=True, help="softmax temperature"),
    )

    def processors(self, handle: ModelHandle, contexts: list[list[int]], ctx: DecodeContext) -> list[Processor]:
        return [Warp(scale_temperature, temperature=self.option("temperature")), Warp(min_p_filter, min_p=self.option("p"))]
