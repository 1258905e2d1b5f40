"""A decoder made of other decoders' processors: a benchmark's ``compose:`` list.

```yaml
decoders:
  top-p-blocked:
    compose:
      - {plugin: citation-blocked, window: 5}
      - {plugin: top-p, p: 0.9}
```

Each part must be a :class:`~harness.api.ComposableDecoder`; their processors run in the listed order in
one :func:`harness.decoding.decode` loop, and the final pick samples if any part samples (argmax
otherwise). Every "adjust" part (penalties, bans, blocking) must come before every "warp" part
(temperature, truncation): a ban applied after truncation could remove every token that survived it.
"""

from __future__ import annotations

from typing import Any, Sequence

from harness.api import ComposableDecoder, DecodeContext, Decoder, InputError, ModelHandle, Processor
from harness.registry import Source

#: the plugin name a composed decoder is shown under (plugin tables, manifests, leaderboards)
COMPOSE = "compose"
STAGES = ("adjust", "warp")


def composition_problems(parts: Sequence[type[Decoder]]) -> list[tuple[int, str]]:
    """(index of the part, message) for every rule a list of decoder classes breaks as a composition."""
    if not parts:
        return [(-1, "list at least one decoder to compose")]
    problems: list[tuple[int, str]] = []
    first_warp: tuple[int, str] | None = None
    for i, cls in enumerate(parts):
        if not (isinstance(cls, type) and issubclass(cls, ComposableDecoder)):
            problems.append((i, f'decoder "{cls.name}" cannot be composed: it runs its own search rather than '
                                "contributing logits processors to the shared loop"))  # fmt: skip
            continue
        if cls.stage not in STAGES:
            problems.append((i, f'decoder "{cls.name}" declares stage {cls.stage!r}; expected one of {", ".join(STAGES)}'))
        elif cls.stage == "warp" and first_warp is None:
            first_warp = (i, cls.name)
        elif cls.stage == "adjust" and first_warp is not None:
            problems.append((
                i,
                f'"{cls.name}" adjusts scores (a penalty or ban) but comes after "{first_warp[1]}" (compose[{first_warp[0]}]), '
                "which warps them (temperature or truncation): list every penalty/ban before the warps, since a ban "
                "after truncation could leave no token to pick",
            ))  # fmt: skip
    return problems


def core_source() -> Source:
    """Where :class:`ComposedDecoder` comes from: the harness itself (its distribution and version)."""
    import importlib.metadata as md

    try:
        return Source("harness.composition", "hyperfit-harness", md.version("hyperfit-harness"))
    except md.PackageNotFoundError:  # a source checkout that was never installed
        return Source("harness.composition")


class ComposedDecoder(ComposableDecoder):
    """The parts' processors in order, then argmax, or sampling if any part samples."""

    name = COMPOSE
    description = "A composition of decoders: their logits processors in order (adjust, then warp), then one pick."
    version = "1"
    params = ()

    def __init__(self, parts: Sequence[ComposableDecoder], config: dict[str, Any] | None = None):
        problems = composition_problems([type(p) for p in parts])
        if problems:
            raise InputError("invalid composition: " + "; ".join(message for _, message in problems))
        self.parts = list(parts)
        self.samples = any(p.samples for p in self.parts)  # type: ignore[misc]
        self.deterministic = not self.samples  # type: ignore[misc]
        super().__init__(config if config is not None else {"compose": [{"plugin": p.name, **p.config} for p in self.parts]})

    def processors(self, handle: ModelHandle, contexts: list[list[int]], ctx: DecodeContext) -> list[Processor]:
        return [processor for part in self.parts for processor in part.processors(handle, contexts, ctx)]
