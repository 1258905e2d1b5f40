"""n-gram entropy (Ent-n): Shannon entropy in bits of the corpus's empirical n-gram distribution."""

from __future__ import annotations

from typing import Any

from harness.api import Param

from ._common import POOLED_SHORT_ROWS, PooledNgramMetric, per_text_shares, unit_param


class NgramEntropy(PooledNgramMetric):
    """H_n = −Σ_g p(g) log2 p(g) over the pooled n-grams of all texts; higher = more diverse."""

    name = "ngram-entropy"
    description = (
        "Entropy (bits) of the empirical n-gram distribution pooled over all continuations (Ent-n); higher "
        "means a more varied vocabulary of n-grams."
    )
    level = "corpus"
    higher_is_better = True
    requires = ("output_text",)
    modalities = ("text",)
    version = "1"
    params = (
        Param("n", int, default=1, min=1, max=16, help="n-gram order (1 = unigram entropy)"),
        unit_param("words"),
    )
    definition = (
        "H_n = −Σ_g p(g) log2 p(g), in bits, where p(g) = c(g) / Σ_g' c(g') and c(g) is the number of "
        "occurrences of the n-gram g among the contiguous n-grams of all records pooled (a text of L tokens has "
        "L-n+1 n-grams, none if L < n; default n = 1). Tokens are whitespace words of output_text "
        "(str.split()) by default, or output_ids with unit=token-ids. 0.0 when the corpus has no n-grams. The "
        "unconditional entropy, not GEM's conditional H(w_n | w_<n). Interval: a seeded bootstrap over prompts "
        "of per-text contributions computed once on the whole corpus, e_i = (N / Σ_g c(g)) · Σ_{occurrences g in "
        "text i} −log2 p(g) (mean_i e_i = H_n exactly: each occurrence carries its surprisal under the corpus "
        "distribution), because re-estimating p in a with-replacement resample biases the entropy low."
    ) + POOLED_SHORT_ROWS

    def score_corpus(self, samples: list[dict[str, Any]]) -> float:
        import numpy as np

        counts, total = self._index.pooled_counts(self._texts(samples))
        if total == 0:
            return 0.0
        p = counts[counts > 0] / float(total)
        return float(max(0.0, -np.sum(p * np.log2(p))))

    def score_per_text(self, samples: list[dict[str, Any]]) -> list[float]:
        """e_i of every record (their mean is H_n; the bootstrap resamples them)."""
        import numpy as np

        texts = self._texts(samples)
        counts, total = self._index.pooled_counts(texts)
        surprisal = np.zeros_like(counts)
        if total:
            seen = counts > 0
            surprisal[seen] = -np.log2(counts[seen] / float(total))
        return per_text_shares(self._index.contributions(texts, surprisal), total)
