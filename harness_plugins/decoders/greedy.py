"""``greedy``: always the most likely next token (the paper's decoder for hyperfitted models)."""

from __future__ import annotations

from harness.api import ComposableDecoder


class Greedy(ComposableDecoder):
    """Definition: no processors; the argmax of the raw logits (EOS suppressed unless ``stop_at_eos``)."""

    name = "greedy"
    description = "Argmax at every step; deterministic."
    version = "1"
    params = ()
