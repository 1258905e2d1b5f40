"""Text loaders give their codec without the weights (``load_codec``): the same tokenizer the full load gives,
so planning, the report and ``harness score`` need no model load; never from the network."""

from __future__ import annotations

import time
from pathlib import Path

from harness.api import LoadContext
from harness.testing import save_tiny_hf_model
from harness_plugins.models.hf_causal_lm import HFCausalLM

TEXTS = ["the cat sat on the mat", "a dog ran in the park", "the sun rose over the hills"]


def test_the_cheap_codec_is_the_loaded_one(tmp_path: Path) -> None:
    folder = save_tiny_hf_model(tmp_path / "tiny", TEXTS)
    loader = HFCausalLM({"id": str(folder)})
    ctx = LoadContext(device="cpu", cache_dir=tmp_path / "cache")
    cheap = loader.load_codec(ctx)
    full = loader.load(ctx).codec
    assert cheap is not None
    assert cheap.fingerprint() == full.fingerprint()
    for text in TEXTS + ["an unseen sentence, with punctuation!"]:
        assert cheap.encode(text) == full.encode(text)
    assert (cheap.eos_token_id, cheap.pad_token_id) == (full.eos_token_id, full.pad_token_id)


def test_an_uncached_hub_id_gives_none_without_the_network(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty hub cache
    started = time.perf_counter()
    codec = HFCausalLM({"id": "no-such-org/no-such-model"}).load_codec(LoadContext("cpu", tmp_path))
    assert codec is None and time.perf_counter() - started < 10
