"""``top-k``: sample from the k most likely tokens after temperature (Fan et al. 2018)."""

from __future__ import annotations

from functools import partial

from harness.api import DecodeContext, Decoder, Generation, ModelHandle
from harness.params import Param
from harness_plugins.decoders._loop import chain, decode, sampling_pick, scale_temperature, top_k_filter


class TopK(Decoder):
    """Definition: scores = logits / temperature; keep the k highest scores (ties with the k-th kept),
    the rest -inf; sample from softmax(scores) with the row's own generator."""

    name = "top-k"
    description = "Top-k sampling: temperature, then sample among the k most likely tokens."
    version = "1"
    deterministic = False
    params = (
        Param("k", int, default=50, min=1, help="number of most likely tokens kept"),
        Param("temperature", float, default=1.0, min=0.0, exclusive_min=True, help="softmax temperature"),
    )

    def generate(self, handle: ModelHandle, contexts: list[list[int]], new_tokens: int, ctx: DecodeContext) -> list[Generation]:
        transform = chain(
            partial(scale_temperature, temperature=self.option("temperature")),
            partial(top_k_filter, top_k=self.option("k")),
        )
        return decode(handle, contexts, new_tokens, ctx.seeds, sampling_pick(transform), stop_at_eos=ctx.stop_at_eos)
