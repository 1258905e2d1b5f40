"""A stored fit loads into a device-mapped model tensor by tensor: the peak stays below two copies of the model.

The model (a random-init 8-layer Llama of 58M parameters, 221 MB in float32) is saved like a hub model; a
"fit" of it (every weight + 0.01) is stored the way the fit cache stores one. A fresh process loads the base
with a per-module ``device_map`` and then the fit (``CausalLMHandle.load_weights``), sampling its anonymous
memory: the extra peak must stay under 2 x the model's size (a loader that built the whole fitted state
beside the model would need at least that), and every value must be the fit's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.api import InputError, load_weights_file, save_weights_file
from harness.testing import save_tiny_hf_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
REPO = Path(__file__).resolve().parents[2]
PROBE = REPO / "tests" / "fixtures" / "load_peak_memory.py"


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, Path, int, dict[str, float]]:
    root = tmp_path_factory.mktemp("streamed")
    tokenizer_dir = save_tiny_hf_model(root / "tok", ["the cat sat on the mat"] * 5)
    config = transformers.LlamaConfig(vocab_size=32000, hidden_size=512, intermediate_size=1376, num_hidden_layers=8,
                                      num_attention_heads=8, num_key_value_heads=8, tie_word_embeddings=False)  # fmt: skip
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(root / "model")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (root / "model" / name).write_bytes((tokenizer_dir / name).read_bytes())
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01)

    class Holder:
        gathered_state = None
        module = model

    save_weights_file(Holder(), root / "fit" / "weights.safetensors")
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    first = {name: float(t.flatten()[0]) for name, t in list(model.state_dict().items())[:3]}
    return root / "model", root / "fit", size, first


def test_fit_streams_into_a_device_mapped_model_below_two_copies(saved):
    model_dir, fit_dir, size, first = saved
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(PROBE), str(model_dir), str(fit_dir)], capture_output=True, text=True,
                          env=env, timeout=300, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    extra = (facts["peak_mb"] - facts["baseline_mb"]) * 2**20
    print(f"model {size / 2**20:.0f} MB; peak above baseline {extra / 2**20:.0f} MB = {extra / size:.2f} x the model")
    assert extra < 2 * size
    assert facts["devices"] == ["cpu"]
    assert facts["first_values"] == pytest.approx(first, rel=1e-6)


def tiny(tied: bool) -> "torch.nn.Module":
    config = transformers.LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=tied)  # fmt: skip
    return transformers.LlamaForCausalLM(config)


@pytest.mark.parametrize("tied", [False, True])
def test_round_trip_from_module_and_from_a_gathered_state(tmp_path: Path, tied: bool):
    torch.manual_seed(1)
    source = tiny(tied)

    class FromModule:
        gathered_state = None
        module = source

    class FromGathered:  # what a sharded fit hands over: a plain state dict, tied names both present, cloned
        gathered_state = {k: v.clone() for k, v in source.state_dict().items()}
        module = None

    for holder, name in ((FromModule(), "a"), (FromGathered(), "b")):
        save_weights_file(holder, tmp_path / name / "w.safetensors")
        torch.manual_seed(2)
        target = tiny(tied)
        load_weights_file(target, tmp_path / name / "w.safetensors")
        for key, value in source.state_dict().items():
            assert torch.equal(target.state_dict()[key], value), (name, key)
        if tied:
            assert target.lm_head.weight.data_ptr() == target.model.embed_tokens.weight.data_ptr()


def test_a_file_that_does_not_fit_the_model_is_refused_by_name(tmp_path: Path):
    from safetensors.torch import save_file

    model = tiny(False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    save_file({k: v for k, v in state.items() if k != "lm_head.weight"}, str(tmp_path / "short.safetensors"))
    with pytest.raises(InputError, match="lacks 1 tensors of the model, e.g. 'lm_head.weight'"):
        load_weights_file(model, tmp_path / "short.safetensors")
    save_file(state | {"extra.weight": torch.zeros(2)}, str(tmp_path / "long.safetensors"))
    with pytest.raises(InputError, match="holds 'extra.weight', which the model does not have"):
        load_weights_file(model, tmp_path / "long.safetensors")
