"""``repetition-penalty``: greedy decoding with the CTRL repetition penalty (Keskar et al. 2019)."""

from __future__ import annotations

from harness.api import ComposableDecoder, DecodeContext, ModelHandle, Param, Processor
from harness_plugins.decoders._loop import RepetitionPenalty


class RepetitionPenaltyGreedy(ComposableDecoder):
    """Definition: at each step, for every token id already in the row's context or output, a positive
    logit is divided by ``penalty`` and a negative one multiplied by it; then argmax. Equal to
    ``model.generate(do_sample=False, repetition_penalty=penalty)`` on unpadded rows (transformers also
    penalises pad tokens of left-padded rows; we do not). In a composition: the penalty before the warps."""

    name = "repetition-penalty"
    description = "Greedy with the CTRL repetition penalty on every token already in context or output."
    version = "1"
    stage = "adjust"
    params = (Param("penalty", float, default=1.2, min=0.0, exclusive_min=True, help="> 1 discourages repeats"),)

    def processors(self, handle: ModelHandle, contexts: list[list[int]], ctx: DecodeContext) -> list[Processor]:
        return [RepetitionPenalty(self.option("penalty"))]
