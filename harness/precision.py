"""What ``dtype: auto`` and ``precision: auto`` resolve to on a device: bf16 where the hardware computes it.

On a GPU: bfloat16 when torch reports bf16 support (Ampere and later), else float32. On a CPU: bfloat16
when torch reports native bf16 instructions (AVX-512 BF16 or AMX tiles: the matmuls then run at several
times the float32 rate), else float32 — emulated bf16 is slower than float32, so it is never chosen.
The capability is read from what torch reports (:func:`cpu_native_bf16`, the one detection point, which
tests patch), never guessed from the CPU's name. The resolved choice is part of every stage key.
"""

from __future__ import annotations

from typing import Any

#: what ``precision:`` values a training recipe accepts and what "auto" may resolve to
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_native_bf16() -> bool:
    """True when this CPU has native bf16 arithmetic as torch reports it (AVX-512 BF16 or AMX)."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def native_bf16(device: str) -> bool:
    """Whether ``device`` ("cpu", "cuda", "cuda:N") computes bfloat16 natively."""
    import torch

    kind = str(device).split(":")[0]
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if kind == "cpu":
        return cpu_native_bf16()
    return False  # other backends (mps, …): stay in float32 unless asked


def resolve_dtype(name: str, device: str) -> str:
    """A model dtype name ("auto", "float32", "bfloat16", "float16") as it resolves on ``device``."""
    if name != "auto":
        return name
    return "bfloat16" if native_bf16(device) else "float32"


def resolve_precision(name: str, device: str) -> str:
    """A training precision ("auto", "fp32", "bf16", "fp16") as it resolves on ``device``."""
    if name != "auto":
        return name
    return "bf16" if native_bf16(device) else "fp32"


def torch_dtype(name: str, device: str) -> Any:
    """The torch dtype of a (possibly "auto") dtype name on ``device``."""
    import torch

    return getattr(torch, resolve_dtype(name, device))
