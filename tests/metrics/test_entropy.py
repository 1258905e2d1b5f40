"""Mean per-step entropy of the raw next-token distribution, per continuation."""

from __future__ import annotations

import pytest

from harness_plugins.metrics.entropy import GenerationEntropy


def test_entropy_per_text_mean():
    # (1+2+3)/3 = 2.0; (0.5+0.5)/2 = 0.5; a single step is its own mean
    recs = [
        {"prompt_id": "a", "step_entropy": [1.0, 2.0, 3.0]},
        {"prompt_id": "b", "step_entropy": [0.5, 0.5]},
        {"prompt_id": "c", "step_entropy": [4.25]},
    ]
    assert GenerationEntropy().score_samples(recs) == [2.0, 0.5, 4.25]


def test_entropy_texts_count_equally_regardless_of_length():
    recs = [{"prompt_id": "a", "step_entropy": [1.0] * 10}, {"prompt_id": "b", "step_entropy": [3.0]}]
    vals = GenerationEntropy().score_samples(recs)
    assert sum(vals) / len(vals) == 2.0  # not (10*1 + 3) / 11


@pytest.mark.parametrize("steps", [[], None])
def test_entropy_missing_steps_raise_with_prompt_id(steps):
    recs = [{"prompt_id": "ok", "step_entropy": [1.0]}, {"prompt_id": "doc-17:0", "step_entropy": steps}]
    with pytest.raises(ValueError, match="doc-17:0"):
        GenerationEntropy().score_samples(recs)
    # a non-empty continuation without entropies is a decoder that records none: still an error
    recs[1]["output_ids"] = [5, 6]
    with pytest.raises(ValueError, match="doc-17:0"):
        GenerationEntropy().score_samples(recs)


def test_entropy_empty_continuation_is_not_scored():
    # EOS at the first step under eval.stop_at_eos: no positions, no value (not a crash, not 0.0)
    recs = [
        {"prompt_id": "a", "output_ids": [4, 5], "step_entropy": [1.0, 2.0]},
        {"prompt_id": "b", "output_ids": [], "step_entropy": [], "stopped_at_eos": True},
        {"prompt_id": "c", "output_ids": [4], "step_entropy": [0.5], "stopped_at_eos": True},
    ]
    assert GenerationEntropy().score_samples(recs) == [1.5, 0.5]


def test_entropy_metadata():
    assert GenerationEntropy.name == "entropy"
    assert GenerationEntropy.level == "sample"
    assert GenerationEntropy.higher_is_better is None
    assert GenerationEntropy.requires == ("step_entropy",)
    assert "descriptive" in GenerationEntropy.description.lower()
    assert "nats" in GenerationEntropy.definition
