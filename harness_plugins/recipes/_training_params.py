"""The parameter schema every training recipe shares, with per-recipe defaults.

Grouped as: the optimisation itself (what the paper specifies), how it is computed (precision,
micro-batches, gradient checkpointing: these change speed and memory, not the maths beyond rounding),
the curve, and checkpoints. All are recorded in the manifest; the curve and checkpoint params are marked
``affects_result=False`` (they decide what is logged and when state is saved, not the weights), so they stay
out of the fit's stage key: changing them reuses a stored fit, and a killed fit resumes from its checkpoint.
A recipe that selects weights on curve points (``finetune``'s early stopping) keeps ``curve_every`` in.
"""

from __future__ import annotations

from typing import Any

from harness.api import Param, Recipe, resolve_precision

from harness_plugins.recipes._engine import PRECISIONS


def optimisation_params(
    lr: float, epochs: int, optimizer: str = "adam", weight_decay: float = 0.0, batch_size: int = 8
) -> tuple[Param, ...]:
    return (
        Param("lr", float, default=lr, min=0.0, exclusive_min=True, help="peak learning rate"),
        Param("batch_size", int, default=batch_size, min=1, help="sequences per update (the effective batch)"),
        Param("epochs", int, default=epochs, min=1, help="passes over the training sequences"),
        Param("updates", int, default=0, min=0,
              help="total updates; 0 = epochs × (samples // batch_size). Set it to hold updates fixed across data sizes"),
        Param("optimizer", str, default=optimizer, choices=("adam", "adamw"), help="adam = the paper"),
        Param("weight_decay", float, default=weight_decay, min=0.0, help="0 in the paper (the official code's AdamW: 0.01)"),
        Param("dropout", bool, default=False, help="keep the model's dropout on (the paper turns it off)"),
        Param("shuffle_seed", int, default=-1, min=-1,
              help="seed of the per-epoch data order; -1 = derived from the run seed (vary it for the shuffle ablation)"),
    )  # fmt: skip


COMPUTE_PARAMS: tuple[Param, ...] = (
    Param("precision", str, default="fp32", choices=PRECISIONS,
          help="fp32 (the paper), bf16/fp16 autocast, or auto: bf16 where the device computes it natively, else fp32"),
    Param("micro_batch_size", int, default=0, min=0,
          help="sequences per forward pass; 0 = the whole per-process batch. Gradients accumulate to batch_size"),
    Param("gradient_checkpointing", bool, default=False, help="recompute activations in backward to save memory"),
)  # fmt: skip

def curve_params(selects_weights: bool = False) -> tuple[Param, ...]:
    """The curve's cadence and greedy probe; ``selects_weights``: curve points decide the weights (early stopping)."""
    return (
        Param("curve_every", int, default=1, min=0, help="log a curve point every N epochs (and before training); 0 = off",
              affects_result=selects_weights),
        Param("curve_schedule", str, default="epochs", choices=("epochs", "log"),
              help="epochs: a point every curve_every epochs; log: at curve_points log-spaced update steps (and before training)",
              affects_result=selects_weights),
        Param("curve_points", int, default=20, min=1,
              help="with curve_schedule: log, how many steps log-spaced from 1 to the last update (deduplicated)",
              affects_result=selects_weights),
        Param("curve_contexts", int, default=8, min=0, help="held-out sequences continued greedily for greedy_ttr; 0 = skip",
              affects_result=False),
        Param("curve_context_tokens", int, default=32, min=1, help="context length of those continuations",
              affects_result=False),
        Param("curve_new_tokens", int, default=96, min=0, help="tokens generated per continuation; 0 = skip greedy_ttr",
              affects_result=False),
    )  # fmt: skip


CURVE_PARAMS: tuple[Param, ...] = curve_params()

CHECKPOINT_PARAMS: tuple[Param, ...] = (
    Param("checkpoint_every", int, default=0, min=0, help="save a resumable checkpoint every N updates; 0 = off",
          affects_result=False),
    Param("checkpoint_minutes", float, default=15.0, min=0.0,
          help="also save one when this much wall time passed since the last; 0 = off", affects_result=False),
)  # fmt: skip


def training_params(
    lr: float, epochs: int, optimizer: str = "adam", weight_decay: float = 0.0, batch_size: int = 8,
    curve_selects_weights: bool = False,
) -> tuple[Param, ...]:  # fmt: skip
    """The whole shared schema with this recipe's optimisation defaults."""
    curve = curve_params(curve_selects_weights)
    return optimisation_params(lr, epochs, optimizer, weight_decay, batch_size) + COMPUTE_PARAMS + curve + CHECKPOINT_PARAMS


class BatchedRecipe(Recipe):
    """A recipe on the shared training loop: one batch must fit in an epoch of its training set."""

    def resolved_settings(self, device: str) -> dict[str, str]:
        return {"precision": resolve_precision(self.option("precision"), device)}

    @classmethod
    def config_problems(cls, params: dict[str, Any], train: dict[str, Any] | None = None) -> list[tuple[str, str]]:
        batch = params.get("batch_size")
        if train and isinstance(batch, int) and batch > train["samples"]:
            return [("batch_size", f"{batch} is larger than train.samples {train['samples']}: not one full batch per epoch")]
        if params.get("curve_schedule") == "log" and params.get("curve_every") == 0:
            return [("curve_schedule", "log logs curve points, but curve_every: 0 turns the curve off: drop one of them")]
        return []
