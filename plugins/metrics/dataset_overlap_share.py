"""Share of continuations whose longest token overlap with the training sequences exceeds a threshold."""

from __future__ import annotations

from typing import Any

from harness.api import Metric
from harness.params import Param

from .dataset_overlap import OVERLAP_RULE, OverlapCache


class DatasetOverlapShare(Metric):
    """Fraction of continuations with overlap > threshold tokens (the paper: "<2% of texts over 10 tokens")."""

    name = "dataset-overlap-share"
    description = (
        "Fraction of continuations that share a contiguous run of more than `threshold` (10) token ids with the "
        "recipe's training sequences (lower = less copying)."
    )
    level = "corpus"
    higher_is_better = False
    requires = ("output_ids",)
    modalities = ("text", "image")
    version = "1"
    params = (
        Param("threshold", int, default=10, min=0,
              help="count a continuation when its overlap is strictly greater than this many tokens"),
    )  # fmt: skip
    definition = (
        OVERLAP_RULE + " The metric is the fraction (in [0, 1], not percent) of continuations whose overlap is "
        "strictly greater than `threshold` tokens (default 10, the paper's 'texts with overlaps > 10 tokens'). "
        "Its interval is a seeded percentile bootstrap over prompts of the per-continuation indicators."
    )

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        self._cache = OverlapCache()

    def score_per_text(self, samples: list[dict[str, Any]]) -> list[float]:
        """1.0 for a continuation whose overlap exceeds the threshold, else 0.0 (the metric is their mean)."""
        threshold = int(self.option("threshold"))
        return [1.0 if v > threshold else 0.0 for v in self._cache.overlaps(self, samples)]

    def score_corpus(self, samples: list[dict[str, Any]]) -> float:
        flags = self.score_per_text(samples)
        return sum(flags) / len(flags)
