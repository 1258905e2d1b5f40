"""One forward pass over padded token sequences, and the statistics of the distributions it gives.

Every place that runs a model over token ids outside training uses these (the decoding loop, beam and
contrastive search, the fit's curve, teacher-forced metrics, featurizers), so padding, position ids,
the float32 cast and the entropy formula are written once:

* ``pad_batch``: left padding (generation: every row's last token sits in the last column, explicit
  position ids start at 0 on each row's first real token) or right padding (scoring: the model's own
  positions are already right, none are passed).
* ``padded_forward``: one no-grad pass over a batch; raw logits (and hidden states on request).
* ``log_probs`` / ``entropy_of`` / ``step_stats``: log-softmax in float32, entropy in nats
  (0·ln 0 = 0), top-1 probability.

torch is imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Literal, Sequence

Side = Literal["left", "right"]


@contextmanager
def inference(module: Any) -> Iterator[None]:
    """Run ``module`` in eval mode under ``torch.inference_mode``, restoring its training flag afterwards.

    Decoders and metrics may be handed a model in the middle of a recipe; they must not leave it changed.
    """
    import torch

    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        module.train(was_training)


def model_device(module: Any) -> Any:
    """The device of a module's first parameter (where its inputs must go)."""
    return next(module.parameters()).device


def pad_batch(sequences: Sequence[Sequence[int]], pad: int, device: Any, side: Side = "left") -> tuple[Any, Any, Any]:
    """Padded ids [B, W], attention mask [B, W] and position ids (left padding) or None (right padding)."""
    import torch

    width = max(1, max((len(s) for s in sequences), default=1))
    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if not seq:
            continue
        span = slice(width - len(seq), width) if side == "left" else slice(0, len(seq))
        ids[row, span] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, span] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0) if side == "left" else None
    return ids, mask, positions


@dataclass
class ForwardOutput:
    """What one padded pass gives: raw logits [B, W, V] (model dtype), the mask, and hidden states if asked."""

    logits: Any
    mask: Any
    hidden_states: Any = None


def padded_forward(
    module: Any, sequences: Sequence[Sequence[int]], pad: int, side: Side = "left", hidden_states: bool = False
) -> ForwardOutput:
    """One inference-mode pass over ``sequences`` padded on ``side`` (see :func:`pad_batch`)."""
    ids, mask, positions = pad_batch(sequences, pad, model_device(module), side)
    kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
    if positions is not None:
        kwargs["position_ids"] = positions
    if hidden_states:
        kwargs["output_hidden_states"] = True
    with inference(module):
        out = module(**kwargs)
    # a bare backbone (no LM head) has no logits: featurizers read its hidden states only
    return ForwardOutput(getattr(out, "logits", None), mask, out.hidden_states if hidden_states else None)


def log_probs(logits: Any) -> Any:
    """log softmax along the last dimension, in float32 whatever the model's dtype."""
    import torch

    return torch.log_softmax(logits.float(), dim=-1)


def entropy_of(logp: Any) -> Any:
    """Entropy (nats) of the distributions whose log-probabilities are ``logp`` (0·ln 0 counted as 0)."""
    return -(logp.exp() * logp).nan_to_num().sum(-1)


def step_stats(logits: Any) -> tuple[Any, Any]:
    """Entropy (nats) and top-1 probability of softmax(logits) along the last dimension."""
    logp = log_probs(logits)
    probs = logp.exp()
    entropy = -(probs * logp).nan_to_num().sum(-1)
    return entropy, probs.max(-1).values
