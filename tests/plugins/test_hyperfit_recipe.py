"""The ``hyperfit`` recipe: paper defaults, and what a fit really does on the tiny Llama."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from conftest import TINY_PLUGINS, tiny_benchmark, write_yaml, tiny_module
from harness.api import FitContext
from harness.config import load_benchmark
from harness.params import resolve_params
from harness.plugin_manager import PluginOptions, load_plugins
from harness_plugins.recipes.hyperfit import Hyperfit, disable_dropout
from harness_plugins.recipes.none import NoFit

torch = pytest.importorskip("torch")


def sequences(count: int = 10, tokens: int = 24, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(2, 258) for _ in range(tokens)] for _ in range(count)]


def recipe(**given) -> Hyperfit:
    config, problems = resolve_params(Hyperfit.params, given)
    assert not problems.items, problems.items
    return Hyperfit(config)


def new_handle():
    tiny = tiny_module()
    return tiny.TinyHandle(tiny.tiny_llama(), tiny.ByteCodec(), device="cpu")


class Log:
    def __init__(self):
        self.curve: list[dict] = []
        self.progress: list[tuple[int, int, dict]] = []

    def context(self, tmp_path: Path, seed: int = 1) -> FitContext:
        return FitContext(
            seed=seed,
            work_dir=tmp_path,
            progress=lambda done, total, info: self.progress.append((done, total, dict(info))),
            curve=self.curve.append,
        )


def fit(tmp_path: Path, seed: int = 1, data=None, **params):
    handle, log = new_handle(), Log()
    recipe(**params).fit(handle, data if data is not None else sequences(), log.context(tmp_path, seed))
    return handle, log


def weights(handle) -> dict[str, "torch.Tensor"]:
    return {k: v.detach().clone() for k, v in handle.module.state_dict().items()}


# --------------------------------------------------------------------------- defaults


PAPER = {"lr": 1e-6, "batch_size": 8, "epochs": 20, "optimizer": "adam", "weight_decay": 0.0, "dropout": False}


def test_paper_defaults():
    defaults = {p.name: p.default for p in Hyperfit.params}
    assert {k: defaults[k] for k in PAPER} == PAPER
    # everything else changes how the arithmetic runs or what is logged, not the paper's procedure
    assert defaults["updates"] == 0 and defaults["shuffle_seed"] == -1
    assert defaults["precision"] == "fp32" and defaults["micro_batch_size"] == 0
    assert defaults["gradient_checkpointing"] is False
    assert Hyperfit.train_defaults == {"samples": 2000, "tokens": 256}
    train = {p.name: p for p in Hyperfit.train_params()}  # the one schema validate checks and plugins lists
    assert list(train) == ["dataset", "samples", "tokens", "heldout"] and train["dataset"].required
    assert (train["samples"].default, train["tokens"].default, train["heldout"].default) == (2000, 256, 16)
    # 20 epochs over 2000 sequences in batches of 8: the paper's 5000 updates
    assert defaults["epochs"] * (Hyperfit.train_defaults["samples"] // defaults["batch_size"]) == 5000
    assert Hyperfit.trains is True and NoFit.trains is False
    config, problems = resolve_params(Hyperfit.params, {})
    assert not problems.items and config == defaults


def test_benchmark_fills_paper_defaults(tmp_path: Path):
    registry = load_plugins(PluginOptions(local_files=(str(TINY_PLUGINS),))).registry
    data = tiny_benchmark(tmp_path, recipes={"hf": {"plugin": "hyperfit", "train": {"dataset": "train-set"}}})
    bench = load_benchmark(write_yaml(tmp_path / "b.yaml", data), registry)
    comp = bench.recipes["hf"]
    assert comp.train == {"dataset": "train-set", "samples": 2000, "tokens": 256, "heldout": 16}
    assert {k: comp.params[k] for k in PAPER} == PAPER
    assert comp.params == {p.name: p.default for p in Hyperfit.params}, "every default is resolved (and recorded)"


# --------------------------------------------------------------------------- a real fit


def test_loss_decreases_and_curve_has_one_row_per_epoch(tmp_path: Path):
    _, log = fit(tmp_path, lr=3e-3, epochs=5, batch_size=4)
    assert [row["epoch"] for row in log.curve] == [1, 2, 3, 4, 5]
    assert all(set(row) == {"step", "epoch", "train_loss"} for row in log.curve)
    # 10 sequences, batch 4: 2 full batches per epoch, the incomplete last one dropped
    assert [row["step"] for row in log.curve] == [2, 4, 6, 8, 10]
    losses = [row["train_loss"] for row in log.curve]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < losses[0] - 0.2
    # progress: one call per update, with the total number of updates
    assert [p[0] for p in log.progress] == list(range(1, 11))
    assert {p[1] for p in log.progress} == {10}
    assert log.progress[-1][2]["epoch"] == 5


@pytest.mark.parametrize(("count", "batch", "epochs"), [(10, 4, 3), (8, 8, 2), (7, 3, 2)])
def test_number_of_optimizer_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count, batch, epochs):
    steps: list[int] = []
    batch_shapes: list[tuple] = []

    class CountingAdam(torch.optim.Adam):
        def step(self, *args, **kwargs):
            steps.append(1)
            return super().step(*args, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", CountingAdam)
    handle, log = new_handle(), Log()
    original_forward = handle.module.forward

    def forward(*args, **kwargs):
        batch_shapes.append(tuple(kwargs["input_ids"].shape))
        return original_forward(*args, **kwargs)

    monkeypatch.setattr(handle.module, "forward", forward)
    recipe(lr=1e-3, epochs=epochs, batch_size=batch).fit(handle, sequences(count, tokens=16), log.context(tmp_path))
    assert len(steps) == epochs * (count // batch)
    assert batch_shapes == [(batch, 16)] * len(steps), "every update sees one full batch"
    assert len(log.curve) == epochs


def test_optimizer_is_adam_without_weight_decay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    made: list[tuple[str, dict, list]] = []

    def spy(base):
        class Spy(base):
            def __init__(self, params, **kwargs):
                super().__init__(params, **kwargs)
                made.append((base.__name__, kwargs, [dict(g) for g in self.param_groups]))

        return Spy

    monkeypatch.setattr(torch.optim, "Adam", spy(torch.optim.Adam))
    monkeypatch.setattr(torch.optim, "AdamW", spy(torch.optim.AdamW))
    fit(tmp_path, lr=2e-4, epochs=1, batch_size=4)
    assert len(made) == 1
    name, kwargs, groups = made[0]
    assert name == "Adam"
    assert kwargs == {"lr": 2e-4, "weight_decay": 0.0}
    assert all(g["weight_decay"] == 0.0 and g["lr"] == 2e-4 for g in groups)
    # the comparison option really switches the optimiser and its decay
    fit(tmp_path, lr=2e-4, epochs=1, batch_size=4, optimizer="adamw", weight_decay=0.01)
    assert made[1][0] == "AdamW" and made[1][1]["weight_decay"] == 0.01


def test_learning_rate_is_constant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    lrs: list[float] = []

    class Watch(torch.optim.Adam):
        def step(self, *args, **kwargs):
            lrs.extend(g["lr"] for g in self.param_groups)
            return super().step(*args, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", Watch)
    fit(tmp_path, lr=5e-4, epochs=3, batch_size=4)
    assert lrs == [5e-4] * 6


# --------------------------------------------------------------------------- dropout


def add_dropout(handle, p: float = 0.3):
    module = handle.module
    module.extra_dropout = torch.nn.Dropout(p)  # registered as a submodule
    module.config.attention_dropout = p
    for layer in module.model.layers:
        layer.self_attn.attention_dropout = p
    return module


def test_dropout_is_off_after_fit(tmp_path: Path):
    handle = new_handle()
    module = add_dropout(handle)
    recipe(lr=1e-4, epochs=1, batch_size=4).fit(handle, sequences(), Log().context(tmp_path))
    assert module.extra_dropout.p == 0.0
    assert module.config.attention_dropout == 0.0
    assert all(layer.self_attn.attention_dropout == 0.0 for layer in module.model.layers)
    assert all(m.p == 0.0 for m in module.modules() if isinstance(m, torch.nn.Dropout))
    assert not module.training, "the fitted model is left in eval mode"


def test_dropout_true_keeps_the_models_dropout(tmp_path: Path):
    handle = new_handle()
    module = add_dropout(handle, 0.25)
    recipe(lr=1e-4, epochs=1, batch_size=4, dropout=True).fit(handle, sequences(), Log().context(tmp_path))
    assert module.extra_dropout.p == 0.25
    assert module.config.attention_dropout == 0.25


def test_disable_dropout_on_a_config_without_dropout_fields():
    module = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    disable_dropout(module)
    assert module[1].p == 0.0


# --------------------------------------------------------------------------- determinism


def test_same_seed_bit_identical_weights_different_seed_differs(tmp_path: Path):
    params = {"lr": 1e-3, "epochs": 3, "batch_size": 4}
    a, log_a = fit(tmp_path, seed=7, **params)
    b, log_b = fit(tmp_path, seed=7, **params)
    c, _ = fit(tmp_path, seed=8, **params)
    wa, wb, wc = weights(a), weights(b), weights(c)
    assert wa.keys() == wb.keys() == wc.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa), "same seed, same data: bit-identical weights"
    assert log_a.curve == log_b.curve
    assert any(not torch.equal(wa[k], wc[k]) for k in wa), "another seed orders the data differently"
    # the fit really changed the weights
    base = weights(new_handle())
    assert any(not torch.equal(wa[k], base[k]) for k in wa)


def test_fitted_weights_survive_save_and_load(tmp_path: Path):
    handle, _ = fit(tmp_path, lr=1e-3, epochs=2, batch_size=4)
    handle.save_weights(tmp_path / "w")
    fresh = new_handle()
    fresh.load_weights(tmp_path / "w")
    wa, wb = weights(handle), weights(fresh)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_no_fit_leaves_the_model_untouched(tmp_path: Path):
    handle = new_handle()
    before = weights(handle)
    assert NoFit({}).fit(handle, sequences(), Log().context(tmp_path)).to_json() == {}
    after = weights(handle)
    assert all(torch.equal(before[k], after[k]) for k in before)
