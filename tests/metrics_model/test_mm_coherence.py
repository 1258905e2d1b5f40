"""coherence: hand-made embeddings, and MiniLM's cosine of identical texts."""

from __future__ import annotations

import math

import pytest
from harness_plugins.metrics.model_based import Coherence
from mm_helpers import use_table

from harness.api import MetricContext


def coherence(**config) -> Coherence:
    m = Coherence(config)
    m.context = MetricContext()
    return m


def test_hand_made_embeddings(monkeypatch):
    use_table(monkeypatch, {"ctx a": [1.0, 0.0], "out a": [1.0, 1.0], "ctx b": [0.0, 3.0], "out b": [0.0, -2.0],
                            "ctx c": [2.0, 0.0], "out c": [5.0, 0.0]})  # fmt: skip
    records = [{"context_text": f"ctx {k}", "output_text": f"out {k}"} for k in "abc"]
    assert coherence().score_samples(records) == pytest.approx([1 / math.sqrt(2), -1.0, 1.0], abs=1e-7)


def test_zero_vector_is_an_error(monkeypatch):
    use_table(monkeypatch, {"c": [0.0, 0.0], "o": [1.0, 0.0]})
    with pytest.raises(ValueError, match="zero vector"):
        coherence().score_samples([{"context_text": "c", "output_text": "o"}])


def test_minilm_identical_texts_score_one_and_related_beats_unrelated():
    text = "The harbor was quiet in the winter morning, and the boats lay still."
    records = [
        {"context_text": text, "output_text": text},
        {"context_text": "The cat sat on the mat.", "output_text": " A cat was sitting on a mat."},
        {"context_text": "The cat sat on the mat.", "output_text": " Quarterly interest rates rose by two percent."},
    ]
    same, related, unrelated = coherence().score_samples(records)
    assert same == pytest.approx(1.0, abs=1e-6)
    assert related > unrelated


def test_definition_names_the_embedder():
    assert "all-MiniLM-L6-v2" in Coherence.definition and "all-MiniLM-L6-v2" in Coherence.description
