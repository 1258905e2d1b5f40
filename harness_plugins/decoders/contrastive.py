"""``contrastive``: contrastive search (Su et al., NeurIPS 2022), our own implementation.

transformers 5 moved contrastive search out of its core to Hub-downloaded code, so the harness carries
its own: a batched, KV-cached loop that evaluates the k candidates of every row as one batch expansion.
"""

from __future__ import annotations

from typing import Any

from harness.api import (
    DecodeContext,
    Decoder,
    Generation,
    ModelHandle,
    Param,
    Transcript,
    cache_argument,
    inference,
    model_device,
    pad_id,
    prefill,
    returned_cache,
    step_stats,
    suppress_eos,
)


def unit(vectors: Any) -> Any:
    """Rows scaled to unit L2 norm (a zero vector stays zero)."""
    return vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def contrastive_select(top_probs: Any, candidate_hidden: Any, previous_hidden: Any, previous_mask: Any, alpha: float) -> Any:
    """The index (into the k candidates) contrastive search picks, per row.

    top_probs [B, k]: p(v) of the candidates; candidate_hidden [B, k, H]: each candidate's last-layer
    hidden state; previous_hidden [B, L, H]: the hidden states of the row's context and generated
    tokens; previous_mask [B, L]: which of those positions are real (not padding). Score:
    (1 − α)·p(v) − α·max_j cos(h_v, h_j); the first maximum wins.
    """
    import torch

    sims = torch.einsum("bkh,blh->bkl", unit(candidate_hidden.float()), unit(previous_hidden.float()))
    sims = sims.masked_fill(~previous_mask.bool()[:, None, :], float("-inf"))
    penalty = sims.max(dim=-1).values
    penalty = torch.where(torch.isfinite(penalty), penalty, torch.zeros_like(penalty))  # no previous token at all
    scores = (1.0 - alpha) * top_probs - alpha * penalty
    return scores.argmax(dim=-1)


def contrastive_decode(
    handle: ModelHandle, contexts: list[list[int]], new_tokens: int, alpha: float, top_k: int, stop_at_eos: bool = False
) -> list[Generation]:
    """The batched search; without ``stop_at_eos`` EOS is never a candidate and every row gets ``new_tokens`` tokens."""
    import torch

    if not contexts:
        return []
    module = handle.module
    device = model_device(module)
    eos = handle.codec.eos_token_id
    batch = len(contexts)
    rows = torch.arange(batch, device=device)
    transcript = Transcript(batch, device, eos, stop_at_eos)
    cache_kw = cache_argument(module)
    with inference(module):
        out, mask, positions = prefill(module, contexts, pad_id(handle), hidden_states=True)
        hidden = unit(out.hidden_states[-1].float())  # [B, L, H], aligned with `mask`
        logits = out.logits[:, -1, :].float()
        cache = returned_cache(out)
        next_pos = positions[:, -1:] + 1
        for step in range(new_tokens):
            entropy, top1 = step_stats(logits)  # raw statistics, EOS mass included
            scores = logits if stop_at_eos else suppress_eos(logits, eos)  # EOS: probability 0, never a candidate
            k = min(top_k, logits.shape[-1] - (0 if stop_at_eos or eos is None else 1))
            top_probs, top_ids = torch.softmax(scores, dim=-1).topk(k, dim=-1)  # [B, k]
            # run every row's k candidates as one batch of B·k single-token continuations
            cache.batch_repeat_interleave(k)
            step_mask = torch.cat([mask, transcript.alive.long().unsqueeze(-1)], dim=-1)
            cand = module(
                input_ids=top_ids.reshape(-1, 1),
                attention_mask=step_mask.repeat_interleave(k, dim=0),
                position_ids=next_pos.repeat_interleave(k, dim=0),
                use_cache=True,
                output_hidden_states=True,
                **{cache_kw: cache},
            )
            cand_hidden = unit(cand.hidden_states[-1][:, -1, :].float()).view(batch, k, -1)
            selected = contrastive_select(top_probs, cand_hidden, hidden, mask, alpha)
            transcript.record(top_ids[rows, selected], entropy, top1)
            if transcript.finished or step == new_tokens - 1:
                break
            flat = rows * k + selected
            cache = returned_cache(cand)
            cache.batch_select_indices(flat)
            logits = cand.logits[flat, -1, :].float()
            hidden = torch.cat([hidden, cand_hidden[rows, selected].unsqueeze(1)], dim=1)
            mask = step_mask
            next_pos = next_pos + 1
    return transcript.generations()


class Contrastive(Decoder):
    """Definition (Su et al. 2022): at each step take the ``top_k`` most likely tokens v of the raw
    distribution p; for each, run the model one step to get its last-layer hidden state h_v; pick
    argmax_v (1 − α)·p(v) − α·max_j cos(h_v, h_j), where j runs over every previous position of the
    row (context and generated tokens, padding excluded) and α = ``penalty_alpha``. α = 0 is greedy.
    Under the default EOS policy (``eval.stop_at_eos: false``) p is the distribution with EOS removed
    (its logit set to −inf, the rest renormalised), so EOS is never a candidate and every row has exactly
    ``new_tokens`` tokens; with ``stop_at_eos`` EOS may be picked and ends the row.
    Deterministic; per-step statistics are those of the raw distribution at each chosen position."""

    name = "contrastive"
    description = "Contrastive search: top-k candidates scored by probability minus a degeneration penalty."
    version = "1"
    deterministic = True
    params = (
        Param("penalty_alpha", float, default=0.6, min=0.0, max=1.0, help="weight α of the degeneration penalty"),
        Param("top_k", int, default=4, min=1, help="candidates per step"),
    )

    def generate(self, handle: ModelHandle, contexts: list[list[int]], new_tokens: int, ctx: DecodeContext) -> list[Generation]:
        alpha, top_k = self.option("penalty_alpha"), self.option("top_k")
        return contrastive_decode(handle, contexts, new_tokens, alpha, top_k, stop_at_eos=ctx.stop_at_eos)
