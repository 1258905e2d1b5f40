"""Where `hf-causal-lm` puts a model: one device, `device_map` across devices, or left to a sharded launch."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness_plugins.models.hf_handle import load_causal_lm, sharded_launch

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A random-init 2-layer Llama with a small byte-level BPE tokenizer, saved like a hub model."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-hf")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)  # fmt: skip
    backend.train_from_iterator(["the cat sat on the mat and looked at the sea"] * 5, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, bos_token_id=1, eos_token_id=2, pad_token_id=0)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def greedy(handle) -> list[int]:
    from harness_plugins.decoders.loop import decode, greedy_pick

    context = handle.codec.encode("the cat sat")
    return decode(handle, [context], 12, [0], greedy_pick)[0].output_ids


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
