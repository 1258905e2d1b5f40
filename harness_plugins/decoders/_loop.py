"""The batched decoding loop every bundled decoder is built on, and the logits processors they compose.

Contexts are left-padded with an attention mask and explicit position ids, the KV cache is reused
step to step, and at each step a decoder-specific ``pick`` chooses the next token from the raw
logits, after optional *processors* (repetition penalty, n-gram bans, citation blocking) have
rewritten them. Per-step entropy and top-1 probability are taken from the *raw* model distribution
(before temperature, truncation, penalties, blocking or EOS suppression). Sampling uses one
``torch.Generator`` per row, seeded by the runner from (seed, prompt id), so a continuation does not
depend on the batch it ran in.

The EOS policy (``DecodeContext.stop_at_eos``, the benchmark's ``eval.stop_at_eos``):

* ``False`` (the default): every row runs to exactly ``new_tokens`` tokens. After the processors and
  before the pick, the EOS token's score is set to -inf (``suppress_eos``), so neither argmax nor
  sampling (nor its truncation warpers, which then renormalise over the other tokens) ever chooses
  it; the recorded statistics still include EOS's probability mass (they come from the raw logits).
* ``True``: a row that emits EOS stops; EOS and later positions are not part of its output or its
  statistics, and its ``Generation.stopped_at_eos`` is True.

A codec without an EOS token (``eos_token_id`` None) has nothing to suppress or stop at.

Building blocks shared by the decoders:

* ``decode(handle, contexts, new_tokens, seeds, pick, processors=(), stop_at_eos=False)``: the loop.
* picks: ``greedy_pick``, ``sampling_pick(transform)``.
* warpers (``scores -> scores``, composed with ``chain``): ``scale_temperature``, ``top_k_filter``,
  ``top_p_filter``, ``typical_filter``, ``min_p_filter``; ``filter_top_k_top_p`` is the paper's
  top-p baseline (temperature → top-k → top-p).
* processors (``(scores, history) -> scores``): ``RepetitionPenalty`` here, the n-gram bans in
  ``harness_plugins.decoders._ngram``.
* helpers for decoders with their own loop (contrastive, beam): ``left_pad``, ``step_stats``,
  ``rescore``, ``suppress_eos``, ``cache_argument``, ``returned_cache``, ``model_device``, ``pad_id``.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

from harness.api import Generation, ModelHandle, inference


class Pick(Protocol):
    def __call__(self, logits: Any, generators: list[Any]) -> Any:
        """Return next token ids (LongTensor [batch]) from float32 scores [batch, vocab]."""


class History:
    """What a processor may read at a step: each row's context, its tokens so far, and whether it is alive.

    ``generated[row]`` grows by one token per step while the row is alive; ``alive[row]`` turns False
    once the row has emitted EOS under ``stop_at_eos`` (its later rows of ``scores`` are ignored).
    """

    def __init__(self, contexts: Sequence[Sequence[int]], generated: list[list[int]]):
        self.contexts = [list(c) for c in contexts]
        self.generated = generated
        self.alive = [True] * len(generated)
        self.step = 0

    def tail(self, row: int, n: int, include_context: bool) -> tuple[int, ...] | None:
        """The last ``n`` tokens of the row (generated only, or context + generated); None if fewer exist."""
        gen = self.generated[row]
        if len(gen) >= n:
            return tuple(gen[len(gen) - n :])
        if not include_context:
            return None
        need = n - len(gen)
        ctx = self.contexts[row]
        if len(ctx) < need:
            return None
        return tuple(ctx[len(ctx) - need :]) + tuple(gen)


#: a logits processor: rewrites the float32 scores [batch, vocab] of one step, given the history
Processor = Callable[[Any, History], Any]


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


def model_device(module: Any) -> Any:
    return next(module.parameters()).device


def pad_id(handle: ModelHandle) -> int:
    return handle.codec.pad_token_id if handle.codec.pad_token_id is not None else 0


def left_pad(contexts: Sequence[Sequence[int]], pad: int, device: Any) -> tuple[Any, Any, Any]:
    """Left-padded ids, attention mask and position ids (0 at each row's first real token)."""
    import torch

    width = max(len(c) for c in contexts)
    batch = len(contexts)
    input_ids = torch.full((batch, width), pad, dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.long)
    for row, ctx in enumerate(contexts):
        if ctx:
            input_ids[row, width - len(ctx) :] = torch.tensor(list(ctx), dtype=torch.long)
            mask[row, width - len(ctx) :] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return input_ids, mask, positions


def step_stats(logits: Any) -> tuple[Any, Any]:
    """Entropy (nats) and top-1 probability of softmax(logits) along the last dimension."""
    import torch

    logp = torch.log_softmax(logits, dim=-1)
    probs = logp.exp()
    entropy = -(probs * logp).nan_to_num().sum(-1)
    top1 = probs.max(-1).values
    return entropy, top1


def suppress_eos(scores: Any, eos: int | None) -> Any:
    """``scores`` [batch, vocab] with the EOS column set to -inf (out of place); unchanged when ``eos`` is None."""
    if eos is None:
        return scores
    scores = scores.clone()
    scores[..., eos] = float("-inf")
    return scores


def decode(
    handle: ModelHandle,
    contexts: list[list[int]],
    new_tokens: int,
    seeds: Sequence[int],
    pick: Pick,
    processors: Sequence[Processor] = (),
    stop_at_eos: bool = False,
) -> list[Generation]:
    """Continue every context by ``new_tokens`` tokens (fewer only for a row that stops at EOS).

    At each step: raw logits → statistics → ``processors`` in order → (EOS suppressed unless
    ``stop_at_eos``) → ``pick``. Pass ``stop_at_eos=ctx.stop_at_eos`` from the decoder's
    :class:`DecodeContext`. With no processors and ``stop_at_eos`` the pick sees the raw float32 logits.
    """
    import torch

    if not contexts:
        return []
    module = handle.module
    device = model_device(module)
    pad = pad_id(handle)
    eos = handle.codec.eos_token_id
    batch = len(contexts)
    input_ids, mask, positions = left_pad(contexts, pad, device)
    generators = make_generators(seeds, device)
    outputs: list[list[int]] = [[] for _ in range(batch)]
    entropies: list[list[float]] = [[] for _ in range(batch)]
    top1s: list[list[float]] = [[] for _ in range(batch)]
    history = History(contexts, outputs)
    alive = torch.ones(batch, dtype=torch.bool, device=device)
    cache_kw = cache_argument(module)
    with inference(module):
        out = module(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True)
        next_pos = positions[:, -1:] + 1
        for step in range(new_tokens):
            logits = out.logits[:, -1, :].float()
            entropy, top1 = step_stats(logits)
            scores = logits
            history.step = step
            for processor in processors:
                scores = processor(scores, history)
            if not stop_at_eos:
                scores = suppress_eos(scores, eos)
            chosen = pick(scores, generators)
            stopped = (chosen == eos) if (stop_at_eos and eos is not None) else torch.zeros_like(alive)
            keep = (alive & ~stopped).tolist()
            chosen_l, entropy_l, top1_l = chosen.tolist(), entropy.tolist(), top1.tolist()  # one sync each
            for row in range(batch):
                if keep[row]:
                    outputs[row].append(int(chosen_l[row]))
                    entropies[row].append(float(entropy_l[row]))
                    top1s[row].append(float(top1_l[row]))
            alive = alive & ~stopped
            if processors:
                history.alive = alive.tolist()
            if not bool(alive.any()) or step == new_tokens - 1:
                break  # the last token is never fed back: no wasted forward, no position past the model's range
            step_ids = torch.where(alive, chosen, torch.full_like(chosen, pad)).unsqueeze(-1)
            mask = torch.cat([mask, alive.long().unsqueeze(-1)], dim=-1)
            out = module(
                input_ids=step_ids,
                attention_mask=mask,
                position_ids=next_pos,
                use_cache=True,
                **{cache_kw: returned_cache(out)},
            )
            next_pos = next_pos + 1
    ended = (~alive).tolist()
    return [Generation(outputs[i], entropies[i], top1s[i], stopped_at_eos=bool(ended[i])) for i in range(batch)]


def padded_logits(handle: ModelHandle, sequences: Sequence[Sequence[int]]) -> tuple[Any, Any]:
    """One teacher-forced pass over left-padded sequences: raw float32 logits [B, W, V] and the mask [B, W]."""
    module = handle.module
    input_ids, mask, positions = left_pad(sequences, pad_id(handle), model_device(module))
    with inference(module):
        logits = module(input_ids=input_ids, attention_mask=mask, position_ids=positions).logits.float()
    return logits, mask


def rescore(handle: ModelHandle, contexts: Sequence[Sequence[int]], outputs: Sequence[Sequence[int]]) -> list[tuple[list[float], list[float]]]:
    """Raw-distribution entropy and top-1 probability at each output position, by one teacher-forced pass.

    For decoders whose search does not follow a single sequence step by step (beam search): the
    statistics of the chosen continuation, as the loop would have recorded them.
    """

    if not contexts:
        return []
    logits, mask = padded_logits(handle, [list(c) + list(o) for c, o in zip(contexts, outputs)])
    width = mask.shape[1]
    result = []
    for row, (ctx, out) in enumerate(zip(contexts, outputs)):
        if not out:
            result.append(([], []))
            continue
        start = width - len(out) - 1  # the position whose next-token distribution chose out[0]
        entropy, top1 = step_stats(logits[row, start : start + len(out)])
        result.append((entropy.tolist(), top1.tolist()))
    return result


# --------------------------------------------------------------------------- picks


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


# --------------------------------------------------------------------------- warpers (scores -> scores)


def chain(*transforms: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Compose warpers left to right."""

    def run(scores: Any) -> Any:
        for transform in transforms:
            scores = transform(scores)
        return scores

    return run


def scale_temperature(scores: Any, temperature: Any) -> Any:
    """scores / T (T a float, or a tensor [batch, 1] for one temperature per row)."""
    return scores / temperature


def top_k_filter(scores: Any, top_k: int) -> Any:
    """Keep the k highest scores (ties at the boundary kept); 0 or k ≥ vocabulary is off."""
    import torch

    if top_k and top_k < scores.shape[-1]:
        kth = torch.topk(scores, top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    return scores


def top_p_filter(scores: Any, top_p: float) -> Any:
    """Keep the smallest set of most likely tokens whose probability mass reaches top_p (top token always kept)."""
    import torch

    if top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=True, dim=-1)
        cumulative = torch.softmax(sorted_scores, dim=-1).cumsum(-1)
        remove_sorted = cumulative - torch.softmax(sorted_scores, dim=-1) >= top_p
        remove_sorted[..., 0] = False
        remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
        scores = scores.masked_fill(remove, float("-inf"))
    return scores


def filter_top_k_top_p(logits: Any, temperature: float, top_k: int, top_p: float) -> Any:
    """Temperature, then keep the top-k tokens, then the smallest set whose mass reaches top_p.

    The same order as transformers' warpers (temperature → top-k → top-p); ties at the top-k
    boundary are kept, and the most likely token always survives.
    """
    return top_p_filter(top_k_filter(scale_temperature(logits, temperature), top_k), top_p)


def min_p_filter(scores: Any, min_p: float) -> Any:
    """Remove tokens whose probability is below ``min_p`` × the top token's probability."""
    import torch

    probs = torch.softmax(scores, dim=-1)
    threshold = min_p * probs.amax(dim=-1, keepdim=True)
    return scores.masked_fill(probs < threshold, float("-inf"))


def typical_filter(scores: Any, mass: float) -> Any:
    """Locally typical sampling (Meister et al. 2023).

    Rank tokens by |−log p(v) − H(p)| (closest to the distribution's entropy first) and keep the
    shortest prefix of that ranking whose probability mass reaches ``mass``; tokens tied with the
    last kept one are kept too, and at least one token always survives.
    """
    import torch

    logp = torch.log_softmax(scores, dim=-1)
    probs = logp.exp()
    entropy = -(logp * probs).nansum(-1, keepdim=True)
    surprise_gap = (-logp - entropy).abs()
    sorted_gap, order = torch.sort(surprise_gap, descending=False, dim=-1)
    cumulative = torch.softmax(scores.gather(-1, order), dim=-1).cumsum(-1)
    last = (cumulative < mass).sum(-1, keepdim=True).clamp(max=scores.shape[-1] - 1)
    cutoff = sorted_gap.gather(-1, last)
    remove = surprise_gap > cutoff
    remove = remove.scatter(-1, order[..., :1], False)
    return scores.masked_fill(remove, float("-inf"))


# --------------------------------------------------------------------------- processors ((scores, history) -> scores)


def ban(scores: Any, rows: list[int], tokens: list[int]) -> Any:
    """Set scores[rows[i], tokens[i]] to -inf (out of place)."""
    import torch

    if not rows:
        return scores
    device = scores.device
    index = (torch.tensor(rows, dtype=torch.long, device=device), torch.tensor(tokens, dtype=torch.long, device=device))
    return scores.index_put(index, torch.tensor(float("-inf"), dtype=scores.dtype, device=device))


class RepetitionPenalty:
    """The CTRL repetition penalty (Keskar et al. 2019), as transformers' RepetitionPenaltyLogitsProcessor.

    For every token already in the row's context or output: a positive score is divided by
    ``penalty``, a negative one multiplied by it. Padding is not part of the context.
    """

    def __init__(self, penalty: float):
        self.penalty = penalty
        self.seen: Any = None
        self.counted: list[int] = []

    def __call__(self, scores: Any, history: History) -> Any:
        import torch

        if self.seen is None:
            self.seen = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
            self.counted = [0] * scores.shape[0]
            rows = [r for r, ctx in enumerate(history.contexts) for _ in ctx]
            tokens = [t for ctx in history.contexts for t in ctx]
            if rows:
                self.seen[torch.tensor(rows, device=scores.device), torch.tensor(tokens, device=scores.device)] = True
        rows, tokens = [], []
        for row, gen in enumerate(history.generated):
            if len(gen) > self.counted[row]:
                new = gen[self.counted[row] :]
                rows.extend([row] * len(new))
                tokens.extend(new)
                self.counted[row] = len(gen)
        if rows:
            self.seen[torch.tensor(rows, device=scores.device), torch.tensor(tokens, device=scores.device)] = True
        penalised = torch.where(scores < 0, scores * self.penalty, scores / self.penalty)
        return torch.where(self.seen, penalised, scores)
