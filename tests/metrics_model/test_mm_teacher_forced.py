"""Teacher-forced metrics (tf-entropy, tf-topk-prob, perplexity): hand-computed and independently computed values."""

from __future__ import annotations

import math

import pytest
from conftest import tiny_module
from harness_plugins.metrics.model_based import (
    TeacherForcedEntropy,
    TeacherForcedPerplexity,
    TeacherForcedTopKProb,
)
from harness_plugins.metrics.model_based._teacher_forced import reference_ids
from mm_helpers import ListCodec, context_for, fixed_distribution_model

from harness.api import MetricContext
from harness.errors import InputError

TEXTS = [
    ("The river ran", " past the old stone mill and on"),
    ("A quiet morning", " in the valley"),
    ("Silver", " light on copper fields, then thunder over the harbor"),
]


def make(cls, context, **config):
    metric = cls(config)
    metric.context = context
    return metric


# --------------------------------------------------------------------------- hand-computed golden values


def test_fixed_distribution_golden_values():
    # p = (0.5, 0.25, 0.125, 0.125) at every position; reference tokens 0, 1, 3
    module = fixed_distribution_model([0.5, 0.25, 0.125, 0.125])
    ctx = context_for(module, ListCodec())
    records = [{"prompt_id": "a", "context_ids": [2, 2], "reference_text": "0 1 3"}]
    entropy = 0.5 * math.log(2) + 0.25 * math.log(4) + 2 * 0.125 * math.log(8)  # = 1.75 ln 2
    assert make(TeacherForcedEntropy, ctx).score_samples(records) == pytest.approx([entropy], abs=1e-6)
    assert make(TeacherForcedTopKProb, ctx, k=1).score_samples(records) == pytest.approx([0.5], abs=1e-6)
    assert make(TeacherForcedTopKProb, ctx, k=3).score_samples(records) == pytest.approx([0.875], abs=1e-6)
    assert make(TeacherForcedTopKProb, ctx, k=50).score_samples(records) == pytest.approx([1.0], abs=1e-6)
    # NLL: ln 2, ln 4, ln 8 → mean 2 ln 2 → perplexity 4
    assert make(TeacherForcedPerplexity, ctx).score_samples(records) == pytest.approx([4.0], abs=1e-5)


def test_span_text_scores_context_tokens_too():
    module = fixed_distribution_model([0.5, 0.25, 0.125, 0.125])
    ctx = context_for(module, ListCodec())
    # context [0, 0] + reference [3]: span=text scores tokens 2..3 → NLL ln 2, ln 8 → ppl exp(2 ln 2) = 4
    records = [{"prompt_id": "a", "context_ids": [0, 0], "reference_text": "3"}]
    assert make(TeacherForcedPerplexity, ctx, span="text").score_samples(records) == pytest.approx([4.0], abs=1e-5)
    assert make(TeacherForcedPerplexity, ctx).score_samples(records) == pytest.approx([8.0], abs=1e-5)


def test_reference_ids_win_over_reference_text():
    module = fixed_distribution_model([0.5, 0.25, 0.125, 0.125])
    ctx = context_for(module, ListCodec())
    records = [{"prompt_id": "a", "context_ids": [2], "reference_text": "3 3", "reference_ids": [0, 0]}]
    assert make(TeacherForcedPerplexity, ctx).score_samples(records) == pytest.approx([2.0], abs=1e-5)


def test_hf_tokenizer_reference_is_encoded_without_special_tokens():
    class Tok:
        def __call__(self, text, add_special_tokens=True, verbose=False):
            ids = [int(t) for t in text.split()]
            return {"input_ids": ([99] if add_special_tokens else []) + ids}

    codec = ListCodec()
    codec.tokenizer = Tok()
    assert reference_ids({"reference_text": "4 5"}, codec) == [4, 5]


def test_empty_reference_is_an_error():
    ctx = context_for(fixed_distribution_model([0.5, 0.5]), ListCodec())
    with pytest.raises(ValueError, match="no reference tokens"):
        make(TeacherForcedEntropy, ctx).score_samples([{"prompt_id": "x", "context_ids": [1], "reference_text": ""}])


def test_no_model_is_a_clear_input_error():
    metric = make(TeacherForcedPerplexity, MetricContext())
    with pytest.raises(InputError, match="needs the evaluated model"):
        metric.score_samples([{"prompt_id": "x", "context_ids": [1], "reference_text": "2"}])


# --------------------------------------------------------------------------- tiny Llama vs a direct computation


def direct(module, codec, records, span="continuation"):
    """Per record: each sequence alone (no padding, no batching), float64 math on the logits."""
    import torch

    out = []
    for r in records:
        ctx_ids = r["context_ids"]
        ids = ctx_ids + codec.encode(r["reference_text"])
        with torch.no_grad():
            logits = module(input_ids=torch.tensor([ids])).logits[0].double()
        first = len(ctx_ids) if span == "continuation" else 1
        ent, nll, top = [], [], {1: [], 3: [], 5: []}
        for t in range(first, len(ids)):
            logp = torch.log_softmax(logits[t - 1], -1)
            p = logp.exp()
            ent.append(float(-(p * logp).sum()))
            nll.append(float(-logp[ids[t]]))
            ranked = sorted(p.tolist(), reverse=True)
            for k, values in top.items():
                values.append(sum(ranked[:k]))
        mean = lambda xs: sum(xs) / len(xs)
        out.append({"entropy": mean(ent), "ppl": math.exp(mean(nll)), **{f"top{k}": mean(v) for k, v in top.items()}})
    return out


@pytest.fixture(scope="module")
def tiny():
    tm = tiny_module()
    module, codec = tm.tiny_llama(seed=3), tm.ByteCodec()
    records = [
        {"prompt_id": f"p{i}", "context_ids": codec.encode(c), "reference_text": r} for i, (c, r) in enumerate(TEXTS)
    ]
    return module, codec, records


@pytest.mark.parametrize("span", ["continuation", "text"])
@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_tiny_llama_matches_direct_computation(tiny, span, batch_size):
    module, codec, records = tiny
    want = direct(module, codec, records, span)
    ctx = context_for(module, codec)
    kw = {"span": span, "batch_size": batch_size}
    got_entropy = make(TeacherForcedEntropy, ctx, **kw).score_samples(records)
    got_ppl = make(TeacherForcedPerplexity, ctx, **kw).score_samples(records)
    assert got_entropy == pytest.approx([w["entropy"] for w in want], rel=1e-5)
    assert got_ppl == pytest.approx([w["ppl"] for w in want], rel=1e-5)
    for k in (1, 3, 5):
        got = make(TeacherForcedTopKProb, ctx, k=k, **kw).score_samples(records)
        assert got == pytest.approx([w[f"top{k}"] for w in want], rel=1e-5)


def test_one_forward_pass_shared_by_all_teacher_forced_metrics(tiny):
    module, codec, records = tiny
    calls = []
    hook = module.register_forward_hook(lambda *a: calls.append(1))
    try:
        ctx = context_for(module, codec)
        for cls, config in [(TeacherForcedEntropy, {}), (TeacherForcedPerplexity, {}), (TeacherForcedTopKProb, {"k": 3}),
                            (TeacherForcedTopKProb, {"k": 5})]:  # fmt: skip
            make(cls, ctx, batch_size=8, **config).score_samples(records)
        assert len(calls) == 1  # three records, one batch, one pass for all four metrics
        make(TeacherForcedTopKProb, ctx, k=7, batch_size=8).score_samples(records)  # needs more than top-5
        assert len(calls) == 2
        make(TeacherForcedEntropy, context_for(module, codec), batch_size=8).score_samples(records)  # new context
        assert len(calls) == 3
    finally:
        hook.remove()


def test_entropy_is_the_decoding_loops_formula_to_the_bit(tiny):
    """forward_stats runs on harness.api's forward helpers: on an unpadded sequence its entropies equal
    step_stats (what decoders record as step_entropy) of the same logits exactly, not just approximately."""
    import numpy as np
    import torch
    from harness_plugins.metrics.model_based._teacher_forced import forward_stats, scored_sequences

    from harness.api import ModelHandle, step_stats

    module, codec, records = tiny
    items = scored_sequences(records, codec, "continuation")
    stats = forward_stats(ModelHandle(module, codec, device="cpu"), items, 1, 5)
    for (ids, first), stat in zip(items, stats):
        with torch.inference_mode():
            logits = module(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long)).logits
        entropy, top1 = step_stats(logits[0, first - 1 : len(ids) - 1])
        assert np.array_equal(stat["entropy"], entropy.double().numpy())
        assert np.array_equal(stat["topk"][:, 0], top1.double().numpy())
