"""The points of a fit's curve (the paper's Figure 2): held-out loss and entropy, and greedy TTR.

Definitions (recorded per logged point, next to the mean training loss of the epoch):

* ``heldout_loss``: mean next-token cross-entropy (nats) over every position of the held-out sequences,
  teacher-forced, the same loss the recipe minimises on its training sequences.
* ``heldout_entropy``: mean entropy (nats) of the model's next-token distribution at those positions; the
  paper's hyperfitted models become very confident (low entropy) although held-out loss rises.
* ``greedy_ttr``: greedy continuations of ``curve_new_tokens`` tokens (at most up to the sequence length) from the first
  ``curve_context_tokens`` tokens (at most half the sequence) of up to ``curve_contexts`` held-out
  sequences; per continuation,
  distinct token ids / generated tokens; averaged. Rises as hyperfitting cures repetition.

Where the points fall: ``curve_schedule: epochs`` (the default) logs one every ``curve_every`` epochs; ``log``
logs at the update steps of :func:`log_spaced_steps` (long-horizon fits far past zero training loss: the
"not grokking" check that held-out loss never recovers), and ``train_loss`` is then the mean over the updates
since the previous point.
"""

from __future__ import annotations

from typing import Any

from harness.api import ModelHandle, decode, entropy_of, log_probs, model_device, pad_batch, pad_id, padded_forward


def log_spaced_steps(total: int, points: int) -> list[int]:
    """``points`` update steps log-spaced from 1 to ``total`` (both included), rounded to the nearest integer and
    deduplicated, in increasing order: round(total ** (k / (points − 1))) for k = 0 … points − 1; ``[total]``
    for one point. Fewer than ``points`` steps where ``total`` is too small to hold them all."""
    if total < 1:
        return []
    if points <= 1:
        return [total]
    return sorted({min(total, max(1, int(round(total ** (k / (points - 1)))))) for k in range(points)})


def curve_steps(config: dict[str, Any], total: int) -> set[int] | None:
    """The update steps that get a curve point under ``curve_schedule: log``; None for the epoch schedule."""
    if config.get("curve_schedule", "epochs") != "log":
        return None
    return set(log_spaced_steps(total, int(config["curve_points"])))


def heldout_loss_and_entropy(module: Any, sequences: list[list[int]], batch_size: int, pad: int = 0) -> tuple[float, float]:
    """Mean teacher-forced loss and predictive entropy over all next-token positions (nats).

    Right-padded batches through ``harness.forward`` (the held-out sequences share one length, so nothing is
    padded in practice; a shorter one would only count its real positions)."""
    device = model_device(module)
    loss_sum = entropy_sum = 0.0
    count = 0
    for start in range(0, len(sequences), batch_size):
        chunk = sequences[start : start + batch_size]
        forward = padded_forward(module, chunk, pad, side="right")
        logp = log_probs(forward.logits[:, :-1])
        real = forward.mask[:, 1:].bool()  # a position counts when the token it predicts is real
        targets = pad_batch(chunk, pad, device, side="right")[0][:, 1:]
        loss_sum += float(-logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)[real].sum())
        entropy_sum += float(entropy_of(logp)[real].sum())
        count += int(real.sum())
    return loss_sum / count, entropy_sum / count


def greedy_ttr(handle: ModelHandle, contexts: list[list[int]], new_tokens: int) -> float:
    """Mean type-token ratio of greedy continuations (token ids), by the decoding loop every decoder runs on."""
    generations = decode(handle, contexts, new_tokens, [0] * len(contexts))
    ratios = [len(set(g.output_ids)) / len(g.output_ids) for g in generations if g.output_ids]
    return sum(ratios) / len(ratios) if ratios else float("nan")


class CurveMonitor:
    """Computes the curve columns for the current weights; cheap enough to call every epoch."""

    def __init__(self, heldout: list[list[int]], config: dict[str, Any]):
        self.heldout = heldout
        self.batch_size = max(1, int(config.get("micro_batch_size") or config["batch_size"]))
        self.contexts = int(config["curve_contexts"])
        self.context_tokens = int(config["curve_context_tokens"])
        self.new_tokens = int(config["curve_new_tokens"])

    def point(self, handle: ModelHandle, module: Any) -> dict[str, float]:
        """The held-out columns for ``module`` (the possibly wrapped training module) and its handle."""
        row: dict[str, float] = {}
        if not self.heldout:
            return row
        row["heldout_loss"], row["heldout_entropy"] = heldout_loss_and_entropy(
            module, self.heldout, self.batch_size, pad_id(handle)
        )
        length = min(self.context_tokens, max(1, len(self.heldout[0]) // 2))  # short sequences: their first half
        contexts = [seq[:length] for seq in self.heldout[: self.contexts]]
        # context + continuation stay within the training length, hence within the model's positions
        new_tokens = min(self.new_tokens, len(self.heldout[0]) - length)
        if contexts and new_tokens > 0:
            view = ModelHandle(module, handle.codec, handle.device, handle.modality)
            row["greedy_ttr"] = greedy_ttr(view, contexts, new_tokens)
        return row
