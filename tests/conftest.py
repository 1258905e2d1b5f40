"""Shared fixtures: a tiny model plugin, a local text corpus, and a benchmark writer."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

FIXTURES = Path(__file__).parent / "fixtures"
TINY_PLUGINS = FIXTURES / "tiny_plugins.py"

WORDS = (
    "river stone light garden window market winter silver forest letter music paper bridge harbor "
    "mountain candle orange valley thunder shadow quiet yellow engine island morning copper field"
).split()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the user's cache, disabled-plugin list or hub access."""
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HARNESS_DISABLE_PLUGINS", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Two cores, often shared: one intra-op thread is many times faster than oversubscribing them."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_module():
    """tests/fixtures/tiny_plugins.py as a module (for tiny_llama() and ByteCodec in unit tests)."""
    name = "tiny_plugins_fixture"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TINY_PLUGINS)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def make_corpus(path: Path, documents: int = 40, words: int = 60, seed: int = 0) -> Path:
    """A deterministic local-text corpus: documents of random words separated by blank lines."""
    rng = random.Random(seed)
    docs = [" ".join(rng.choice(WORDS) for _ in range(words)) for _ in range(documents)]
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


def tiny_benchmark(tmp_path: Path, name: str = "tiny", **overrides: Any) -> dict[str, Any]:
    """A small, valid benchmark on the tiny model (as a dict; tweak it, then write it)."""
    corpus = make_corpus(tmp_path / "corpus.txt")
    other = make_corpus(tmp_path / "other.txt", seed=1)
    bench: dict[str, Any] = {
        "name": name,
        "seed": 0,
        "models": {"tiny": {"loader": "tiny-llama"}},
        "datasets": {
            "train-set": {"plugin": "local-text", "path": str(corpus)},
            "other-set": {"plugin": "local-text", "path": str(other)},
        },
        "recipes": {
            "base": {"plugin": "none"},
            "fit": {"plugin": "hyperfit", "train": {"dataset": "train-set", "samples": 8, "tokens": 24},
                    "lr": 3.0e-3, "epochs": 2, "batch_size": 4},
        },
        "decoders": {"greedy": {"plugin": "greedy"}, "top-p": {"plugin": "top-p"}},
        "eval": {"datasets": ["train-set", "other-set"], "contexts": 6, "context_tokens": 12, "new_tokens": 16,
                 "batch_size": 4, "bootstrap": 50},
        "metrics": {"ttr": {"plugin": "ttr", "window": 16}, "self-bleu": {"plugin": "self-bleu"},
                    "entropy": {"plugin": "entropy"}},
    }  # fmt: skip
    bench.update(overrides)
    return bench


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def tiny_plugins_path() -> Path:
    return TINY_PLUGINS


@pytest.fixture(scope="module")
def tiny():
    """tests/fixtures/tiny_plugins.py as a module (tiny_llama(), ByteCodec, TinyHandle)."""
    return tiny_module()


@pytest.fixture(scope="module")
def model(tiny):
    """A 2-layer random-init Llama over bytes, seed 0."""
    return tiny.tiny_llama()


@pytest.fixture
def handle(tiny, model):
    """The tiny model with its byte codec, as decoders receive it."""
    return tiny.TinyHandle(model, tiny.ByteCodec(), device="cpu")
