"""``greedy``: always the most likely next token (the paper's decoder for hyperfitted models)."""

from __future__ import annotations

from harness.api import DecodeContext, Decoder, Generation, ModelHandle
from harness_plugins.decoders._loop import decode, greedy_pick


class Greedy(Decoder):
    name = "greedy"
    description = "Argmax at every step; deterministic."
    version = "1"
    deterministic = True
    params = ()

    def generate(self, handle: ModelHandle, contexts: list[list[int]], new_tokens: int, ctx: DecodeContext) -> list[Generation]:
        return decode(handle, contexts, new_tokens, ctx.seeds, greedy_pick, stop_at_eos=ctx.stop_at_eos)
