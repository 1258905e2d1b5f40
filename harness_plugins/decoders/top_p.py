"""``top-p``: nucleus sampling with temperature and top-k, as the paper's baseline (p 0.9, T 0.7, k 50)."""

from __future__ import annotations

from functools import partial

from harness.api import DecodeContext, Decoder, Generation, ModelHandle
from harness.params import Param
from harness_plugins.decoders._loop import decode, filter_top_k_top_p, sampling_pick


class TopP(Decoder):
    name = "top-p"
    description = "Nucleus sampling: temperature, then top-k, then the smallest token set with mass ≥ p."
    version = "1"
    deterministic = False
    params = (
        Param("p", float, default=0.9, min=0.0, max=1.0, exclusive_min=True, help="nucleus mass"),
        Param("temperature", float, default=0.7, min=0.0, exclusive_min=True, help="softmax temperature"),
        Param("top_k", int, default=50, min=0, help="keep only the k most likely tokens first (0 = off)"),
    )

    def generate(self, handle: ModelHandle, contexts: list[list[int]], new_tokens: int, ctx: DecodeContext) -> list[Generation]:
        transform = partial(
            filter_top_k_top_p, temperature=self.option("temperature"), top_k=self.option("top_k"), top_p=self.option("p")
        )
        return decode(handle, contexts, new_tokens, ctx.seeds, sampling_pick(transform), stop_at_eos=ctx.stop_at_eos)
