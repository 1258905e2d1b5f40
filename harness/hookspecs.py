"""The hooks a plugin implements: one collector hook per plugin kind.

Each hook receives ``register``; call it once per plugin class you provide. pluggy calls each plugin
module's hooks on their own, so every registration is attributed to the module that made it and a hook
that raises is reported (or fatal with ``--strict-plugins``) without losing the other plugins::

    from harness.api import Decoder, Param, hookimpl

    class MyDecoder(Decoder):
        name = "my-decoder"
        description = "Greedy, but shouting."
        params = (Param("volume", int, default=11, min=0),)
        def generate(self, handle, contexts, new_tokens, ctx): ...

    @hookimpl
    def harness_register_decoders(register):
        register(MyDecoder)

Publish the module under the entry-point group ``harness`` in your package's pyproject::

    [project.entry-points.harness]
    my-decoders = "my_package.decoders"

Names are unique per kind across all installed plugins; a clash is an error naming both sources.
Keep plugin modules light: import torch/transformers inside methods, not at module level.
"""

from __future__ import annotations

from typing import Callable

import pluggy

PROJECT = "harness"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[[type], None]


@hookspec
def harness_register_model_loaders(register: Register) -> None:
    """Register :class:`harness.api.ModelLoader` subclasses (load a model + its codec)."""


@hookspec
def harness_register_datasets(register: Register) -> None:
    """Register :class:`harness.api.Dataset` subclasses (documents with stable ids)."""


@hookspec
def harness_register_recipes(register: Register) -> None:
    """Register :class:`harness.api.Recipe` subclasses (fit a model on training sequences)."""


@hookspec
def harness_register_decoders(register: Register) -> None:
    """Register :class:`harness.api.Decoder` subclasses (continue a batch of contexts)."""


@hookspec
def harness_register_metrics(register: Register) -> None:
    """Register :class:`harness.api.Metric` subclasses (score generations)."""


#: hook name per plugin kind, in the order `harness plugins` lists them
HOOK_BY_KIND = {
    "model_loader": "harness_register_model_loaders",
    "dataset": "harness_register_datasets",
    "recipe": "harness_register_recipes",
    "decoder": "harness_register_decoders",
    "metric": "harness_register_metrics",
}
