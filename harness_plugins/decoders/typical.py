"""``typical``: locally typical sampling (Meister et al., TACL 2023)."""

from __future__ import annotations

from functools import partial

from harness.api import DecodeContext, Decoder, Generation, ModelHandle
from harness.params import Param
from harness_plugins.decoders._loop import chain, decode, sampling_pick, scale_temperature, typical_filter


class Typical(Decoder):
    """Definition: scores = logits / temperature, p = softmax(scores), H = entropy(p); rank tokens by
    |−log p(v) − H| ascending and keep the shortest prefix of the ranking whose mass reaches ``mass``
    (ties with the last kept token kept, at least one token); sample with the row's own generator.
    Same rule as transformers' TypicalLogitsWarper (``typical_p``)."""

    name = "typical"
    description = "Locally typical sampling: keep the tokens whose surprisal is closest to the entropy, up to a mass."
    version = "1"
    deterministic = False
    params = (
        Param("mass", float, default=0.9, min=0.0, max=1.0, exclusive_min=True, help="probability mass kept"),
        Param("temperature", float, default=1.0, min=0.0, exclusive_min=True, help="softmax temperature"),
    )

    def generate(self, handle: ModelHandle, contexts: list[list[int]], new_tokens: int, ctx: DecodeContext) -> list[Generation]:
        transform = chain(
            partial(scale_temperature, temperature=self.option("temperature")),
            partial(typical_filter, mass=self.option("mass")),
        )
        return decode(handle, contexts, new_tokens, ctx.seeds, sampling_pick(transform), stop_at_eos=ctx.stop_at_eos)
