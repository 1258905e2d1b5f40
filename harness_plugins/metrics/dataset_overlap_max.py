"""Maximum over continuations of the longest token overlap with the training sequences."""

from __future__ import annotations

from typing import Any

from harness.api import Metric

from .dataset_overlap import OVERLAP_RULE, OverlapCache


class DatasetOverlapMax(Metric):
    """The largest per-continuation overlap (corpus level: a maximum is not a mean)."""

    name = "dataset-overlap-max"
    description = (
        "The longest contiguous run of token ids that any continuation shares with the recipe's training "
        "sequences (the paper's maximum dataset overlap; lower = less copying)."
    )
    level = "corpus"
    higher_is_better = False
    requires = ("output_ids",)
    modalities = ("text", "image")
    version = "1"
    params = ()
    definition = (
        OVERLAP_RULE + " The metric is the maximum overlap over the counted continuations, in tokens (the "
        "paper's Table 2 maximum; 0.0 when none is counted); its interval is a seeded percentile bootstrap over prompts (a maximum's bootstrap interval is "
        "at most the maximum itself and is only a rough guide)."
    )

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        self._cache = OverlapCache()

    def score_corpus(self, samples: list[dict[str, Any]]) -> float:
        values = [v for v, rec in zip(self._cache.overlaps(self, samples), samples) if rec["output_ids"]]
        return float(max(values, default=0))
