"""``min-p``: sample among tokens at least p × as likely as the most likely one (Nguyen et al. 2024)."""

from __future__ import annotations

from functools import partial

from harness.api import DecodeContext, Decoder, Generation, ModelHandle
from harness.params import Param
from harness_plugins.decoders._loop import chain, decode, min_p_filter, sampling_pick, scale_temperature


class MinP(Decoder):
    """Definition: scores = logits / temperature, q = softmax(scores); remove every token with
    q(v) < p · max q; sample from the rest with the row's own generator (transformers' MinPLogitsWarper)."""

    name = "min-p"
    description = "Min-p sampling: temperature, then drop tokens below p times the top token's probability."
    version = "1"
    deterministic = False
    params = (
        Param("p", float, default=0.1, min=0.0, max=1.0, help="relative probability threshold"),
        Param("temperature", float, default=1.0, min=0.0, exclusive_min=True, help="softmax temperature"),
    )

    def generate(self, handle: ModelHandle, contexts: list[list[int]], new_tokens: int, ctx: DecodeContext) -> list[Generation]:
        transform = chain(
            partial(scale_temperature, temperature=self.option("temperature")),
            partial(min_p_filter, min_p=self.option("p")),
        )
        return decode(handle, contexts, new_tokens, ctx.seeds, sampling_pick(transform), stop_at_eos=ctx.stop_at_eos)
