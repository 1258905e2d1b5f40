"""``entropy-matched-temperature``: sample at the temperature whose entropy matches a reference model's.

The baseline of the hyperfitting follow-up work: instead of hyperfitting, lower the original model's
temperature until its mean next-token entropy equals the hyperfitted model's, and sample.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from harness.api import (
    ComposableDecoder,
    DecodeContext,
    InputError,
    ModelHandle,
    Param,
    Processor,
    entropy_of,
    log_probs,
    model_device,
    pad_id,
    padded_forward,
)
from harness_plugins.decoders._loop import RowTemperature

log = logging.getLogger("harness")

#: bisection steps on log T: the bracket shrinks by 2^-40, far below any useful tolerance, and a fixed
#: count (not "stop when within tolerance") keeps T independent of float noise between batch layouts
BISECTION_STEPS = 40


def mean_entropy_at(logits: Any, groups: Any, counts: Any, log_temperature: Any) -> Any:
    """Mean entropy of softmax(logits / T_g) per group g; logits [N, V], groups [N] (group of each position)."""
    import torch

    temperature = log_temperature.exp()[groups].unsqueeze(-1)
    entropy = entropy_of(log_probs(logits / temperature))
    return torch.zeros_like(log_temperature).index_add(0, groups, entropy) / counts


def match_temperature(logits: Any, groups: Any, target: float, low: float, high: float) -> tuple[Any, Any]:
    """Per group, the T in [low, high] whose mean entropy of softmax(logits / T) is ``target`` (nats).

    Entropy rises monotonically with T, so bisection on log T finds it; a target outside the range
    reachable in [low, high] gives the nearer bound. Returns (temperatures [G], achieved entropies [G]).
    """
    import torch

    n_groups = int(groups.max()) + 1
    counts = torch.bincount(groups, minlength=n_groups).to(logits.dtype)
    lo = torch.full((n_groups,), math.log(low), dtype=logits.dtype, device=logits.device)
    hi = torch.full((n_groups,), math.log(high), dtype=logits.dtype, device=logits.device)
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        too_high = mean_entropy_at(logits, groups, counts, mid) > target
        hi = torch.where(too_high, mid, hi)
        lo = torch.where(too_high, lo, mid)
    log_t = (lo + hi) / 2
    return log_t.exp(), mean_entropy_at(logits, groups, counts, log_t)


def context_logits(handle: ModelHandle, contexts: list[list[int]]) -> tuple[Any, Any]:
    """Raw float32 next-token logits at every real context position ([N, V]) and each position's row ([N])."""
    import torch

    forward = padded_forward(handle.module, contexts, pad_id(handle), side="left")
    logits, mask = forward.logits.float(), forward.mask
    real = mask.bool()
    rows = torch.arange(len(contexts), device=mask.device).unsqueeze(-1).expand_as(mask)
    return logits[real], rows[real]


class EntropyMatchedTemperature(ComposableDecoder):
    """Definition: for each prompt (``calibration: prompt``) or for the whole batch (``calibration:
    batch``), bisect the temperature T in [min_temperature, max_temperature] so that the mean entropy
    (nats) of softmax(logits / T) over the next-token distributions at every context position equals
    ``target_entropy``; then sample from softmax(logits / T) (full vocabulary, the row's own generator).
    The chosen T is recorded per row (``temperature`` in ``Generation.extras``, rounded to 6 decimals). If the target is not reachable within
    ``tolerance`` nats inside the temperature range, the nearer bound is used and a warning is logged.

    ``target_entropy`` comes from a *reference* model's measured entropy, typically the hyperfitted
    model's ``entropy`` score (mean raw next-token entropy over its generated positions) from an earlier
    run, so that the original model is made as confident as the hyperfitted one. Note that this decoder
    measures entropy on the (human-written) context positions, where models are usually less certain
    than on their own greedy output.

    ``calibration: prompt`` (default) keeps a continuation a function of (seed, prompt) alone;
    ``calibration: batch`` pools the batch's contexts into one T (closer to a single model-level T, but
    then a continuation depends on which contexts share its batch, i.e. on ``eval.batch_size``).
    """

    name = "entropy-matched-temperature"
    description = "Sample at the temperature whose mean next-token entropy on the contexts equals a target."
    version = "1"
    samples = True
    stage = "warp"
    params = (
        Param("target_entropy", float, min=0.0, help="mean next-token entropy (nats) to match, e.g. a hyperfitted model's"),
        Param("min_temperature", float, default=0.05, min=0.0, exclusive_min=True, help="lowest temperature tried"),
        Param("max_temperature", float, default=5.0, min=0.0, exclusive_min=True, help="highest temperature tried"),
        Param("tolerance", float, default=0.01, min=0.0, exclusive_min=True, help="nats; farther off is warned about"),
        Param("calibration", str, default="prompt", choices=("prompt", "batch"), help="one T per prompt or per batch"),
    )

    def temperatures(self, handle: ModelHandle, contexts: list[list[int]]) -> list[float]:
        import torch

        low, high = self.option("min_temperature"), self.option("max_temperature")
        if not low < high:
            raise InputError(f"{self.name}: min_temperature ({low}) must be below max_temperature ({high})")
        if any(not c for c in contexts):
            raise InputError(f"{self.name}: an empty context has no positions to measure entropy on")
        logits, rows = context_logits(handle, contexts)
        per_prompt = self.option("calibration") == "prompt"
        groups = rows if per_prompt else torch.zeros_like(rows)
        target = self.option("target_entropy")
        temps, achieved = match_temperature(logits, groups, target, low, high)
        for t, got in zip(temps.tolist(), achieved.tolist()):
            if abs(got - target) > self.option("tolerance"):
                log.warning(
                    "%s: target entropy %.4f nats is not reachable with T in [%g, %g] (T %.4g gives %.4f); using T %.4g",
                    self.name, target, low, high, t, got, t,
                )
        return temps.tolist() if per_prompt else temps.tolist() * len(contexts)

    def processors(self, handle: ModelHandle, contexts: list[list[int]], ctx: DecodeContext) -> list[Processor]:
        if not contexts:
            return []
        return [RowTemperature(self.temperatures(handle, contexts), model_device(handle.module))]
