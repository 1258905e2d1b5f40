"""tf-entropy: mean entropy of the evaluated model's next-token distribution, teacher-forced on the original texts."""

from __future__ import annotations

import math
from typing import Any

from ._teacher_forced import TeacherForcedMetric


class TeacherForcedEntropy(TeacherForcedMetric):
    name = "tf-entropy"
    description = (
        "Mean entropy (nats) of the evaluated model's raw next-token distribution, teacher-forced on each "
        "record's context + human reference continuation (paper Table 3). Descriptive: hyperfitting lowers it."
    )
    higher_is_better = None
    definition = (
        "For each record, the evaluated model runs teacher-forced over context_ids + the reference continuation's "
        "token ids (reference_ids when stored, else reference_text re-encoded without special tokens). At each "
        "scored position t (span=continuation: the reference tokens; span=text: every token after the first), "
        "p_t = softmax(float32 raw logits predicting token t) and H_t = -sum_v p_t(v) ln p_t(v) in nats (0 ln 0 = 0). "
        "The record's value is the arithmetic mean of H_t over its scored positions; the metric is the unweighted "
        "mean over records with a mean ± 1.96·stderr interval."
    )

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        return [math.fsum(s["entropy"].tolist()) / s["entropy"].size for s in self.position_stats(samples)]
