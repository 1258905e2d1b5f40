"""Everything a result depends on besides the config: versions, git commit, hardware."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

#: the distribution whose own dependencies are the core packages (read from its installed metadata)
HARNESS_DISTRIBUTION = "hyperfit-harness"
#: the core dependencies when the distribution's metadata cannot be read (a source tree on sys.path)
FALLBACK_CORE = ("torch", "transformers", "accelerate", "safetensors", "pluggy", "filelock", "click", "pandas", "rich",
                 "pyyaml", "sacrebleu", "pillow", "numpy", "matplotlib")  # fmt: skip
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r";.*\bextra\s*==")


def core_packages() -> tuple[str, ...]:
    """The harness itself and its unconditional dependencies (not the extras: plugins declare those)."""
    try:
        requirements = md.requires(HARNESS_DISTRIBUTION) or []
    except md.PackageNotFoundError:
        return (HARNESS_DISTRIBUTION,) + FALLBACK_CORE
    names = [m.group(1) for r in requirements if not _EXTRA.search(r) and (m := _NAME.match(r))]
    return (HARNESS_DISTRIBUTION,) + tuple(names)


def _plugin_class(component: Any) -> Any:
    """The plugin class behind a config Component, a Registration or a class itself."""
    registration = getattr(component, "registration", component)
    return getattr(registration, "cls", registration)


def required_packages(components: Iterable[Any] = ()) -> list[str]:
    """Core packages, then each plugin's ``requires_packages`` in the order the components come, once each."""
    names = list(core_packages())
    for component in components:
        names.extend(getattr(_plugin_class(component), "requires_packages", ()))
    seen: set[str] = set()
    out = []
    for name in names:
        key = re.sub(r"[-_.]+", "-", name).lower()  # pip's name normalisation: PyYAML = pyyaml
        if key not in seen:
            seen.add(key)
            out.append(name)
    return out


def package_versions(components: Iterable[Any] = ()) -> dict[str, str | None]:
    """Installed version (None: not installed) of the core packages and of those the given plugins declare.

    ``components``: what a benchmark uses (config Components, Registrations or plugin classes), so the
    manifest names exactly the libraries that can have decided its numbers."""
    versions: dict[str, str | None] = {}
    for name in required_packages(components):
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
