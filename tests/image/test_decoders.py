"""Greedy, top-p and citation-blocked decode pixel tokens unchanged, up to the last pixel of the image."""

from __future__ import annotations

import pytest
from imagekit import igpt  # noqa: F401  (a fixture)

from harness.api import DecodeContext


def decoder(name: str, **params):
    from harness_plugins.decoders.citation_blocked import CitationBlocked
    from harness_plugins.decoders.greedy import Greedy
    from harness_plugins.decoders.top_p import TopP

    return {"greedy": Greedy, "top-p": TopP, "citation-blocked": CitationBlocked}[name](params)


def contexts(igpt, n: int = 3) -> list[list[int]]:
    sos = igpt.codec.sos_token_id
    return [[sos] + [(i + k) % 4 for i in range(16)] for k in range(n)]  # SOS + the first 2 of 8 rows


@pytest.mark.parametrize("name", ["greedy", "top-p", "citation-blocked"])
def test_decoders_complete_the_whole_image(igpt, name):
    ctxs = contexts(igpt)
    train = [[igpt.codec.sos_token_id] + [0] * 64]
    gens = decoder(name).generate(igpt, ctxs, 48, DecodeContext(seeds=[1, 2, 3], train_sequences=train))
    for gen in gens:
        assert len(gen.output_ids) == 48 and set(gen.output_ids) <= {0, 1, 2, 3}  # never SOS: the head has no SOS
        assert len(gen.step_entropy) == 48
    # SOS + 64 pixels = 65 tokens on a model with 65 positions: the last pixel is predicted, never fed


def test_greedy_matches_argmax_by_full_recompute(igpt):
    """The KV-cached loop equals re-running the whole sequence at every step. (transformers 5.24's own
    ImageGPT ``generate`` does not: it repeats its first token, so it is not the reference here.)"""
    import torch

    ctx = contexts(igpt, 1)
    gen = decoder("greedy").generate(igpt, ctx, 48, DecodeContext(seeds=[0]))[0]
    seq = list(ctx[0])
    with torch.inference_mode():
        for _ in range(48):
            seq.append(int(igpt.module(torch.tensor([seq])).logits[0, -1].argmax()))
    assert gen.output_ids == seq[17:]


def test_citation_blocker_bans_training_runs_of_pixels(igpt):
    ctxs = contexts(igpt, 2)
    plain = decoder("greedy").generate(igpt, ctxs, 48, DecodeContext(seeds=[0, 0]))
    train = [[igpt.codec.sos_token_id] + g.output_ids for g in plain]  # its own greedy output as "training data"
    blocked = decoder("citation-blocked", window=3).generate(igpt, ctxs, 48, DecodeContext(seeds=[0, 0], train_sequences=train))
    for gen in blocked:
        seen = {tuple(s[i : i + 4]) for s in train for i in range(len(s) - 3)}
        assert not any(tuple(gen.output_ids[i : i + 4]) in seen for i in range(len(gen.output_ids) - 3))
        assert gen.extras["blocked_steps"] > 0
