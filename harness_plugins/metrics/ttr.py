"""Type-token ratio over the tail of each continuation, as the hyperfitting paper measures it."""

from __future__ import annotations

from typing import Any

from harness.api import Param

from ._common import UnitMetric, stopped_at_eos, unit_param

DEFAULT_WINDOW = 96


class TypeTokenRatio(UnitMetric):
    """TTR on model token ids by default (the paper's; tokenizer-specific, no text normalisation), or on words."""

    name = "ttr"
    description = (
        "Type-token ratio of the last `window` generated token ids (or words, with unit=words) per continuation "
        "(the paper's TTR, "
        "reported here as a fraction in [0, 1]); higher means less repetitive."
    )
    level = "sample"
    higher_is_better = True
    requires = ("output_ids",)
    modalities = ("text", "image")
    version = "1"
    params = (
        Param("window", int, default=DEFAULT_WINDOW, min=1,
              help="TTR over the last `window` generated units (token ids, or words with unit=words)"),
        unit_param("token-ids"),
    )
    definition = (
        "For each continuation, let ids be the last `window` (default 96) elements of output_ids, the token ids "
        "the decoder generated after the context (context ids excluded; the model's own tokenizer, not words). "
        "Its value is len(set(ids)) / len(ids), a fraction in (0, 1]. The metric is the unweighted mean of these "
        "per-continuation values over the scored records, with a mean ± 1.96·stderr interval. This follows the "
        "hyperfitting repo's `gen_seq[context_len:][-96:]` (papers report it ×100). With unit=words the same is "
        "computed on the whitespace-separated words of output_text (output_text.split(), case-sensitive, "
        "punctuation kept): the last `window` words of each continuation. Short and empty rows: a continuation "
        "that stopped at EOS (stopped_at_eos, only under eval.stop_at_eos: true) with fewer than `window` units "
        "has no full window and is not scored (a shorter text has a higher TTR, so scoring it would inflate the "
        "mean), and an empty continuation is never scored; the interval's n (the leaderboard's n) counts the "
        "scored continuations. A continuation that ran its full length but is shorter than `window` (new_tokens "
        "below the window, or fewer words than `window`) is used whole: under the default fixed-length policy "
        "every continuation has the same new_tokens tokens."
    )

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        window = int(self.config.get("window", DEFAULT_WINDOW))
        if window < 1:
            raise ValueError(f"ttr: window must be >= 1, got {window}")
        out: list[float] = []
        for i, rec in enumerate(samples):
            units = self.units(rec, i)
            if not units or (len(units) < window and stopped_at_eos(rec)):
                continue  # no full window: not scored (see the definition)
            out.append(_ttr(units, window))
        return out


def _ttr(output_ids: Any, window: int) -> float:
    ids = list(output_ids)[-window:]
    if not ids:
        return 0.0
    return len(set(ids)) / len(ids)
