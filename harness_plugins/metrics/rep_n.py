"""rep-n (Su et al. 2022, SimCTG): the corpus-pooled share of repeated n-grams, ×100."""

from __future__ import annotations

from typing import Any, Hashable

from harness.api import Param

from ._common import CACHE_LIMIT, POOLED_SHORT_ROWS, UnitMetric, content_key, ngrams, unit_param

SIMCTG_HELP = (
    "match SimCTG's evaluation.py: skip the last n-gram of every text (its `while end_idx < len(tokens)` loop) "
    "and round rep-n to 2 decimals (in percent)"
)


class PooledNgramStats:
    """Per-text (distinct n-grams, n-grams) pairs for several orders, cached by content for bootstrap resamples."""

    def __init__(self, metric: UnitMetric, orders: tuple[int, ...]):
        self.metric = metric
        self.orders = orders
        self._cache: dict[tuple[Hashable, bool], tuple[tuple[int, int], ...]] = {}

    def pooled(self, samples: list[dict[str, Any]], skip_last: bool) -> list[tuple[int, int]]:
        """[(Σ_texts distinct_n, Σ_texts total_n) for n in orders], in the metric's unit."""
        sums = [[0, 0] for _ in self.orders]
        for i, rec in enumerate(samples):
            tokens = self.metric.units(rec, i)
            key = (content_key(tokens), skip_last)
            stats = self._cache.get(key)
            if stats is None:
                if len(self._cache) >= CACHE_LIMIT:
                    self._cache.clear()
                per_order = []
                for n in self.orders:
                    grams = ngrams(tokens, n, skip_last=skip_last)
                    per_order.append((len(set(grams)), len(grams)))
                stats = self._cache[key] = tuple(per_order)
            for acc, (unique, total) in zip(sums, stats):
                acc[0] += unique
                acc[1] += total
        return [(u, t) for u, t in sums]


def rep_percent(unique: int, total: int, simctg_compat: bool) -> float:
    """100 · (1 − unique/total), 0.0 without n-grams; rounded to 2 decimals under simctg_compat."""
    if total == 0:
        return 0.0
    value = 100.0 * (1.0 - unique / total)
    return round(value, 2) if simctg_compat else value


class RepN(UnitMetric):
    """Corpus-pooled repetition rate of n-grams (percent); lower = less repetitive."""

    name = "rep-n"
    description = (
        "SimCTG's rep-n: 100 × (1 − Σ distinct n-grams per text / Σ n-grams per text), pooled over the corpus, "
        "on whitespace words by default; lower means less repetition."
    )
    level = "corpus"
    higher_is_better = False
    requires = ("output_text",)
    modalities = ("text",)
    version = "1"
    params = (
        Param("n", int, default=2, min=1, max=16, help="n-gram order (SimCTG reports rep-2, rep-3, rep-4)"),
        unit_param("words"),
        Param("simctg_compat", bool, default=False, help=SIMCTG_HELP),
    )
    definition = (
        "rep-n = 100 × (1 − Σ_i u_i / Σ_i t_i) over all records i, where t_i is the number of contiguous "
        "n-grams of text i (default n = 2) and u_i the number of distinct ones within text i (uniqueness is per "
        "text, the counts are pooled over the corpus: Su et al. 2022, SimCTG `measure_repetition_and_diversity`). "
        "Tokens are whitespace-separated words of output_text (str.split(); SimCTG's text.strip().split()) by "
        "default, or output_ids with unit=token-ids. A text of L tokens has L-n+1 n-grams (0 if L < n). With "
        "simctg_compat=true SimCTG's published behaviour is reproduced: its loop `while end_idx < len(tokens)` "
        "never takes the last n-gram, so a text has max(L-n, 0) n-grams, and rep-n is rounded to 2 decimals. "
        "0.0 when the corpus has no n-grams. Percent in [0, 100); the interval is a seeded bootstrap over prompts."
    ) + POOLED_SHORT_ROWS

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        self._stats = PooledNgramStats(self, (int(self.option("n")),))

    def score_corpus(self, samples: list[dict[str, Any]]) -> float:
        compat = bool(self.option("simctg_compat"))
        [(unique, total)] = self._stats.pooled(samples, compat)
        return rep_percent(unique, total, compat)
