"""Fitted weights as one safetensors file: written from the module or a sharded fit's gathered state, read back
tensor by tensor onto each parameter's own device. Shared by every bundled handle (and ``harness.testing``'s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import InputError


def save_weights_file(handle: Any, path: Path) -> None:
    """Write ``handle``'s weights to ``path``: its ``gathered_state`` after a sharded fit (never the shards), else
    the module's tensors, one name per storage (tied embeddings once)."""
    from safetensors.torch import save_file, save_model

    path.parent.mkdir(parents=True, exist_ok=True)
    if getattr(handle, "gathered_state", None) is not None:
        state = {name: tensor.detach().contiguous().cpu() for name, tensor in handle.gathered_state.items()}
        save_file(dedupe_shared(state), str(path))
        return
    save_model(handle.module, str(path))


def dedupe_shared(state: dict[str, Any]) -> dict[str, Any]:
    """The state without second names of one storage (tied embeddings), which safetensors refuses to write."""
    seen: dict[tuple[int, int], str] = {}
    out = {}
    for name, tensor in state.items():
        where = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if where in seen and tensor.numel() > 0:
            continue
        seen[where] = name
        out[name] = tensor
    return out


def load_weights_file(module: Any, path: Path) -> None:
    """Copy a stored fit into ``module`` one tensor at a time, each straight onto its parameter's device.

    A module spread by a ``device_map`` keeps its placement, and no second full copy of the weights is ever
    built (only the tensor being copied is in memory besides the module): the path a 70B fit takes.
    Tied parameters (one tensor under two names) may be stored under either name. Every tensor of the module
    must be written, and the file may hold no name the module lacks.
    """
    import torch
    from safetensors import safe_open

    targets = module.state_dict(keep_vars=True)
    written: set[int] = set()
    with torch.no_grad(), safe_open(str(path), framework="pt", device="cpu") as stored:
        for name in stored.keys():
            target = targets.get(name)
            if target is None:
                raise InputError(f"stored fit {path} holds {name!r}, which the model does not have")
            if target.device.type == "meta":
                raise InputError(f"cannot load the stored fit into {name!r}: it is offloaded (meta device); use a device_map without disk offload")
            tensor = stored.get_tensor(name)
            if tuple(tensor.shape) != tuple(target.shape):
                raise InputError(f"stored fit {path}: {name!r} has shape {tuple(tensor.shape)}, the model {tuple(target.shape)}")
            target.data.copy_(tensor)
            written.add(target.data_ptr())
            del tensor
    missing = [name for name, t in targets.items() if t.data_ptr() not in written and t.numel() > 0]
    if missing:
        raise InputError(f"stored fit {path} lacks {len(missing)} tensors of the model, e.g. {missing[0]!r}")


