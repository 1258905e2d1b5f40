"""Teacher-forced statistics of the evaluated model on the original texts (context + human continuation).

Shared by ``tf-entropy``, ``tf-topk-prob`` and ``perplexity``. For each record the scored sequence is
``context_ids + reference ids``: the record's ``reference_ids`` when present (the exact token ids the
runner drew), otherwise ``reference_text`` re-encoded with the model's tokenizer *without* special tokens
(codecs with a Hugging Face ``tokenizer`` attribute; other codecs: ``codec.encode``). The model runs once,
teacher-forced, over the whole sequence (``harness.api.padded_forward``: right padding with an attention
mask, batches of ``batch_size``, ``torch.inference_mode``, on the model's own device), and at every scored
target position t the raw next-token distribution p_t = softmax(float32 logits at position t-1) gives:

* entropy H_t = -Σ_v p_t(v) ln p_t(v) (nats; 0·ln 0 = 0),
* NLL_t = -ln p_t(x_t) of the actual token x_t,
* the cumulative top-k masses Σ_{i≤k} p_t(v_(i)) for k = 1..K (the k most likely tokens).

Scored positions (``span``): ``continuation`` = the reference tokens, each predicted from the context and
the reference tokens before it; ``text`` = every token of context + reference after the first (the
"original texts (context + continuation)" reading of the paper's Table 3). The statistics are computed
once per (span, sequences) and shared by every teacher-forced metric of the same cell and dataset.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

from harness.api import Metric, Param, entropy_of, log_probs, padded_forward

from ._featurizers import model_handle, scratch

SPANS = ("continuation", "text")
#: top-k masses are kept for k up to at least this, so @1/@3/@5 share one pass
MIN_TOPK_CACHED = 5


def teacher_forced_params() -> tuple[Param, ...]:
    return (
        Param("span", str, default="continuation", choices=SPANS,
              help="scored positions: continuation (the reference tokens) or text (every token of context + "
                   "reference after the first)"),
        Param("batch_size", int, default=8, min=1, help="sequences per teacher-forced forward pass"),
    )  # fmt: skip


def reference_ids(record: dict[str, Any], codec: Any) -> list[int]:
    """The human continuation as token ids: stored ``reference_ids``, else ``reference_text`` re-encoded."""
    stored = record.get("reference_ids")
    if stored is not None:
        return [int(t) for t in stored]
    text = record.get("reference_text") or ""
    tokenizer = getattr(codec, "tokenizer", None)
    if tokenizer is not None:
        return [int(t) for t in tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]]
    return [int(t) for t in codec.encode(text)]


def scored_sequences(records: list[dict[str, Any]], codec: Any, span: str) -> list[tuple[list[int], int]]:
    """(full token ids, index of the first scored target) per record."""
    out = []
    for record in records:
        context = [int(t) for t in record.get("context_ids") or []]
        ids = context + reference_ids(record, codec)
        first = max(1, len(context)) if span == "continuation" else 1
        out.append((ids, first))
    return out


def forward_stats(handle: Any, items: list[tuple[list[int], int]], batch_size: int, top: int) -> list[dict[str, Any]]:
    """Per item (ids, first target): entropy, NLL, cumulative top-k masses and argmax at every scored position.

    One right-padded pass per batch through :func:`harness.api.padded_forward` (no position ids: right padding
    leaves the model's own positions right); the distributions come from :func:`log_probs` (float32) and the
    entropy from :func:`entropy_of`, the same formulas as the decoding loop's per-step statistics.
    """
    import numpy as np
    import torch

    codec = handle.codec
    pad = codec.pad_token_id if codec.pad_token_id is not None else 0
    results: list[dict[str, Any]] = [None] * len(items)  # type: ignore[list-item]
    order = sorted(range(len(items)), key=lambda i: len(items[i][0]))  # similar lengths per batch: less padding
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        logits = padded_forward(handle.module, [items[i][0] for i in chunk], pad, side="right").logits
        for row, i in enumerate(chunk):
            seq, first = items[i]
            if len(seq) <= first:
                results[i] = {
                    "entropy": np.zeros(0), "nll": np.zeros(0), "topk": np.zeros((0, top)),
                    "top1": np.zeros(0, dtype=np.int64),
                }  # fmt: skip
                continue
            logp = log_probs(logits[row, first - 1 : len(seq) - 1])  # position t-1 predicts target t
            probs = logp.exp()
            targets = torch.tensor(seq[first:], dtype=torch.long, device=logp.device)
            nll = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            topk = probs.topk(min(top, probs.shape[-1]), dim=-1).values.cumsum(-1)
            results[i] = {
                "entropy": entropy_of(logp).double().cpu().numpy(),
                "nll": nll.double().cpu().numpy(),
                "topk": topk.double().cpu().numpy(),
                "top1": probs.argmax(-1).cpu().numpy(),
            }
    return results


class TeacherForcedMetric(Metric):
    """Base of the teacher-forced metrics: subclasses turn each record's position statistics into one value."""

    level = "sample"
    requires = ("context_ids", "reference_text")
    modalities = ("text",)
    version = "1"
    params: ClassVar[tuple[Param, ...]] = teacher_forced_params()
    #: how many cumulative top-k masses this metric needs
    topk_needed: ClassVar[int] = 1

    def position_stats(self, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        handle = model_handle(self.context, f"metric {self.name}")
        span = self.option("span")
        items = scored_sequences(samples, handle.codec, span)
        digest = hashlib.sha256(json.dumps(items, separators=(",", ":")).encode("utf-8")).hexdigest()
        memo = scratch(self.context, "teacher-forced")
        entry = memo.get(digest)
        needed = max(self.topk_needed, MIN_TOPK_CACHED)
        if entry is None or entry["top"] < needed:
            stats = forward_stats(handle, items, int(self.option("batch_size")), needed)
            entry = {"top": needed, "stats": stats}
            memo[digest] = entry
        for record, stat in zip(samples, entry["stats"]):
            if stat["nll"].size == 0:
                pid = record.get("prompt_id", "?")
                raise ValueError(f"{self.name}: record for prompt_id {pid!r} has no reference tokens to score")
        return entry["stats"]
