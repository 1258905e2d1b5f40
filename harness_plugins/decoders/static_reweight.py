"""``static-reweight``: the decoded model plus one fixed per-token logit bias estimated from a fitted model.

A control for the claim that hyperfitting is not a static re-weighting of the vocabulary: if it were, adding
to the original model's logits the average log-probability change the fit made on held-out text would
reproduce the fitted model's behaviour. The bias is estimated once per decoded weights (a decoder instance
serves every batch of the run) from the held-out sequences of the ``from`` recipe's fit, with a separate copy
of the fitted model that is freed straight after.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
from typing import Any

from harness.api import (
    ComposableDecoder,
    DecodeContext,
    History,
    InputError,
    ModelHandle,
    Param,
    Processor,
    log_probs,
    pad_id,
    padded_forward,
)

log = logging.getLogger("harness")

#: how many estimated biases one decoder instance keeps (one per distinct decoded weights)
BIAS_CACHE_SIZE = 4


class LogitBias:
    """scores + b, one fixed float32 bias per vocabulary entry (-inf stays -inf: a ban or EOS stays banned)."""

    def __init__(self, bias: Any):
        self.bias = bias

    def __call__(self, scores: Any, history: History) -> Any:
        return scores + self.bias.to(device=scores.device, dtype=scores.dtype)


def weights_digest(module: Any) -> str:
    """A cheap identity of a module's current weights: per parameter its name, shape, sum and 2-norm (float64)."""
    import torch

    names, stats = [], []
    with torch.no_grad():
        for name, p in module.named_parameters():
            names.append((name, list(p.shape)))
            stats.append(torch.stack([p.sum(dtype=torch.float64), torch.linalg.vector_norm(p, dtype=torch.float64)]))
    values = torch.stack(stats).cpu().numpy().tobytes() if stats else b""
    return hashlib.sha256(json.dumps(names).encode() + values).hexdigest()


def mean_log_ratio(decoded: Any, fitted: Any, sequences: list[list[int]], pad: int, batch_size: int) -> tuple[Any, int]:
    """b = mean over every next-token position of ``sequences`` of log p_fitted − log p_decoded ([V], float64).

    Position t − 1 of a sequence predicts token t (t = 1 … len − 1), as the fit's held-out loss scores it;
    full-vocabulary float32 log-softmax of each model's raw logits, summed in float64. Returns (b, positions).
    """
    total: Any = None
    count = 0
    for start in range(0, len(sequences), batch_size):
        batch = [list(s) for s in sequences[start : start + batch_size]]
        lp_dec = log_probs(padded_forward(decoded, batch, pad, side="right").logits)
        lp_fit = log_probs(padded_forward(fitted, batch, pad, side="right").logits).to(lp_dec.device)
        for row, seq in enumerate(batch):
            n = len(seq) - 1
            if n <= 0:
                continue
            diff = (lp_fit[row, :n] - lp_dec[row, :n]).double().sum(0)
            total = diff if total is None else total + diff
            count += n
    if total is None:
        return None, 0
    return total / count, count


class StaticReweight(ComposableDecoder):
    """Definition: greedy decoding of the model being decoded (D) with one fixed bias added to its logits at every
    step, argmax(z + b). b_v = mean over held-out positions t of [log p_fit(v | x_<t) − log p_D(v | x_<t)], where
    p_fit is the model fitted by recipe ``from`` (a separate copy of the same model), the positions are every
    next-token position (t = 1 … len − 1) of every held-out sequence of that fit (the sequences its curve's
    held-out loss uses), and log p is the full-vocabulary float32 log-softmax of the raw logits (summed in float64).
    b is estimated once per decoded weights and decoder instance. Paired with the base recipe (D = the original
    weights) it is the static re-weighting control; with D = the ``from`` fit itself b = 0 (greedy). Stage
    "adjust": in a composition b is added before any temperature or truncation (compose it first for a
    re-weighted sampler); -inf scores (EOS under the fixed-length policy, bans) stay -inf.
    """

    name = "static-reweight"
    description = "Greedy on the decoded model's logits plus one fixed per-token bias: a fitted model's mean log-prob shift."
    version = "1"
    stage = "adjust"
    params = (
        Param("from", str, help="the fitted recipe (same model) whose held-out log-probability shift is the bias"),
        Param("batch_size", int, default=8, min=1, help="held-out sequences per forward pass while estimating b"),
    )

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        self._biases: dict[tuple[str, str, str], Any] = {}

    def recipe_dependencies(self) -> tuple[str, ...]:
        return (str(self.option("from")),)

    def bias_for(self, handle: ModelHandle, ctx: DecodeContext) -> Any:
        """b for the decoded weights in ``handle`` (float32 [V] on the model's device), estimated on first use."""
        import torch

        source = str(self.option("from"))
        if ctx.heldout_of is None or ctx.load_fitted is None:
            raise InputError(f"{self.name} reads the fit of recipe {source!r}: it runs inside `harness run` only")
        heldout = [list(map(int, s)) for s in ctx.heldout_of(source)]
        weights = ctx.weights_key or weights_digest(handle.module)  # outside a run: a pass over the weights
        key = (source, weights, hashlib.sha256(json.dumps(heldout).encode()).hexdigest())
        bias = self._biases.get(key)
        if bias is not None:
            return bias
        if not heldout:
            raise InputError(
                f"{self.name}: recipe {source!r} has no held-out sequences to estimate the bias on "
                f"(`from` must name a recipe that trains, with `train: {{heldout: N}}`, N ≥ 1)"
            )
        fitted = ctx.load_fitted(source)
        try:
            total, count = mean_log_ratio(handle.module, fitted.module, heldout, pad_id(handle), int(self.option("batch_size")))
        finally:
            del fitted
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        if total is None:
            raise InputError(f"{self.name}: the held-out sequences of recipe {source!r} have no next-token positions")
        if not bool(torch.isfinite(total).all()):
            raise InputError(f"{self.name}: the bias from recipe {source!r} is not finite (a model gives some token log-probability -inf)")
        bias = total.float()
        log.info("%s: bias from %d held-out positions of recipe %s (max |b| %.3f, mean b %.3f)",
                 self.name, count, source, float(bias.abs().max()), float(bias.mean()))  # fmt: skip
        if len(self._biases) >= BIAS_CACHE_SIZE:
            self._biases.pop(next(iter(self._biases)))
        self._biases[key] = bias
        return bias

    def processors(self, handle: ModelHandle, contexts: list[list[int]], ctx: DecodeContext) -> list[Processor]:
        if not contexts:
            return []
        return [LogitBias(self.bias_for(handle, ctx))]
