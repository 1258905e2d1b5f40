"""The shared training loop: curves, checkpoints and resume, micro-batches, fixed updates, shuffle seeds,
and the recipes built on it (finetune with early stopping, lora, pretrain), on the tiny Llama."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from conftest import tiny_module
from harness.api import FitContext, FitOutcome
from harness.errors import InputError
from harness.params import resolve_params
from harness_plugins.recipes._checkpoint import CHECKPOINT
from harness_plugins.recipes._curves import heldout_loss_and_entropy
from harness_plugins.recipes.finetune import EarlyStoppedFinetune
from harness_plugins.recipes.hyperfit import Hyperfit
from harness_plugins.recipes.lora import LoRA, late_layers
from harness_plugins.recipes.pretrain import Pretrain, warmup_cosine
from harness_plugins.recipes._trainer import epoch_order, plan_updates

torch = pytest.importorskip("torch")


def sequences(count: int = 12, tokens: int = 24, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(2, 258) for _ in range(tokens)] for _ in range(count)]


def build(cls, **given):
    config, problems = resolve_params(cls.params, given)
    assert not problems.items, problems.items
    return cls(config)


def new_handle(seed: int = 0, layers: int = 2):
    tiny = tiny_module()
    return tiny.TinyHandle(tiny.tiny_llama(seed, layers=layers), tiny.ByteCodec(), device="cpu")


def weights(module) -> dict[str, "torch.Tensor"]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Stop(Exception):
    """Raised from the progress callback to simulate a crash at a given update."""


def context(work: Path, curve: list, heldout=None, seed: int = 1, stop_at: int | None = None) -> FitContext:
    def progress(done, total, info):
        if stop_at is not None and done == stop_at:
            raise Stop

    return FitContext(seed=seed, work_dir=work, progress=progress, curve=curve.append, heldout=heldout or [])


QUICK = {"lr": 3e-3, "batch_size": 4, "epochs": 4, "curve_new_tokens": 8, "curve_contexts": 2, "curve_context_tokens": 8}


# --------------------------------------------------------------------------- curves


def test_curve_has_a_starting_point_and_heldout_columns(tmp_path: Path):
    handle, curve = new_handle(), []
    heldout = sequences(4, seed=99)
    outcome = build(Hyperfit, **QUICK).fit(handle, sequences(), context(tmp_path, curve, heldout))
    assert [row["step"] for row in curve] == [0, 3, 6, 9, 12]
    assert set(curve[0]) == {"step", "epoch", "heldout_loss", "heldout_entropy", "greedy_ttr"}
    assert all({"train_loss", "heldout_loss", "heldout_entropy", "greedy_ttr"} <= set(r) for r in curve[1:])
    assert curve[-1]["train_loss"] < curve[1]["train_loss"] - 0.5
    assert all(0.0 < r["greedy_ttr"] <= 1.0 for r in curve)
    # the last logged held-out loss is exactly what the fitted weights give
    loss, entropy = heldout_loss_and_entropy(handle.module, heldout, batch_size=4)
    assert curve[-1]["heldout_loss"] == pytest.approx(loss, rel=1e-6)
    assert curve[-1]["heldout_entropy"] == pytest.approx(entropy, rel=1e-6)
    assert isinstance(outcome, FitOutcome) and outcome.steps == 12 and outcome.selected_step is None
    assert outcome.to_json() == {"updates": 12, "planned_updates": 12, "world_size": 1, "resumed_from_update": 0, "steps": 12}
    assert not handle.module.training


def test_heldout_loss_rises_while_training_loss_falls(tmp_path: Path):
    """The paper's Figure 2 in miniature: memorising random sequences makes other sequences less likely."""
    handle, curve = new_handle(), []
    build(Hyperfit, **(QUICK | {"lr": 1e-2, "epochs": 30, "curve_every": 10})).fit(
        handle, sequences(8), context(tmp_path, curve, sequences(4, seed=5))
    )
    assert [row["step"] for row in curve if "heldout_loss" in row] == [0, 20, 40, 60]
    assert curve[-1]["train_loss"] < 0.2
    assert curve[-1]["heldout_loss"] > curve[0]["heldout_loss"]
    assert curve[-1]["heldout_entropy"] < curve[0]["heldout_entropy"]


def test_curve_every_zero_logs_training_loss_only(tmp_path: Path):
    curve: list = []
    build(Hyperfit, **(QUICK | {"curve_every": 0})).fit(new_handle(), sequences(), context(tmp_path, curve, sequences(2, seed=3)))
    assert [set(r) for r in curve] == [{"step", "epoch", "train_loss"}] * 4


# --------------------------------------------------------------------------- checkpoints


def test_killed_fit_resumes_bit_identical(tmp_path: Path):
    params = QUICK | {"checkpoint_every": 4, "checkpoint_minutes": 0.0}
    heldout = sequences(3, seed=42)
    reference, ref_curve = new_handle(), []
    build(Hyperfit, **params).fit(reference, sequences(), context(tmp_path / "ref", ref_curve, heldout))

    work, curve = tmp_path / "work", []
    with pytest.raises(Stop):
        build(Hyperfit, **params).fit(new_handle(), sequences(), context(work, curve, heldout, stop_at=10))
    assert (work / CHECKPOINT / "loop.json").is_file(), "a checkpoint from update 8 is on disk"

    resumed, resumed_curve = new_handle(), []
    progress: list[int] = []
    ctx = context(work, resumed_curve, heldout)
    ctx.progress = lambda done, total, info: progress.append(done)
    build(Hyperfit, **params).fit(resumed, sequences(), ctx)
    assert progress == [9, 10, 11, 12], "continues after the update-8 checkpoint, not from scratch"
    assert same(weights(resumed.module), weights(reference.module)), "bit-identical to the uninterrupted fit"
    assert resumed_curve == ref_curve
    assert not (work / CHECKPOINT).exists(), "a finished fit removes its checkpoint"


def test_time_based_checkpoint(tmp_path: Path):
    work = tmp_path / "w"
    with pytest.raises(Stop):
        build(Hyperfit, **(QUICK | {"checkpoint_minutes": 1e-9})).fit(new_handle(), sequences(), context(work, [], stop_at=2))
    assert (work / CHECKPOINT / "loop.json").is_file()


# --------------------------------------------------------------------------- batch arithmetic


def test_micro_batches_accumulate_to_the_full_batch(tmp_path: Path):
    full, micro = new_handle(), new_handle()
    build(Hyperfit, **(QUICK | {"curve_every": 0})).fit(full, sequences(), context(tmp_path / "a", []))
    build(Hyperfit, **(QUICK | {"curve_every": 0, "micro_batch_size": 1})).fit(micro, sequences(), context(tmp_path / "b", []))
    a, b = weights(full.module), weights(micro.module)
    assert all(torch.allclose(a[k], b[k], atol=2e-5, rtol=1e-4) for k in a)


def test_updates_fix_the_number_of_steps(tmp_path: Path):
    curve: list = []
    outcome = build(Hyperfit, **(QUICK | {"updates": 7, "curve_every": 0})).fit(new_handle(), sequences(), context(tmp_path, curve))
    assert outcome.steps == outcome.facts["updates"] == 7
    assert [r["step"] for r in curve] == [3, 6, 7]
    assert curve[-1]["epoch"] == pytest.approx(7 / 3, abs=1e-3)


def test_shuffle_seed_alone_decides_the_data_order(tmp_path: Path):
    params = QUICK | {"curve_every": 0, "epochs": 2}
    a, b, c = new_handle(), new_handle(), new_handle()
    build(Hyperfit, **params, shuffle_seed=5).fit(a, sequences(), context(tmp_path / "a", [], seed=1))
    build(Hyperfit, **params, shuffle_seed=5).fit(b, sequences(), context(tmp_path / "b", [], seed=2))
    build(Hyperfit, **params, shuffle_seed=6).fit(c, sequences(), context(tmp_path / "c", [], seed=1))
    assert same(weights(a.module), weights(b.module))
    assert not same(weights(a.module), weights(c.module))
    assert epoch_order(5, 0, 12) != epoch_order(5, 1, 12) and sorted(epoch_order(5, 0, 12)) == list(range(12))


def test_impossible_batch_shapes_are_input_errors():
    base = {"batch_size": 8, "epochs": 1, "updates": 0, "micro_batch_size": 3}
    with pytest.raises(InputError, match="micro_batch_size 3"):
        plan_updates(base, samples=16, world=1)
    with pytest.raises(InputError, match="over 3 processes"):
        plan_updates(base | {"micro_batch_size": 0}, samples=16, world=3)
    with pytest.raises(InputError, match="larger than the 4"):
        plan_updates(base | {"micro_batch_size": 0}, samples=4, world=1)
    assert plan_updates(base | {"micro_batch_size": 2}, samples=20, world=2) == (2, 2, 2)


def test_bf16_autocast_trains_on_cpu(tmp_path: Path):
    curve: list = []
    build(Hyperfit, **(QUICK | {"precision": "bf16", "curve_every": 0})).fit(new_handle(), sequences(), context(tmp_path, curve))
    assert curve[-1]["train_loss"] < curve[0]["train_loss"]


# --------------------------------------------------------------------------- finetune


def test_finetune_stops_at_the_heldout_minimum_and_restores_it(tmp_path: Path):
    handle, curve = new_handle(), []
    heldout = sequences(4, seed=77)
    outcome = build(EarlyStoppedFinetune, **(QUICK | {"epochs": 30, "curve_new_tokens": 0})).fit(
        handle, sequences(8), context(tmp_path, curve, heldout)
    )
    summary = outcome.to_json()
    assert summary["stopped_early"] is True
    assert summary["updates"] == outcome.steps < 60
    losses = {row["step"]: row["heldout_loss"] for row in curve}
    best = min(losses, key=losses.get)
    assert summary["best_step"] == outcome.selected_step == best
    assert summary["best_heldout_loss"] == pytest.approx(losses[best])
    assert heldout_loss_and_entropy(handle.module, heldout, 4)[0] == pytest.approx(losses[best], rel=1e-6)


def test_finetune_needs_heldout(tmp_path: Path):
    with pytest.raises(InputError, match="train.heldout"):
        build(EarlyStoppedFinetune, **QUICK).fit(new_handle(), sequences(), context(tmp_path, []))


# --------------------------------------------------------------------------- lora


def test_late_layer_lora_changes_only_late_blocks_and_merges(tmp_path: Path):
    pytest.importorskip("peft")
    handle = new_handle(layers=4)
    before = weights(handle.module)
    summary = build(LoRA, **(QUICK | {"lr": 1e-2, "rank": 2, "layers": "late", "late_fraction": 0.5, "curve_every": 0})).fit(
        handle, sequences(), context(tmp_path, [])
    ).facts
    assert summary["adapted_layers"] == [2, 3]
    assert type(handle.module).__name__ == "LlamaForCausalLM", "merged back into a plain model"
    after = weights(handle.module)
    assert after.keys() == before.keys(), "no adapter tensors left behind"
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".layers.2." in k or ".layers.3." in k for k in changed), changed
    assert not any(k.startswith("model.embed") or "lm_head" in k for k in changed)
    assert summary["trainable_parameters"] < sum(v.numel() for v in before.values()) / 10
    assert all(p.requires_grad for p in handle.module.parameters())


def test_late_layers():
    assert late_layers(30, 0.5) == list(range(15, 30))
    assert late_layers(4, 0.1) == [3]


# --------------------------------------------------------------------------- pretrain


def test_pretrain_reinitialises_then_learns(tmp_path: Path):
    handle, curve = new_handle(seed=3), []
    loaded = weights(handle.module)
    build(Pretrain, **(QUICK | {"epochs": 6, "curve_every": 0, "lr": 3e-3})).fit(handle, sequences(), context(tmp_path, curve))
    assert not same(loaded, weights(handle.module))
    assert curve[-1]["train_loss"] < curve[0]["train_loss"] - 0.3


def test_warmup_cosine_schedule():
    scale = warmup_cosine(0.1, 0.1)
    values = [scale(step, 100) for step in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert values[10] == pytest.approx(1.0)
    assert values[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 89 / 90)))
    assert all(b <= a for a, b in zip(values[10:], values[11:]))


def test_half_precision_weights_are_trained_in_fp32(tmp_path: Path, caplog, monkeypatch):
    """At lr 1e-6, Adam steps vanish in bf16 weights: the loop keeps fp32 master weights while it trains, then
    casts the fitted model back to the loader's dtype (one model, one dtype: it generates and is stored so)."""
    from harness_plugins.recipes import _trainer as trainer

    handle = new_handle()
    handle.module.to(torch.bfloat16)
    before = {k: v.float() for k, v in weights(handle.module).items()}
    masters: dict = {}
    real_restore = trainer.restore_loader_dtypes

    def spy(module, dtypes):
        masters.update({k: v.clone() for k, v in weights(module).items()})
        real_restore(module, dtypes)

    monkeypatch.setattr(trainer, "restore_loader_dtypes", spy)
    with caplog.at_level("WARNING", logger="harness"):
        build(Hyperfit, **(QUICK | {"lr": 1e-6, "epochs": 1, "curve_every": 0})).fit(handle, sequences(), context(tmp_path, []))
    assert "training them as float32 master weights" in caplog.text
    assert all(v.dtype == torch.float32 for v in masters.values() if v.is_floating_point())
    changed = sum(int((masters[k] != before[k]).sum()) for k in before)
    total = sum(v.numel() for v in before.values())
    assert changed > 0.5 * total, "most master weights moved, as in an fp32 fit"
    after = weights(handle.module)
    assert all(v.dtype == torch.bfloat16 for v in after.values() if v.is_floating_point())
    assert all(torch.equal(after[k], masters[k].to(torch.bfloat16)) for k in after)  # round to nearest, once


def test_progress_shows_the_latest_curve_values(tmp_path: Path):
    """The live progress line carries held-out loss and greedy TTR once the first epoch's point is logged."""
    infos: list[dict] = []
    ctx = context(tmp_path, [], sequences(3, seed=9))
    ctx.progress = lambda done, total, info: infos.append(dict(info))
    build(Hyperfit, **QUICK).fit(new_handle(), sequences(), ctx)
    assert "heldout_loss" not in infos[0] and {"epoch", "loss"} <= set(infos[0])
    assert {"heldout_loss", "greedy_ttr"} <= set(infos[-1])
