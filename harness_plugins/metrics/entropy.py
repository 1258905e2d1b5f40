"""Mean next-token entropy of the raw model distribution along each generated continuation."""

from __future__ import annotations

import math
from typing import Any

from harness.api import Metric


class GenerationEntropy(Metric):
    """Averages the decoder's per-step entropies; it describes the model's confidence, it does not rank quality."""

    name = "entropy"
    description = (
        "Mean entropy (nats) of the raw next-token distribution over the generated positions, averaged over "
        "continuations. Descriptive (no better direction): hyperfitted models are expected to score low."
    )
    level = "sample"
    higher_is_better = None
    requires = ("step_entropy",)
    modalities = ("text", "image")
    version = "1"
    params = ()
    definition = (
        "For each continuation, step_entropy holds H_t = -sum_v p_t(v) ln p_t(v) in nats, where p_t = "
        "softmax(raw logits) of the model at generated position t (before temperature, top-k/top-p or any other "
        "processing), one value per generated token, as recorded by the decoder. The per-continuation "
        "value is the arithmetic mean of step_entropy over its positions, and the metric is the unweighted mean "
        "over continuations (each continuation counts once, whatever its length), with a mean ± 1.96·stderr "
        "interval. Short and empty rows: a continuation that stopped at EOS (only under eval.stop_at_eos: true) "
        "is averaged over the positions it has (a mean per position, so its length does not scale it); an empty "
        "continuation (no output_ids) has no positions and is not scored, and the interval's n counts the scored "
        "continuations. A non-empty continuation without step_entropy values is an error (a decoder that does "
        "not record entropies), not a skipped or NaN value. Unlike the paper's Table 3 entropy, this is measured "
        "on the model's own generations, not teacher-forced on reference text."
    )

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        out: list[float] = []
        for i, rec in enumerate(samples):
            steps = rec.get("step_entropy") or []
            if len(steps) == 0:
                if "output_ids" in rec and len(rec["output_ids"]) == 0:
                    continue  # an empty continuation (EOS at the first step): no positions, not scored
                pid = rec.get("prompt_id", f"<record {i}>")
                raise ValueError(
                    f"entropy: record for prompt_id {pid!r} has no step_entropy values "
                    "(a decoder that does not record entropies)"
                )
            out.append(math.fsum(float(v) for v in steps) / len(steps))
        return out
