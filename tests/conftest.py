"""Shared fixtures: a tiny model plugin, a local text corpus, and a benchmark writer."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

# the corpus and benchmark helpers are public (harness.testing) so plugin packages can test the same way
from harness.testing import WORDS, make_corpus, tiny_benchmark, write_yaml  # noqa: F401

FIXTURES = Path(__file__).parent / "fixtures"
TINY_PLUGINS = FIXTURES / "tiny_plugins.py"


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
