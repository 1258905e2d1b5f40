"""The batched decoding loop every bundled decoder is built on.

Contexts are left-padded with an attention mask and explicit position ids, the KV cache is reused
step to step, and at each step a decoder-specific ``pick`` chooses the next token from the raw
logits. Per-step entropy and top-1 probability are taken from the *raw* model distribution (before
temperature, truncation or blocking). A row that emits EOS stops: EOS and later positions are not
part of its output or its statistics. Sampling uses one ``torch.Generator`` per row, seeded by the
runner from (seed, prompt id), so a continuation does not depend on the batch it ran in.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

from harness.api import Generation, ModelHandle


class Pick(Protocol):
    def __call__(self, logits: Any, generators: list[Any]) -> Any:
        """Return next token ids (LongTensor [batch]) from raw float32 logits [batch, vocab]."""


def make_generators(seeds: Sequence[int], device: Any) -> list[Any]:
    import torch

    gens = []
    for seed in seeds:
        g = torch.Generator(device=device)
        g.manual_seed(int(seed) % (2**63))
        gens.append(g)
    return gens


def cache_argument(module: Any) -> str:
    """The keyword a model's forward takes its KV cache by (transformers ≥ 5.24 renamed it to `cache`)."""
    import inspect

    return "cache" if "cache" in inspect.signature(module.forward).parameters else "past_key_values"


def returned_cache(out: Any) -> Any:
    return out["cache"] if "cache" in out else out["past_key_values"]


def decode(handle: ModelHandle, contexts: list[list[int]], new_tokens: int, seeds: Sequence[int], pick: Pick) -> list[Generation]:
    import torch

    if not contexts:
        return []
    module = handle.module
    device = next(module.parameters()).device
    pad = handle.codec.pad_token_id if handle.codec.pad_token_id is not None else 0
    eos = handle.codec.eos_token_id
    width = max(len(c) for c in contexts)
    batch = len(contexts)
    input_ids = torch.full((batch, width), pad, dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.long)
    for row, ctx in enumerate(contexts):
        if ctx:
            input_ids[row, width - len(ctx) :] = torch.tensor(ctx, dtype=torch.long)
            mask[row, width - len(ctx) :] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    generators = make_generators(seeds, device)
    outputs: list[list[int]] = [[] for _ in range(batch)]
    entropies: list[list[float]] = [[] for _ in range(batch)]
    top1s: list[list[float]] = [[] for _ in range(batch)]
    alive = torch.ones(batch, dtype=torch.bool, device=device)
    cache_kw = cache_argument(module)
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            out = module(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True)
            next_pos = positions[:, -1:] + 1
            for _ in range(new_tokens):
                logits = out.logits[:, -1, :].float()
                logp = torch.log_softmax(logits, dim=-1)
                probs = logp.exp()
                entropy = -(probs * logp).nan_to_num().sum(-1)
                top1 = probs.max(-1).values
                chosen = pick(logits, generators)
                stopped = (chosen == eos) if eos is not None else torch.zeros_like(alive)
                for row in torch.nonzero(alive & ~stopped).flatten().tolist():
                    outputs[row].append(int(chosen[row]))
                    entropies[row].append(float(entropy[row]))
                    top1s[row].append(float(top1[row]))
                alive = alive & ~stopped
                if not bool(alive.any()):
                    break
                step = torch.where(alive, chosen, torch.full_like(chosen, pad)).unsqueeze(-1)
                mask = torch.cat([mask, alive.long().unsqueeze(-1)], dim=-1)
                out = module(
                    input_ids=step,
                    attention_mask=mask,
                    position_ids=next_pos,
                    use_cache=True,
                    **{cache_kw: returned_cache(out)},
                )
                next_pos = next_pos + 1
    finally:
        module.train(was_training)
    return [Generation(outputs[i], entropies[i], top1s[i]) for i in range(batch)]


def greedy_pick(logits: Any, generators: list[Any]) -> Any:
    return logits.argmax(-1)


def sampling_pick(transform: Callable[[Any], Any]) -> Pick:
    """Sample from softmax(transform(logits)), one generator per row."""

    def pick(logits: Any, generators: list[Any]) -> Any:
        import torch

        probs = torch.softmax(transform(logits), dim=-1)
        rows = [torch.multinomial(probs[i], 1, generator=generators[i]) for i in range(probs.shape[0])]
        return torch.cat(rows)

    return pick


def filter_top_k_top_p(logits: Any, temperature: float, top_k: int, top_p: float) -> Any:
    """Temperature, then keep the top-k tokens, then the smallest set whose mass reaches top_p.

    The same order as transformers' warpers (temperature → top-k → top-p); ties at the top-k
    boundary are kept, and the most likely token always survives.
    """
    import torch

    scores = logits / temperature
    if top_k and top_k < scores.shape[-1]:
        kth = torch.topk(scores, top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=True, dim=-1)
        cumulative = torch.softmax(sorted_scores, dim=-1).cumsum(-1)
        remove_sorted = cumulative - torch.softmax(sorted_scores, dim=-1) >= top_p
        remove_sorted[..., 0] = False
        remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
        scores = scores.masked_fill(remove, float("-inf"))
    return scores
