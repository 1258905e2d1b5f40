"""``typical``: locally typical sampling (Meister et al., TACL 2023)."""

from __future__ import annotations

from harness.api import ComposableDecoder, DecodeContext, ModelHandle, Param, Processor
from harness_plugins.decoders._loop import Warp, scale_temperature, typical_filter


class Typical(ComposableDecoder):
    """Definition: scores = logits / temperature, p = softmax(scores), H = entropy(p); rank tokens by
    |−log p(v) − H| ascending and keep the shortest prefix of the ranking whose mass reaches ``mass``
    (ties with the last kept token kept, at least one token); sample with the row's own generator.
    Same rule as transformers' TypicalLogitsWarper (``typical_p``)."""

    name = "typical"
    description = "Locally typical sampling: keep the tokens whose surprisal is closest to the entropy, up to a mass."
    version = "1"
    samples = True
    stage = "warp"
    params = (
        Param("mass", float, default=0.9, min=0.0, max=1.0, exclusive_min=True, help="probability mass kept"),
        Param("temperature", float, default=1.0, min=0.0, exclusive_min=True, help="softmax temperature"),
    )

    def processors(self, handle: ModelHandle, contexts: list[list[int]], ctx: DecodeContext) -> list[Processor]:
        return [Warp(scale_temperature, temperature=self.option("temperature")), Warp(typical_filter, mass=self.option("mass"))]
