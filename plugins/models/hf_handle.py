"""The handle and codec shared by the Hugging Face causal-LM loaders.

Imports torch/transformers only inside functions so that registering the loaders stays cheap.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

from harness.api import Codec, ModelHandle
from harness.errors import InputError

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

    def fingerprint(self) -> str:
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        text = backend.to_str() if backend is not None else repr(sorted(self.tokenizer.get_vocab().items()))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


class CausalLMHandle(ModelHandle):
    """A transformers causal LM; fitted weights are stored as one safetensors file."""

    def save_weights(self, directory: Path) -> None:
        from safetensors.torch import save_model

        directory.mkdir(parents=True, exist_ok=True)
        save_model(self.module, str(directory / WEIGHTS_FILE))

    def load_weights(self, directory: Path) -> None:
        from safetensors.torch import load_model

        load_model(self.module, str(directory / WEIGHTS_FILE), device=str(self.device))


def quiet_transformers() -> None:
    """Hide transformers' own progress bars and info logs; the harness reports progress itself."""
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def torch_dtype(name: str, device: str) -> Any:
    import torch

    if name == "auto":
        if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, name)


def load_causal_lm(source: str, device: str, dtype: str, revision: str | None = None, trust_remote_code: bool = False,
                   gguf_file: str | None = None, label: str | None = None) -> CausalLMHandle:
    """Load model + tokenizer from a hub id or local dir; turn every load failure into one clear message."""
    import transformers

    quiet_transformers()
    label = label or source
    if source.startswith((".", "/", "~")) and not Path(source).expanduser().is_dir():
        raise InputError(f'model "{label}" could not be loaded: no such directory {source}')
    kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
        module = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype(dtype, device), **kwargs)
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
    module.to(device)
    module.eval()
    return CausalLMHandle(module, TokenizerCodec(tokenizer), device=device)
