"""The one training loop behind every training recipe, readable top to bottom.

Per update: take the next ``batch_size`` indices of this epoch's seeded permutation, give each process
its equal share, run it in micro-batches whose losses are weighted so the accumulated gradient equals
the full batch's mean-loss gradient (every sequence has the same length), then one optimizer step.
An incomplete last batch of an epoch is dropped. Curve points are logged before training and every
``curve_every`` epochs (``curve_schedule: log``: at log-spaced update steps instead); checkpoints make
a killed fit continue bit-identically (see checkpoint.py).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Callable

from harness.api import FitContext, FitOutcome, InputError, ModelHandle, derive_seed, distributed, log, resolve_precision

from harness_plugins.recipes._checkpoint import Checkpointer, LoopState
from harness_plugins.recipes._curves import CurveMonitor, curve_steps
from harness_plugins.recipes._engine import make_engine


@dataclass
class LoopOptions:
    """What distinguishes one recipe's loop from another's."""

    #: multiplier of ``lr`` at (update index, total updates): constant for the paper's recipe
    lr_scale: Callable[[int, int], float] = lambda step, total: 1.0
    #: stop after this many curve points without a new held-out-loss minimum and restore the best weights
    patience: int | None = None


def disable_dropout(module: Any) -> None:
    """Set every dropout probability to 0 (modules and config), as the paper's code does."""
    import torch

    for sub in module.modules():
        if isinstance(sub, torch.nn.Dropout):
            sub.p = 0.0
        for attr in ("attention_dropout", "dropout", "hidden_dropout"):
            if isinstance(getattr(sub, attr, None), float):
                setattr(sub, attr, 0.0)
    config = getattr(module, "config", None)
    if config is not None:
        for attr in ("attention_dropout", "hidden_dropout", "embd_pdrop", "resid_pdrop", "attn_pdrop", "dropout"):
            if isinstance(getattr(config, attr, None), float):
                setattr(config, attr, 0.0)


def keep_master_weights_fp32(module: Any, precision: str = "fp32") -> dict[str, Any]:
    """Train in fp32 even if the model was loaded in bf16/fp16 (e.g. a loader's ``dtype: auto`` on a GPU).

    At the paper's lr of 1e-6, Adam's updates are far below bf16's resolution around typical weight
    values, so a half-precision fit would leave most weights unchanged. ``precision: bf16`` still runs the
    arithmetic in bf16 (autocast); only the weights and optimizer state are fp32 *during training*. Returns
    the loader's dtype of every parameter and buffer, for :func:`restore_loader_dtypes` after the fit: the
    fitted model generates and is stored in its loader's dtype, exactly as it is when loaded from the cache.
    """
    import torch

    dtypes = {name: t.dtype for name, t in list(module.named_parameters()) + list(module.named_buffers())}
    half = [p for p in module.parameters() if p.requires_grad and p.dtype in (torch.float16, torch.bfloat16)]
    if half:
        if precision == "fp32":  # likely unintended: fp32 arithmetic on a model loaded in half precision
            log.warning(
                "the model's trainable weights are %s: training them as float32 master weights (use precision: bf16 "
                "for bf16 arithmetic); the fitted model is cast back to %s for generation and storage",
                half[0].dtype, half[0].dtype,
            )  # fmt: skip
        else:  # the intended mixed-precision setup (e.g. dtype: auto with precision: auto)
            log.info("training float32 master weights with %s autocast; the fit is cast back to %s", precision, half[0].dtype)
        module.float()
    return dtypes


def restore_loader_dtypes(module: Any, dtypes: dict[str, Any]) -> None:
    """Cast every parameter and buffer back to the dtype it was loaded in (in place, round to nearest)."""
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        wanted = dtypes.get(name)
        if wanted is not None and tensor.dtype != wanted:
            tensor.data = tensor.data.to(wanted)


def epoch_order(seed: int, epoch: int, count: int) -> list[int]:
    """The data order of one epoch: a permutation derived from (seed, epoch) alone, so resuming needs no state."""
    import torch

    generator = torch.Generator().manual_seed(derive_seed(seed, "epoch-order", epoch))
    return torch.randperm(count, generator=generator).tolist()


def plan_updates(config: dict[str, Any], samples: int, world: int) -> tuple[int, int, int]:
    """(updates per epoch, total updates, micro-batch size); raise InputError for shapes that cannot work."""
    batch = config["batch_size"]
    per_epoch = samples // batch
    if per_epoch == 0:
        raise InputError(f"batch_size {batch} is larger than the {samples} training sequences")
    if batch % world:
        raise InputError(f"batch_size {batch} does not split evenly over {world} processes")
    per_rank = batch // world
    micro = config.get("micro_batch_size") or per_rank
    if per_rank % micro:
        raise InputError(f"micro_batch_size {micro} does not divide the per-process batch {per_rank}")
    if micro < per_rank and distributed.sharding() == "deepspeed":
        # DeepSpeed's engine steps its optimizer at every backward unless told its accumulation steps;
        # the loop's micro-batches would each take an update and silently change the recipe
        raise InputError(
            f"micro_batch_size {micro} under DeepSpeed: accumulating {per_rank // micro} micro-batches per update is "
            "not supported there yet (DeepSpeed would step the optimizer on each); set micro_batch_size: 0 "
            "(the whole per-process batch at once) or launch with FSDP / DDP"
        )
    return per_epoch, config.get("updates") or per_epoch * config["epochs"], micro


def make_optimizer(config: dict[str, Any], parameters: list[Any]) -> Any:
    import torch

    cls = torch.optim.Adam if config["optimizer"] == "adam" else torch.optim.AdamW
    return cls(parameters, lr=config["lr"], weight_decay=config["weight_decay"])


def train(handle: ModelHandle, sequences: list[list[int]], ctx: FitContext, config: dict[str, Any],
          options: LoopOptions | None = None) -> FitOutcome:  # fmt: skip
    """Fit ``handle.module`` in place; return what the fit record keeps (updates, early stop, best step)."""
    import torch

    options = options or LoopOptions()
    module = handle.module
    torch.manual_seed(ctx.seed)
    if not config["dropout"]:
        disable_dropout(module)
    if config["gradient_checkpointing"]:
        module.gradient_checkpointing_enable()
    precision = resolve_precision(config["precision"], str(handle.device))  # "auto" decided once, here
    loader_dtypes: dict[str, Any] = {}
    if distributed.sharding() != "deepspeed":  # DeepSpeed keeps fp32 master weights itself
        loader_dtypes = keep_master_weights_fp32(module, precision)
    engine = make_engine(precision, handle.device)
    per_epoch, total, micro = plan_updates(config, len(sequences), engine.world)
    per_rank = config["batch_size"] // engine.world
    optimizer = make_optimizer(config, [p for p in module.parameters() if p.requires_grad])
    prepared, optimizer = engine.prepare(module, optimizer)
    device = next(prepared.parameters()).device
    data = torch.tensor(sequences, dtype=torch.long)
    monitor = CurveMonitor(ctx.heldout, config)
    checkpoints = Checkpointer(ctx.work_dir, config["checkpoint_every"], config["checkpoint_minutes"], engine)
    shuffle_seed = config["shuffle_seed"] if config["shuffle_seed"] >= 0 else ctx.seed
    curve_every = config["curve_every"]
    log_steps = curve_steps(config, total)  # None: a point every curve_every epochs
    measure = bool(curve_every) or log_steps is not None

    best_weights: dict | None = None
    restored = checkpoints.restore(prepared, optimizer)
    resumed_from = 0
    if restored is not None:
        state, best_weights = restored
        resumed_from = state.step
        for row in state.curves:
            ctx.curve(row)
    else:
        state = LoopState()

    def log_point(row: dict[str, float]) -> None:
        nonlocal best_weights
        if measure:
            row.update(monitor.point(handle, prepared))
        if options.patience is not None and "heldout_loss" in row:
            if state.best_loss is None or row["heldout_loss"] < state.best_loss:
                state.best_loss, state.best_step, state.evals_since_best = row["heldout_loss"], state.step, 0
                weights = engine.unwrap(prepared).state_dict()
                best_weights = {k: v.detach().to("cpu", copy=True) for k, v in weights.items()}
            else:
                state.evals_since_best += 1
                state.stopped_early = state.evals_since_best >= options.patience
        state.curves.append(row)
        ctx.curve(row)

    try:
        if restored is None and measure and ctx.heldout:
            log_point({"step": 0, "epoch": 0.0})  # the starting point of the held-out curves
        prepared.train()
        last_info: dict[str, float] = {}
        while state.step < total and not state.stopped_early:
            epoch, position = divmod(state.step, per_epoch)
            order = epoch_order(shuffle_seed, epoch, len(sequences))
            batch_ids = order[position * config["batch_size"] : (position + 1) * config["batch_size"]]
            mine = batch_ids[engine.rank * per_rank : (engine.rank + 1) * per_rank]
            for group in optimizer.param_groups:
                group["lr"] = config["lr"] * options.lr_scale(state.step, total)
            loss_value = 0.0
            starts = list(range(0, per_rank, micro))
            for index, start in enumerate(starts):
                batch = data[mine[start : start + micro]].to(device)
                weight = len(batch) / per_rank
                sync = contextlib.nullcontext() if index == len(starts) - 1 else engine.no_sync(prepared)
                with sync:
                    with engine.autocast():
                        loss = prepared(input_ids=batch, labels=batch).loss
                    engine.backward(loss * weight)
                loss_value += float(loss.detach()) * weight
            engine.step(optimizer)
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            state.epoch_losses.append(engine.mean(loss_value))
            ctx.progress(state.step, total, {"epoch": epoch + 1, "loss": state.epoch_losses[-1], **last_info})
            if log_steps is not None:  # curve_schedule: log: a point at each log-spaced step, none at epoch ends
                if state.step in log_steps:
                    row = {"step": state.step, "epoch": round(state.step / per_epoch, 4),
                           "train_loss": sum(state.epoch_losses) / len(state.epoch_losses)}  # fmt: skip
                    state.epoch_losses = []
                    log_point(row)
                    prepared.train()
                    last_info = {k: v for k, v in row.items() if k in ("heldout_loss", "greedy_ttr")}
            elif state.step % per_epoch == 0 or state.step == total:
                epochs_done = math.ceil(state.step / per_epoch)
                row = {"step": state.step, "epoch": round(state.step / per_epoch, 4),
                       "train_loss": sum(state.epoch_losses) / len(state.epoch_losses)}  # fmt: skip
                state.epoch_losses = []
                if curve_every and (epochs_done % curve_every == 0 or state.step == total):
                    log_point(row)
                    prepared.train()
                else:
                    state.curves.append(row)
                    ctx.curve(row)
                last_info = {k: v for k, v in row.items() if k in ("heldout_loss", "greedy_ttr")}
            if checkpoints.due(state.step, total) and not state.stopped_early:
                checkpoints.save(state, prepared, optimizer, best_weights)
        if options.patience is not None and best_weights is not None:
            engine.unwrap(prepared).load_state_dict(best_weights)
        engine.finish(handle, prepared)
        restore_loader_dtypes(handle.module, loader_dtypes)
        if handle.gathered_state is not None:  # a sharded fit's gathered weights are stored in the loader's dtypes too
            handle.gathered_state = {n: t.to(loader_dtypes.get(n, t.dtype)) for n, t in handle.gathered_state.items()}
        checkpoints.clear()
    finally:
        handle.module.eval()
        optimizer.zero_grad(set_to_none=True)
        if config["gradient_checkpointing"]:
            handle.module.gradient_checkpointing_disable()
    facts: dict[str, Any] = {
        "updates": state.step, "planned_updates": total, "world_size": engine.world, "resumed_from_update": resumed_from,
    }  # fmt: skip
    if options.patience is None:
        return FitOutcome(steps=state.step, facts=facts)
    facts |= {"best_step": state.best_step, "best_heldout_loss": state.best_loss, "stopped_early": state.stopped_early}
    return FitOutcome(steps=state.step, selected_step=state.best_step, facts=facts)
