"""The models of a run: their identities, their codecs, and the one model held in memory at a time.

A model is named by its benchmark key; its *id* (part of every stage key) hashes the loader's params, its
files' fingerprint, the settings the params resolve to on this device (dtype) and the libraries that
compute it. The pool loads lazily and holds one model: asking for another releases the first.
"""

from __future__ import annotations

import gc
from typing import Any

from harness import distributed
from harness.api import Codec, LoadContext, ModelHandle
from harness.code_identity import library_versions
from harness.config import Benchmark
from harness.errors import InputError
from harness.stages import StageBook
from harness.store import content_key


def resolve_device(requested: str) -> str:
    """``auto`` → cuda when available, else cpu; an explicit cuda request fails clearly without CUDA."""
    if requested != "auto" and not requested.startswith("cuda"):
        return requested  # no torch import for an explicit CPU: a warm run may need nothing from it
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise InputError(f"--device {requested}: CUDA is not available on this machine")
    return requested


class ModelPool:
    def __init__(self, bench: Benchmark, book: StageBook, requested_device: str):
        self.bench = bench
        self.book = book
        self.requested_device = requested_device
        self._device: str | None = None
        self._loaders: dict[str, Any] = {key: comp.instantiate() for key, comp in bench.models.items()}
        self.facts: dict[str, dict[str, Any]] = {}  # per model, recorded in the manifest
        self.codecs: dict[str, Codec] = {}
        self._ids: dict[str, str] = {}
        self._held: ModelHandle | None = None
        self._held_as: tuple[str, str | None] | None = None  # (model, fit key or None for the base weights)

    @property
    def device(self) -> str:
        if self._device is None:
            device = resolve_device(self.requested_device)
            if device == "cuda" and distributed.is_distributed():
                device = f"cuda:{distributed.local_rank()}"  # one GPU per process
            self._device = device
        return self._device

    @property
    def device_name(self) -> str:
        """The resolved device if anything needed it, else what was asked for (for the manifest)."""
        return self._device or self.requested_device

    def _context(self) -> LoadContext:
        return LoadContext(device=self.device, cache_dir=self.book.cache.root / "models")

    def model_facts(self, model: str) -> dict[str, Any]:
        """What decides this model's outputs besides its params: the files' fingerprint, the settings its
        params resolve to here (dtype), the device kind and the libraries' versions."""
        if model not in self.facts:
            loader = self._loaders[model]
            self.facts[model] = {
                "fingerprint": loader.fingerprint(),
                "resolved": loader.resolved_settings(self.device),
                "device": "cuda" if self.device.startswith("cuda") else self.device,
                "libraries": library_versions(),
            }
        return self.facts[model]

    def model_id(self, model: str) -> str:
        if model not in self._ids:
            self._ids[model] = content_key("model", self.bench.models[model].identity(), self.model_facts(model))
        return self._ids[model]

    def codec(self, model: str) -> Codec:
        """The model's codec, without loading its weights where the loader can (``load_codec``)."""
        if model not in self.codecs:
            cheap = self._loaders[model].load_codec(self._context())
            if cheap is not None:
                self.codecs[model] = cheap
            else:
                self.base(model)
        return self.codecs[model]

    def held(self, model: str, fit_key: str | None) -> ModelHandle | None:
        """The model in memory if it is this model with these weights (None: the base weights)."""
        return self._held if self._held is not None and self._held_as == (model, fit_key) else None

    def base(self, model: str) -> ModelHandle:
        """The model with its loader's weights (loaded now unless it is the one held)."""
        held = self.held(model, None)
        if held is not None:
            return held
        self.release()
        with self.book.timed("load"):
            self.book.reporter.log(f"loading model {model} ({self.bench.models[model].plugin}) on {self.device}")
            handle = self._loaders[model].load(self._context())
        self.codecs[model] = handle.codec
        self._held, self._held_as = handle, (model, None)
        return handle

    def for_training(self, model: str) -> ModelHandle:
        """The base model, handed over to be changed in place: the pool stops serving it as the base."""
        handle = self.base(model)
        self._held_as = None
        return handle

    def adopt(self, model: str, fit_key: str, handle: ModelHandle) -> None:
        """Hold ``handle`` (just fitted in place) as the model with the weights of ``fit_key``."""
        self._held, self._held_as = handle, (model, fit_key)

    def fitted(self, model: str, fit_key: str | None) -> ModelHandle:
        """The model with a stored fit's weights (``fit_key`` None: the base weights)."""
        if fit_key is None:
            return self.base(model)
        held = self.held(model, fit_key)
        if held is not None:
            return held
        handle = self.for_training(model)
        with self.book.timed("load"):
            handle.load_weights(self.book.cache.directory("fits", fit_key))
        self.adopt(model, fit_key, handle)
        return handle

    def separate(self, model: str, fit_key: str | None) -> ModelHandle:
        """A fresh copy of the model with a stored fit's weights (``fit_key`` None: the base), outside the pool:
        the held model is untouched, and the copy is freed when its user drops it. For a recipe or decoder
        that reads a second set of weights beside the one it works on (``recipe_dependencies``)."""
        with self.book.timed("load"):
            self.book.reporter.log(f"loading a second copy of model {model} ({'base' if fit_key is None else 'fit ' + fit_key[:10]})")
            handle = self._loaders[model].load(self._context())
            if fit_key is not None:
                handle.load_weights(self.book.cache.directory("fits", fit_key))
        return handle

    def holds(self) -> tuple[str, str | None] | None:
        return self._held_as

    def release(self) -> None:
        self._held = None
        self._held_as = None
        gc.collect()
