"""tf-topk-prob: probability mass on the k most likely tokens, teacher-forced on the original texts (@k Prob)."""

from __future__ import annotations

import math
from typing import Any

from harness.api import Param

from ._teacher_forced import TeacherForcedMetric, teacher_forced_params


class TeacherForcedTopKProb(TeacherForcedMetric):
    name = "tf-topk-prob"
    description = (
        "Mean probability mass the evaluated model puts on its k most likely next tokens, teacher-forced on each "
        "record's context + human reference continuation (paper Table 3 '@1/@3/@5 Prob'). Descriptive."
    )
    higher_is_better = None
    params = (Param("k", int, default=1, min=1, help="number of most likely tokens whose mass is summed"),) + teacher_forced_params()
    definition = (
        "For each record, the evaluated model runs teacher-forced over context_ids + the reference continuation's "
        "token ids (reference_ids when stored, else reference_text re-encoded without special tokens). At each "
        "scored position t (span=continuation: the reference tokens; span=text: every token after the first), "
        "p_t = softmax(float32 raw logits predicting token t) and M_t = the sum of the k largest p_t(v) (whatever the "
        "actual token is; k capped at the vocabulary size). The record's value is the arithmetic mean of M_t over its "
        "scored positions (a fraction in [0, 1], not %); the metric is the unweighted mean over records with a "
        "mean ± 1.96·stderr interval."
    )

    @property
    def topk_needed(self) -> int:  # type: ignore[override]
        return int(self.option("k"))

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        k = int(self.option("k"))
        out = []
        for stat in self.position_stats(samples):
            topk = stat["topk"]
            column = min(k, topk.shape[1]) - 1
            out.append(math.fsum(topk[:, column].tolist()) / topk.shape[0])
        return out
