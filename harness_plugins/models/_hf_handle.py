"""The handle and codec shared by the Hugging Face causal-LM loaders.

Imports torch/transformers only inside functions so that registering the loaders stays cheap.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Sequence

from harness.api import Codec, InputError, ModelHandle, distributed, load_weights_file, save_weights_file
from harness.api import torch_dtype as api_torch_dtype

WEIGHTS_FILE = "weights.safetensors"
DTYPES = ("auto", "float32", "bfloat16", "float16")


class TokenizerCodec(Codec):
    """A Hugging Face tokenizer as a codec. Special tokens are added as the tokenizer defines them
    (e.g. BOS for Llama-family models, as the paper's code does) and skipped when decoding."""

    modality = "text"

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def special_token_ids(self) -> frozenset[int]:
        return frozenset(int(i) for i in self.tokenizer.all_special_ids) | super().special_token_ids()

    def fingerprint(self) -> str:
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        text = backend.to_str() if backend is not None else repr(sorted(self.tokenizer.get_vocab().items()))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


class CausalLMHandle(ModelHandle):
    """A transformers causal LM; fitted weights are stored as one safetensors file."""

    def save_weights(self, directory: Path) -> None:
        save_weights_file(self, directory / WEIGHTS_FILE)

    def load_weights(self, directory: Path) -> None:
        load_weights_file(self.module, directory / WEIGHTS_FILE)


def quiet_transformers() -> None:
    """Hide transformers' own progress bars and info logs; the harness reports progress itself."""
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def torch_dtype(name: str, device: str) -> Any:
    """``auto``: bfloat16 where ``device`` computes it natively (a bf16 GPU, a CPU with AVX-512 BF16/AMX)."""
    return api_torch_dtype(name, str(device))


def load_causal_lm(source: str, device: str, dtype: str, revision: str | None = None, trust_remote_code: bool = False,
                   gguf_file: str | None = None, label: str | None = None,
                   device_map: str | None = None) -> CausalLMHandle:  # fmt: skip
    """Load model + tokenizer from a hub id or local dir; turn every load failure into one clear message.

    ``device_map`` (e.g. "auto") spreads one model over every visible GPU in this process, for models
    larger than one GPU (generation after ``harness run --fit-only``); it is ignored inside a multi-process
    launch. There, under FSDP / DeepSpeed, the model stays on the CPU and accelerate places its shards,
    instead of every process copying the whole model onto its GPU.
    """
    import transformers

    quiet_transformers()
    label = label or source
    if source.startswith((".", "/", "~")) and not Path(source).expanduser().is_dir():
        raise InputError(f'model "{label}" could not be loaded: no such directory {source}')
    kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    if distributed.is_distributed():
        device_map = None  # a multi-process launch: the training engine places the model, not device_map
    load_kwargs = {"device_map": device_map} if device_map else {}
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
        module = transformers.AutoModelForCausalLM.from_pretrained(
            source, dtype=torch_dtype(dtype, device), **kwargs, **load_kwargs
        )
    except (OSError, ValueError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        local = Path(source).expanduser().exists()
        hint = (
            "check the directory holds a transformers model (config.json + weights)"
            if local
            else "a hub id needs network access, or a copy in the Hugging Face cache (HF_HUB_OFFLINE=1 uses only "
            "the cache); a local directory works offline"
        )
        raise InputError(f'model "{label}" could not be loaded: {first}; {hint}') from None
    if device_map:
        device = str(next(module.parameters()).device)  # inputs go where the embeddings are
    elif not sharded_launch():
        module.to(device)
    module.eval()
    return CausalLMHandle(module, TokenizerCodec(tokenizer), device=device)


def load_tokenizer_codec(source: str, revision: str | None = None, trust_remote_code: bool = False,
                         gguf_file: str | None = None) -> TokenizerCodec | None:  # fmt: skip
    """The codec of a model without its weights (the same tokenizer ``load_causal_lm`` gives), or None where it
    cannot be had cheaply and offline: then the full load reports what is wrong."""
    import transformers

    quiet_transformers()
    kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code, "local_files_only": True}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    try:
        return TokenizerCodec(transformers.AutoTokenizer.from_pretrained(source, **kwargs))
    except Exception:  # no such folder, no network, no cached copy: the full load says which
        return None


#: weight files are fingerprinted by size and sampled content (hashing 140 GB of a 70B model would take minutes)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")
SAMPLE_BYTES = 1 << 20


def _file_digest(path: Path) -> bytes:
    size = path.stat().st_size
    if path.suffix not in WEIGHT_SUFFIXES or size <= 3 * SAMPLE_BYTES:
        return hashlib.sha256(path.read_bytes()).digest()
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:  # head (the safetensors header: names, dtypes, shapes), middle and tail
        for offset in (0, size // 2, size - SAMPLE_BYTES):
            handle.seek(offset)
            digest.update(handle.read(SAMPLE_BYTES))
    return digest.digest()


def folder_fingerprint(source: str) -> str:
    """For a local directory, a hash of every file: configs and tokenizer files whole, weight files by size
    and three sampled MiB (a re-saved fit of the same shape still changes it); "" if ``source`` is no directory."""
    folder = Path(source).expanduser()
    if not folder.is_dir():
        return ""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + _file_digest(path))
    return digest.hexdigest()[:20]


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps downloaded repos (the same environment variables it reads)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"


def hub_commit(repo_id: str, revision: str | None) -> str | None:
    """The commit a hub revision names: from the local hub cache (offline), else asked of the hub; None if unknown."""
    wanted = revision or "main"
    if len(wanted) == 40 and all(c in "0123456789abcdef" for c in wanted):
        return wanted
    ref = hub_cache_dir() / f"models--{repo_id.replace('/', '--')}" / "refs" / wanted
    if ref.is_file():
        return ref.read_text(encoding="utf-8").strip()
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return None
    try:
        from huggingface_hub import HfApi

        return HfApi().model_info(repo_id, revision=wanted, timeout=10).sha
    except Exception:  # no network, no such repo: the load itself reports it clearly
        return None


def model_fingerprint(source: str, revision: str | None = None) -> str:
    """Identity of a model's files: a local directory's :func:`folder_fingerprint`, or a hub id's commit and
    the fingerprint of that snapshot's files where they are in the local hub cache."""
    local = folder_fingerprint(source)
    if local:
        return local
    commit = hub_commit(source, revision)
    if commit is None:
        return f"hub:{source}@{revision or 'main'}:unresolved"
    snapshot = hub_cache_dir() / f"models--{source.replace('/', '--')}" / "snapshots" / commit
    return f"hub:{source}@{commit}:{folder_fingerprint(str(snapshot))}"


def resolved_dtype_name(name: str, device: str) -> str:
    """The dtype ``name`` resolves to on ``device`` ("auto" → bfloat16 where it is native, else float32)."""
    return str(torch_dtype(name, device)).removeprefix("torch.")


def sharded_launch() -> bool:
    """An FSDP or DeepSpeed launch: accelerate shards the model, so the loader must not copy it onto a GPU."""
    return distributed.is_distributed() and distributed.sharding() is not None
