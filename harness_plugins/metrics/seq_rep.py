"""seq-rep-n (Welleck et al. 2019): the share of repeated n-grams within each continuation."""

from __future__ import annotations

from typing import Any

from harness.api import Param

from ._common import UNIT_RULE, UnitMetric, ngrams, unit_param


class SeqRepN(UnitMetric):
    """Per-text 1 − unique/total n-grams on token ids (or words), averaged over texts (lower = less repetitive)."""

    name = "seq-rep-n"
    description = (
        "Welleck et al.'s seq-rep-n: per continuation, 1 − |unique n-grams| / |n-grams| of the generated token "
        "ids (or words, with unit=words), mean over continuations (a fraction; lower means less repetition)."
    )
    level = "sample"
    higher_is_better = False
    requires = ("output_ids",)
    modalities = ("text", "image")
    version = "1"
    params = (
        Param("n", int, default=4, min=1, max=16, help="n-gram order (the paper reports seq-rep-4)"),
        unit_param("token-ids"),
    )
    definition = (
        "For each continuation with generated token ids x_1..x_L (output_ids, context excluded), take its "
        "L-n+1 contiguous n-grams (default n = 4); its value is 1 − |distinct n-grams| / (L-n+1). The metric is "
        "the unweighted mean over the scored continuations with a mean ± 1.96·stderr interval, a fraction in "
        "[0, 1) (Welleck et al. 2019, `pct_repeat_{n}grams` in unlikelihood_training, not ×100). Short and empty "
        "rows: a continuation with L < n (empty, or stopped at EOS under eval.stop_at_eos: true) has no n-grams "
        "and is not scored (scoring it 0.0 would credit it as perfectly non-repetitive); a continuation that "
        "stopped at EOS later is scored over the n-grams it has; the interval's n counts the scored "
        "continuations. Default unit=token-ids; with unit=words, x_1..x_L are the L words of output_text (a text "
        "with fewer than n words is not scored). "
    ) + UNIT_RULE

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        n = int(self.option("n"))
        out: list[float] = []
        for i, rec in enumerate(samples):
            grams = ngrams(self.units(rec, i), n)
            if grams:  # no n-grams: not scored (see the definition)
                out.append(1.0 - len(set(grams)) / len(grams))
        return out
