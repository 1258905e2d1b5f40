"""The processors the bundled decoders are composed of (the loop itself is ``harness.decoding.decode``).

Every processor is ``(scores, history) -> scores`` on float32 scores [batch, vocab], out of place:

* warpers (stage "warp"): :class:`Warp` wraps a pure ``scores -> scores`` rule, one of
  ``scale_temperature``, ``top_k_filter``, ``top_p_filter``, ``typical_filter``, ``min_p_filter``
  (checked one by one against transformers' warpers); :class:`RowTemperature` divides each row by its
  own temperature and reports it (``row_extras``); :func:`top_p_warps` is the paper's top-p baseline
  (temperature → top-k → top-p, transformers' order);
* adjusters (stage "adjust"): :class:`RepetitionPenalty` here, the n-gram bans (no-repeat-ngram, the
  citation blocker) in ``harness_plugins.decoders._ngram``; :func:`ban` sets single scores to -inf.
"""

from __future__ import annotations

from typing import Any, Callable

from harness.api import History


class Warp:
    """A processor that ignores the history: ``transform(scores, **params)`` (a temperature or truncation)."""

    def __init__(self, transform: Callable[..., Any], **params: Any):
        self.transform = transform
        self.params = params

    def __call__(self, scores: Any, history: History) -> Any:
        return self.transform(scores, **self.params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Warp({self.transform.__name__}, {args})"


class RowTemperature:
    """scores / T_row, one temperature per row; reports each row's T (rounded to 6 decimals) as ``temperature``."""

    def __init__(self, temperatures: list[float], device: Any):
        import torch

        self.temperatures = list(temperatures)
        self.column = torch.tensor(self.temperatures, dtype=torch.float32, device=device).unsqueeze(-1)

    def __call__(self, scores: Any, history: History) -> Any:
        return scale_temperature(scores, self.column)

    def row_extras(self) -> list[dict[str, Any]]:
        return [{"temperature": round(float(t), 6)} for t in self.temperatures]


def top_p_warps(temperature: float, top_k: int, top_p: float) -> list[Warp]:
    """The paper's top-p baseline as three processors: temperature, then top-k, then top-p."""
    return [
        Warp(scale_temperature, temperature=temperature),
        Warp(top_k_filter, top_k=top_k),
        Warp(top_p_filter, top_p=top_p),
    ]


# --------------------------------------------------------------------------- warper rules (scores -> scores)


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
    boundary are kept, and the most likely token always survives. (:func:`top_p_warps` as one function.)
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


# --------------------------------------------------------------------------- adjusters ((scores, history) -> scores)


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
    ``penalty``, a negative one multiplied by it (-inf stays -inf). Padding is not part of the context.
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
