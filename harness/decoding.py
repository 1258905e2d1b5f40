"""The decoding loop: logits processors in order, then one final pick (argmax or seeded sampling).

Every loop-based decoder is a composition of *processors*, each ``(scores, history) -> scores``
(penalties, bans, citation blocking, temperature, truncation), run by :func:`decode`. Contexts are
left-padded with an attention mask and explicit position ids (``harness.forward.pad_batch``) and the KV
cache is reused step to step. At each step:

1. raw logits (float32) of every row's next token;
2. per-step statistics (entropy, top-1 probability) from those raw logits (``harness.forward.step_stats``);
3. EOS suppressed (its score set to -inf) unless ``stop_at_eos``;
4. the processors in order;
5. the pick: argmax, or one multinomial draw from softmax(scores) with the row's own ``torch.Generator``
   (seeded by the runner from (seed, prompt id)), so a continuation does not depend on its batch.

EOS is suppressed *before* the processors so that truncation warpers renormalise over the other tokens and
a ban's count sees the token that would really be picked; the penalty and ban processors keep -inf at -inf,
so for them the order makes no difference to the scores.

The EOS policy (``DecodeContext.stop_at_eos``, the benchmark's ``eval.stop_at_eos``): ``False`` (the default)
runs every row to exactly ``new_tokens`` tokens, EOS never picked; ``True`` stops a row when it emits EOS (EOS
is not part of its output or statistics, and ``Generation.stopped_at_eos`` is True). A codec without an EOS
token has nothing to suppress or stop at.

A processor may also define ``row_extras() -> list[dict]``: per-row JSON facts (``{"blocked_steps": 3}``,
``{"temperature": 0.41}``) that the loop puts into ``Generation.extras`` after the last step.

Search decoders with their own loop (contrastive, beam) reuse :func:`prefill`, :class:`Transcript`,
:func:`suppress_eos`, the KV-cache helpers and :func:`rescore`. torch is imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Sequence

from harness.forward import inference, model_device, pad_batch, padded_forward, step_stats

if TYPE_CHECKING:  # pragma: no cover
    from harness.api import ModelHandle


@dataclass
class Generation:
    """One continuation plus per-step statistics of the *raw* model distribution."""

    output_ids: list[int]
    step_entropy: list[float] = field(default_factory=list)
    step_top1: list[float] = field(default_factory=list)
    #: True when the row ended because the model emitted EOS (only possible with ``DecodeContext.stop_at_eos``)
    stopped_at_eos: bool = False
    #: per-row facts a decoder reports (JSON values), written into the row's record under these names, e.g.
    #: ``{"blocked_steps": 3}`` (citation blocking) or ``{"temperature": 0.41}`` (a chosen temperature).
    #: A name may not shadow a core record field (:data:`SAMPLE_FIELDS`, :data:`OPTIONAL_SAMPLE_FIELDS`).
    extras: dict[str, Any] = field(default_factory=dict)


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


class Processor(Protocol):
    """Rewrites one step's float32 scores [batch, vocab] given the history (out of place).

    It may keep state across the steps of one :func:`decode` call (build a fresh one per call), and may
    define ``row_extras() -> list[dict]`` (one JSON-able dict per row) for ``Generation.extras``.
    """

    def __call__(self, scores: Any, history: History) -> Any: ...


def make_generators(seeds: Sequence[int], device: Any) -> list[Any]:
    """One ``torch.Generator`` per row, so a row's draws depend on its own seed only."""
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
    """The KV cache a forward returned, under either name."""
    return out["cache"] if "cache" in out else out["past_key_values"]


def pad_id(handle: "ModelHandle") -> int:
    """The codec's padding id (0 when it has none): masked out, so its value never matters."""
    return handle.codec.pad_token_id if handle.codec.pad_token_id is not None else 0


def suppress_eos(scores: Any, eos: int | None) -> Any:
    """``scores`` [batch, vocab] with the EOS column set to -inf (out of place); unchanged when ``eos`` is None."""
    if eos is None:
        return scores
    scores = scores.clone()
    scores[..., eos] = float("-inf")
    return scores


def prefill(module: Any, contexts: Sequence[Sequence[int]], pad: int, hidden_states: bool = False) -> tuple[Any, Any, Any]:
    """The cached first forward over left-padded contexts: (model output, attention mask, position ids).

    Call it inside ``harness.api.inference``; the output holds the KV cache for the following steps.
    """
    ids, mask, positions = pad_batch(contexts, pad, model_device(module), "left")
    extra = {"output_hidden_states": True} if hidden_states else {}
    out = module(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **extra)
    return out, mask, positions


class Transcript:
    """Each row's output and raw statistics so far, and which rows are still alive (the EOS policy)."""

    def __init__(self, batch: int, device: Any, eos: int | None, stop_at_eos: bool):
        import torch

        self.outputs: list[list[int]] = [[] for _ in range(batch)]
        self.entropies: list[list[float]] = [[] for _ in range(batch)]
        self.top1s: list[list[float]] = [[] for _ in range(batch)]
        self.alive = torch.ones(batch, dtype=torch.bool, device=device)
        self.eos = eos if stop_at_eos else None

    def record(self, chosen: Any, entropy: Any, top1: Any) -> None:
        """Append the step's pick and statistics to every live row; a row that picked EOS (stop_at_eos) ends."""
        import torch

        stopped = (chosen == self.eos) if self.eos is not None else torch.zeros_like(self.alive)
        keep = (self.alive & ~stopped).tolist()
        chosen_l, entropy_l, top1_l = chosen.tolist(), entropy.tolist(), top1.tolist()  # one sync each
        for row, kept in enumerate(keep):
            if kept:
                self.outputs[row].append(int(chosen_l[row]))
                self.entropies[row].append(float(entropy_l[row]))
                self.top1s[row].append(float(top1_l[row]))
        self.alive = self.alive & ~stopped

    @property
    def finished(self) -> bool:
        return not bool(self.alive.any())

    def generations(self) -> list["Generation"]:
        ended = (~self.alive).tolist()
        return [
            Generation(out, ent, top, stopped_at_eos=bool(end))
            for out, ent, top, end in zip(self.outputs, self.entropies, self.top1s, ended)
        ]


def _pick(scores: Any, generators: list[Any] | None) -> Any:
    """Argmax (no generators) or one draw per row from softmax(scores) with the row's own generator."""
    import torch

    if generators is None:
        return scores.argmax(-1)
    probs = torch.softmax(scores, dim=-1)
    return torch.cat([torch.multinomial(probs[i], 1, generator=generators[i]) for i in range(probs.shape[0])])


def _attach_extras(generations: list["Generation"], processors: Sequence[Processor]) -> None:
    """Merge every processor's ``row_extras()`` into its rows' ``Generation.extras``."""
    from harness.errors import PluginError

    for processor in processors:
        row_extras = getattr(processor, "row_extras", None)
        if row_extras is None:
            continue
        facts = list(row_extras())
        if len(facts) != len(generations):
            raise PluginError(f"{type(processor).__name__}.row_extras() gave {len(facts)} rows for a batch of {len(generations)}")
        for gen, extra in zip(generations, facts):
            for name, value in extra.items():
                if name in gen.extras:
                    raise PluginError(f"two processors of one decoder report the extra {name!r}")
                gen.extras[name] = value


def decode(
    handle: "ModelHandle",
    contexts: list[list[int]],
    new_tokens: int,
    seeds: Sequence[int],
    processors: Sequence[Processor] = (),
    sample: bool = False,
    stop_at_eos: bool = False,
) -> list["Generation"]:
    """Continue every context by ``new_tokens`` tokens (fewer only for a row that stops at EOS).

    At each step: raw logits → statistics → EOS suppressed (unless ``stop_at_eos``) → ``processors`` in
    order → argmax, or (``sample``) a draw with the row's generator seeded from ``seeds``. Pass
    ``stop_at_eos=ctx.stop_at_eos`` from the decoder's ``DecodeContext``.
    """
    import torch


    if not contexts:
        return []
    module = handle.module
    device = model_device(module)
    pad = pad_id(handle)
    eos = handle.codec.eos_token_id
    generators = make_generators(seeds, device) if sample else None
    rows = Transcript(len(contexts), device, eos, stop_at_eos)
    history = History(contexts, rows.outputs)
    cache_kw = cache_argument(module)
    with inference(module):
        out, mask, positions = prefill(module, contexts, pad)
        next_pos = positions[:, -1:] + 1
        for step in range(new_tokens):
            logits = out.logits[:, -1, :].float()
            entropy, top1 = step_stats(logits)
            scores = logits if stop_at_eos else suppress_eos(logits, eos)
            history.step = step
            for processor in processors:
                scores = processor(scores, history)
            chosen = _pick(scores, generators)
            rows.record(chosen, entropy, top1)
            if processors:
                history.alive = rows.alive.tolist()
            if rows.finished or step == new_tokens - 1:
                break  # the last token is never fed back: no wasted forward, no position past the model's range
            alive = rows.alive
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
    generations = rows.generations()
    _attach_extras(generations, processors)
    return generations


def rescore(
    handle: "ModelHandle", contexts: Sequence[Sequence[int]], outputs: Sequence[Sequence[int]]
) -> list[tuple[list[float], list[float]]]:
    """Raw-distribution entropy and top-1 probability at each output position, by one teacher-forced pass.

    For decoders whose search does not follow a single sequence step by step (beam search): the
    statistics of the chosen continuation, as the loop would have recorded them.
    """
    if not contexts:
        return []
    sequences = [list(c) + list(o) for c, o in zip(contexts, outputs)]
    forward = padded_forward(handle.module, sequences, pad_id(handle), side="left")
    logits = forward.logits.float()
    width = forward.mask.shape[1]
    result = []
    for row, out in enumerate(outputs):
        if not out:
            result.append(([], []))
            continue
        start = width - len(out) - 1  # the position whose next-token distribution chose out[0]
        entropy, top1 = step_stats(logits[row, start : start + len(out)])
        result.append((entropy.tolist(), top1.tolist()))
    return result
