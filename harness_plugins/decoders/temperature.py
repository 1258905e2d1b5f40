"""``temperature``: pure ancestral sampling from softmax(logits / T)."""

from __future__ import annotations

from functools import partial

from harness.api import DecodeContext, Decoder, Generation, ModelHandle
from harness.params import Param
from harness_plugins.decoders._loop import decode, sampling_pick, scale_temperature


class Temperature(Decoder):
    """Definition: sample the next token from softmax(logits / temperature) over the whole vocabulary,
    with the row's own generator (temperature 1 = the model's own distribution)."""

    name = "temperature"
    description = "Pure sampling from the full distribution at a temperature (1.0 = ancestral sampling)."
    version = "1"
    deterministic = False
    params = (Param("temperature", float, default=1.0, min=0.0, exclusive_min=True, help="softmax temperature"),)

    def generate(self, handle: ModelHandle, contexts: list[list[int]], new_tokens: int, ctx: DecodeContext) -> list[Generation]:
        transform = partial(scale_temperature, temperature=self.option("temperature"))
        return decode(handle, contexts, new_tokens, ctx.seeds, sampling_pick(transform), stop_at_eos=ctx.stop_at_eos)
