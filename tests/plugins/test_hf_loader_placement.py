"""Where `hf-causal-lm` puts a model: one device, `device_map` across devices, or left to a sharded launch."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.testing import save_tiny_hf_model
from harness_plugins.models._hf_handle import load_causal_lm, sharded_launch

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A random-init 2-layer Llama with a small byte-level BPE tokenizer, saved like a hub model."""
    return save_tiny_hf_model(tmp_path_factory.mktemp("tiny-hf"), ["the cat sat on the mat and looked at the sea"] * 5)


def greedy(handle) -> list[int]:
    from harness.api import decode  # the decoding loop with no processors and no sampling: argmax

    context = handle.codec.encode("the cat sat")
    return decode(handle, [context], 12, [0])[0].output_ids


def test_device_map_loads_and_generates_like_a_plain_load(model_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    plain = load_causal_lm(str(model_dir), device="cpu", dtype="float32")
    mapped = load_causal_lm(str(model_dir), device="cpu", dtype="float32", device_map="cpu")
    assert mapped.device == "cpu"
    assert greedy(mapped) == greedy(plain)


def test_device_map_is_ignored_inside_a_multi_process_launch(model_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """The same YAML serves both steps: `--fit-only` under accelerate launch, then one generating process."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    handle = load_causal_lm(str(model_dir), device="cpu", dtype="float32", device_map="auto")
    assert handle.device == "cpu" and getattr(handle.module, "hf_device_map", None) is None


def test_sharded_launch_leaves_placement_to_accelerate(model_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not sharded_launch()  # DDP: each process moves its own full copy to its GPU
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert sharded_launch()
    handle = load_causal_lm(str(model_dir), device="cpu", dtype="float32")
    assert next(handle.module.parameters()).device.type == "cpu"
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    assert sharded_launch()
