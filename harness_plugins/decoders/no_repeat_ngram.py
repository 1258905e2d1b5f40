"""``no-repeat-ngram``: greedy decoding that never repeats an n-gram (transformers' no_repeat_ngram_size)."""

from __future__ import annotations

from harness.api import ComposableDecoder, DecodeContext, ModelHandle, Param, Processor
from harness_plugins.decoders._ngram import NoRepeatNGram


class NoRepeatNGramGreedy(ComposableDecoder):
    """Definition: at each step, let s be the row's sequence (context + output with ``include_context``,
    else the output only); every token t such that (last n−1 tokens of s, t) already occurs as an n-gram
    in s gets logit −inf; then argmax. With ``include_context`` this is transformers'
    NoRepeatNGramLogitsProcessor (``no_repeat_ngram_size = n``) on unpadded rows."""

    name = "no-repeat-ngram"
    description = "Greedy that bans every token completing an n-gram already in the sequence."
    version = "1"
    stage = "adjust"
    params = (
        Param("n", int, default=3, min=1, help="n-gram size that may occur only once"),
        Param("include_context", bool, default=True, help="n-grams of the prompt count too (as transformers)"),
    )

    def processors(self, handle: ModelHandle, contexts: list[list[int]], ctx: DecodeContext) -> list[Processor]:
        return [NoRepeatNGram(self.option("n"), self.option("include_context"))]
