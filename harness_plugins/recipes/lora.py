"""``lora``: hyperfitting through low-rank adapters (peft), optionally on the late layers only.

The adapters are trained with the hyperfit loop (constant lr, Adam, wd 0, dropout off) and merged into
the base weights at the end, so the fitted model is a plain model again: decoders, metrics and the fit
cache see no difference. ``layers: late`` adapts only the last ``late_fraction`` of the transformer
blocks (the follow-up work's "late-stage LoRA"); ``last_n: N`` exactly the last N blocks. Needs ``pip install peft``.
"""

from __future__ import annotations

import math
from typing import Any

from harness.api import FitContext, FitOutcome, InputError, ModelHandle, Param

from harness_plugins.recipes._trainer import train
from harness_plugins.recipes._training_params import BatchedRecipe, training_params


def block_count(module: Any) -> int:
    config = module.config
    for attr in ("num_hidden_layers", "n_layer", "num_layers"):
        if isinstance(getattr(config, attr, None), int):
            return getattr(config, attr)
    raise InputError(f"lora: cannot tell how many layers {type(module).__name__} has (no num_hidden_layers/n_layer)")


def late_layers(total: int, fraction: float) -> list[int]:
    """Indices of the last ceil(fraction × total) blocks."""
    keep = max(1, math.ceil(fraction * total))
    return list(range(total - keep, total))


def block_linear_names(module: Any) -> list[str]:
    """Short names of the linear layers inside the transformer blocks (``q_proj``, ``c_attn``, ...).

    peft cannot combine ``"all-linear"`` with a layer selection, so late-layer LoRA spells the names out.
    Linear-like layers without a block index in their path (the output head) are left out.
    """
    import torch

    names: set[str] = set()
    for path, sub in module.named_modules():
        is_linear = isinstance(sub, torch.nn.Linear) or type(sub).__name__ == "Conv1D"  # GPT-2 style
        if is_linear and any(part.isdigit() for part in path.split(".")):
            names.add(path.rsplit(".", 1)[-1])
    return sorted(names)


class LoRA(BatchedRecipe):
    name = "lora"
    description = "Hyperfit through LoRA adapters (peft), all or only late layers; merged at the end."
    version = "1"
    requires_packages = ("peft",)
    trains = True
    train_defaults = {"samples": 2000, "tokens": 256}
    params = training_params(lr=1e-4, epochs=20) + (
        Param("rank", int, default=16, min=1, help="adapter rank r"),
        Param("alpha", float, default=32.0, min=0.0, exclusive_min=True, help="scaling numerator (scale = alpha / rank)"),
        Param("target_modules", (str, list), default="all-linear",
              help='module names to adapt, or "all-linear" (every linear layer except the output head)'),
        Param("layers", str, default="all", choices=("all", "late"), help="adapt every block, or only the late ones"),
        Param("late_fraction", float, default=0.5, min=0.0, exclusive_min=True, max=1.0,
              help="with layers: late, the share of blocks (from the top) that get adapters"),
        Param("last_n", int, default=0, min=0,
              help="adapt exactly the last N blocks (with layers: all); 0 = off: layers decides"),
    )  # fmt: skip

    @classmethod
    def config_problems(cls, params: dict[str, Any], train: dict[str, Any] | None = None) -> list[tuple[str, str]]:
        problems = super().config_problems(params, train)
        if params.get("last_n") and params.get("layers") == "late":
            problems.append(("last_n", f"{params['last_n']} and layers: late both choose the adapted blocks: "
                                       "keep layers: all with last_n, or drop last_n"))  # fmt: skip
        return problems

    def adapted_layers(self, module: Any) -> list[int] | None:
        """Block indices that get adapters (None: every block)."""
        cfg = self.config
        if cfg.get("last_n"):
            total = block_count(module)
            if cfg["last_n"] > total:
                raise InputError(f"lora: last_n {cfg['last_n']} is more than the model's {total} transformer blocks")
            return list(range(total - cfg["last_n"], total))
        return None if cfg["layers"] == "all" else late_layers(block_count(module), cfg["late_fraction"])

    def fit(self, handle: ModelHandle, sequences: list[list[int]], ctx: FitContext) -> FitOutcome:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError as exc:
            raise InputError("recipe lora needs peft: pip install 'hyperfit-harness[lora]'") from exc
        import torch

        cfg = self.config
        torch.manual_seed(ctx.seed)  # adapter init
        layers = self.adapted_layers(handle.module)
        targets = cfg["target_modules"]
        if layers is not None and targets == "all-linear":
            targets = block_linear_names(handle.module)
        lora_config = LoraConfig(
            r=cfg["rank"], lora_alpha=cfg["alpha"], lora_dropout=0.0, bias="none",
            target_modules=targets, layers_to_transform=layers,
        )  # fmt: skip
        base = handle.module
        peft_model = get_peft_model(base, lora_config)
        handle.module = peft_model
        try:
            outcome = train(handle, sequences, ctx, cfg)
            trainable = sum(p.numel() for p in handle.module.parameters() if p.requires_grad)
        finally:
            handle.module = handle.module.merge_and_unload() if hasattr(handle.module, "merge_and_unload") else base
            for parameter in handle.module.parameters():
                parameter.requires_grad_(True)
        outcome.facts |= {"trainable_parameters": trainable, "adapted_layers": layers or "all"}
        return outcome
