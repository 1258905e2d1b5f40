"""Decoders: greedy and nucleus sampling, built on one batched decoding loop."""

from harness import hookimpl
from harness_plugins.decoders.greedy import Greedy
from harness_plugins.decoders.top_p import TopP


@hookimpl
def harness_register_decoders(register):
    register(Greedy)
    register(TopP)
