"""Helpers for the model-based metric tests: a counting featurizer, a fixed-distribution model, registration."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from harness.api import Codec, MetricContext, ModelHandle


class TableFeaturizer:
    """A featurizer whose vectors come from a dict (text → list of floats); counts embed calls and texts."""

    name = "minilm"  # stands in for the default featurizer
    table: dict[str, list[float]] = {}
    calls: list[list[str]] = []

    def __init__(self, max_length, batch_size, device, context):
        self.max_length = max_length or 256
        self.batch_size = batch_size
        self.context = context

    def identity(self):
        return {"featurizer": "table", "max_length": self.max_length}

    def embed(self, texts):
        import numpy as np

        type(self).calls.append(list(texts))
        return np.asarray([type(self).table[t] for t in texts], dtype=np.float32)


def use_table(monkeypatch, table: dict[str, list[float]]) -> type[TableFeaturizer]:
    """Swap the minilm featurizer for a fresh TableFeaturizer subclass serving ``table``."""
    from harness_plugins.metrics.model_based import _featurizers as featurizers

    cls = type("Table", (TableFeaturizer,), {"table": dict(table), "calls": []})
    monkeypatch.setitem(featurizers.FEATURIZERS, "minilm", cls)
    return cls


class ListCodec(Codec):
    """Token ids are the integers of a space-separated string (pad 0, eos 1)."""

    eos_token_id = 1
    pad_token_id = 0

    def encode(self, text: str) -> list[int]:
        return [int(t) for t in text.split()]

    def decode(self, ids) -> str:
        return " ".join(str(i) for i in ids)

    def fingerprint(self) -> str:
        return "list"


def fixed_distribution_model(probs: list[float]):
    """A module whose next-token distribution is ``probs`` at every position, whatever the input."""
    import torch

    class Fixed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.logp = torch.nn.Parameter(torch.log(torch.tensor(probs, dtype=torch.float32)))
            self.calls = 0

        def forward(self, input_ids, attention_mask=None, **kwargs):
            self.calls += 1
            b, t = input_ids.shape
            return SimpleNamespace(logits=self.logp.expand(b, t, -1).clone())

    return Fixed()


def context_for(module: Any, codec: Codec, cache_dir: Path | None = None) -> MetricContext:
    handle = ModelHandle(module, codec, device="cpu")
    return MetricContext(codec=codec, model=lambda: handle, cache_dir=cache_dir)


def registry_with_model_metrics(tmp_path: Path, *extra: str):
    """Plugins as installed; if the model-based entry point is not installed yet, add it via a local shim file."""
    from harness.plugin_manager import PluginOptions, load_plugins

    loaded = load_plugins(PluginOptions(local_files=extra))
    if loaded.registry.find("metric", "mauve") is None:
        shim = tmp_path / "model_metrics_shim.py"
        shim.write_text("from harness_plugins.metrics.model_based import harness_register_metrics  # noqa: F401\n")
        loaded = load_plugins(PluginOptions(local_files=extra + (str(shim),)))
    return loaded.registry
