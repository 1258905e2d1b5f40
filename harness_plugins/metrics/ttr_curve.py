"""TTR of a trailing window as generation goes on (the hyperfitting paper's appendix curve), and its mean."""

from __future__ import annotations

from typing import Any, Sequence

from harness.api import Param

from ._common import UNIT_RULE, UnitMetric, stopped_at_eos, unit_param


def window_positions(length: int, window: int, stride: int) -> list[int]:
    """End positions p = window, window+stride, ... <= length; [length] when the text is shorter than window."""
    if length < window:
        return [length]
    return list(range(window, length + 1, stride))


def windowed_ttr(ids: Sequence[Any], p: int, window: int) -> float:
    """TTR of ids[max(0, p - window):p]; 0.0 for an empty slice."""
    part = ids[max(0, p - window) : p]
    return len(set(part)) / len(part) if part else 0.0


class TTRCurve(UnitMetric):
    """Mean over texts of the mean windowed TTR along each continuation; ``curve`` gives the per-position means."""

    name = "ttr-curve"
    description = (
        "TTR of the trailing `window` generated token ids (or words, with unit=words), measured every `stride` "
        "units as the continuation grows (the paper's TTR-by-position appendix curve); the value is the mean over "
        "positions, then texts."
    )
    level = "sample"
    higher_is_better = True
    requires = ("output_ids",)
    modalities = ("text", "image")
    version = "1"
    params = (
        Param("window", int, default=96, min=1, help="length of the trailing window, in units (token ids or words)"),
        Param("stride", int, default=16, min=1, help="distance in generated units between measured positions"),
        unit_param("token-ids"),
    )
    definition = (
        "For a continuation with generated token ids x_1..x_L (output_ids, context excluded), measure at the end "
        "positions p = window, window+stride, window+2*stride, ... while p <= L (defaults window 96, stride 16) the "
        "type-token ratio TTR_p = |set(x_{p-window+1..p})| / window of the trailing window ending at generated "
        "token p. A continuation that ran its full length but is shorter than `window` (new_tokens below the "
        "window) has the single position p = L with TTR of the whole continuation. The per-continuation value is "
        "the unweighted mean of its TTR_p; the metric is the unweighted mean over the scored continuations (each "
        "counts once), with a mean ± 1.96·stderr interval. When all continuations have the same length this "
        "equals the mean over all (text, position) pairs. The curve (TTRCurve.curve) is, for each grid position "
        "p, the mean TTR_p over the continuations with L >= p (continuations shorter than `window` are not on "
        "it). A fraction in [0, 1]. Short and empty rows: a continuation that stopped at EOS (stopped_at_eos, "
        "only under eval.stop_at_eos: true) is measured at the grid positions it reached; one that stopped "
        "before `window` tokens has no full window and is not scored, and an empty continuation is never "
        "scored; the interval's n counts the scored continuations. Default unit=token-ids; with unit=words, "
        "x_1..x_L are the L words of output_text and window, stride and p count words (a full-length continuation "
        "with fewer than `window` words is used whole). "
    ) + UNIT_RULE

    def _settings(self) -> tuple[int, int]:
        window, stride = int(self.option("window")), int(self.option("stride"))
        if window < 1 or stride < 1:
            raise ValueError(f"ttr-curve: window and stride must be >= 1, got {window}, {stride}")
        return window, stride

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        window, stride = self._settings()
        out: list[float] = []
        for i, rec in enumerate(samples):
            ids = self.units(rec, i)
            if not ids or (len(ids) < window and stopped_at_eos(rec)):
                continue  # no full window: not scored (see the definition)
            values = [windowed_ttr(ids, p, window) for p in window_positions(len(ids), window, stride)]
            out.append(sum(values) / len(values))
        return out

    def curve(self, samples: list[dict[str, Any]]) -> list[tuple[int, float]]:
        """[(p, mean TTR_p over the continuations with at least p generated tokens)] for p on the grid."""
        window, stride = self._settings()
        sums: dict[int, float] = {}
        counts: dict[int, int] = {}
        for i, rec in enumerate(samples):
            ids = self.units(rec, i)
            if len(ids) < window:
                continue
            for p in window_positions(len(ids), window, stride):
                sums[p] = sums.get(p, 0.0) + windowed_ttr(ids, p, window)
                counts[p] = counts.get(p, 0) + 1
        return [(p, sums[p] / counts[p]) for p in sorted(sums)]
