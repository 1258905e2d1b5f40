"""perplexity: per-text perplexity of the human continuation under the evaluated model, teacher-forced."""

from __future__ import annotations

import math
from typing import Any

from ._teacher_forced import TeacherForcedMetric


class TeacherForcedPerplexity(TeacherForcedMetric):
    name = "perplexity"
    description = (
        "Perplexity of the human reference continuation under the evaluated model, teacher-forced on context + "
        "reference (paper Tables 1 and 3): exp of each text's mean token NLL, averaged over texts. Lower is better."
    )
    higher_is_better = False
    definition = (
        "For each record, the evaluated model runs teacher-forced over context_ids + the reference continuation's "
        "token ids (reference_ids when stored, else reference_text re-encoded without special tokens). At each "
        "scored position t (span=continuation: the reference tokens; span=text: every token after the first), "
        "NLL_t = -ln p_t(x_t) with p_t = softmax(float32 raw logits predicting token t) and x_t the actual token. "
        "The record's value is exp(mean of NLL_t over its scored positions), its own perplexity; the metric is the "
        "unweighted mean of these per-text perplexities over records (not exp of the pooled NLL), with a "
        "mean ± 1.96·stderr interval."
    )

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        return [math.exp(math.fsum(s["nll"].tolist()) / s["nll"].size) for s in self.position_stats(samples)]
