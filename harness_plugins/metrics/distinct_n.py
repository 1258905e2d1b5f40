"""distinct-n (Li et al. 2016, the GEM variant): distinct n-grams over all n-grams of the whole corpus."""

from __future__ import annotations

from typing import Any

from harness.api import Param

from ._common import POOLED_SHORT_ROWS, PooledNgramMetric, per_text_shares, unit_param


class DistinctN(PooledNgramMetric):
    """|distinct n-grams across all texts| / |n-grams across all texts|; higher = more diverse."""

    name = "distinct-n"
    description = (
        "Corpus-level distinct-n: the number of distinct n-grams across all continuations divided by the total "
        "number of n-grams (a fraction; higher means more diverse)."
    )
    level = "corpus"
    higher_is_better = True
    requires = ("output_text",)
    modalities = ("text",)
    version = "1"
    params = (
        Param("n", int, default=2, min=1, max=16, help="n-gram order"),
        unit_param("words"),
    )
    definition = (
        "distinct-n = |∪_i G_i| / Σ_i |g_i|, where g_i is the multiset of the L_i-n+1 contiguous n-grams of record "
        "i (none if L_i < n) and G_i its set: distinct n-grams counted across the whole corpus (an n-gram shared "
        "by two texts counts once), divided by the total number of n-grams, not by the number of tokens "
        "(GEM-metrics' `len(ngram_freqs)/ngram_len`, not Li et al.'s per-token scaling and not degen's "
        "count-of-singletons). Tokens are whitespace words of output_text (str.split()) by default, or "
        "output_ids with unit=token-ids; default n = 2. 0.0 when the corpus has no n-grams. A fraction in "
        "[0, 1]. Interval: a seeded bootstrap over prompts of per-text contributions computed once on the whole "
        "corpus, d_i = (N / Σ_j |g_j|) · Σ_{g in g_i} 1/c(g) with c(g) the corpus count of n-gram g (so mean_i d_i "
        "= distinct-n exactly): recounting distinct n-grams in a with-replacement resample would bias the "
        "interval low, since a prompt drawn twice adds its n-grams to the total but nothing to the distinct set."
    ) + POOLED_SHORT_ROWS

    def score_corpus(self, samples: list[dict[str, Any]]) -> float:
        counts, total = self._index.pooled_counts(self._texts(samples))
        return int((counts > 0).sum()) / total if total else 0.0

    def score_per_text(self, samples: list[dict[str, Any]]) -> list[float]:
        """d_i of every record (their mean is distinct-n; the bootstrap resamples them)."""
        import numpy as np

        texts = self._texts(samples)
        counts, total = self._index.pooled_counts(texts)
        inverse = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
        return per_text_shares(self._index.contributions(texts, inverse), total)
