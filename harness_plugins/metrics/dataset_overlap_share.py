"""Share of continuations whose longest token overlap with the training sequences exceeds a threshold."""

from __future__ import annotations

from typing import Any

from harness.api import Metric, Param

from ._common import per_text_shares
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
        OVERLAP_RULE + " The metric is the fraction (in [0, 1], not percent) of the counted continuations whose "
        "overlap is strictly greater than `threshold` tokens (default 10, the paper's 'texts with overlaps > 10 "
        "tokens'; 0.0 when none is counted). Its interval is a seeded percentile bootstrap over prompts of the "
        "per-continuation indicators, each scaled by N / (counted continuations) and 0 for an uncounted one, so "
        "that their mean is the fraction."
    )

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        self._cache = OverlapCache()

    def score_per_text(self, samples: list[dict[str, Any]]) -> list[float]:
        """Per continuation: 1 if its overlap exceeds the threshold, else 0, scaled by N / (non-empty continuations);
        0 for an empty one (not counted). The metric is their mean."""
        threshold = int(self.option("threshold"))
        counted = [bool(rec["output_ids"]) for rec in samples]
        flags = [1 if v > threshold and c else 0 for v, c in zip(self._cache.overlaps(self, samples), counted)]
        return per_text_shares([float(f) for f in flags], sum(counted))

    def score_corpus(self, samples: list[dict[str, Any]]) -> float:
        counted = [rec for rec in samples if rec["output_ids"]]
        if not counted:
            return 0.0
        threshold = int(self.option("threshold"))
        return sum(1 for v in self._cache.overlaps(self, counted) if v > threshold) / len(counted)
