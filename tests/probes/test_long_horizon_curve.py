"""``curve_schedule: log``: curve points at log-spaced update steps for long fits ("hyperfitting is not grokking":
held-out loss, entropy and greedy TTR tracked far past zero training loss); the epoch schedule is unchanged."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from conftest import tiny_benchmark, tiny_module
from harness.api import FitContext
from harness.params import resolve_params
from harness.testing import run_benchmark, load_test_benchmark
from harness.errors import ConfigError
from harness_plugins.recipes._curves import log_spaced_steps
from harness_plugins.recipes.hyperfit import Hyperfit

torch = pytest.importorskip("torch")


def sequences(count: int, tokens: int = 24, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(2, 258) for _ in range(tokens)] for _ in range(count)]


def fit(tmp_path: Path, **params) -> tuple[list[dict], dict]:
    config, problems = resolve_params(Hyperfit.params, {"lr": 3e-3, "batch_size": 2, "curve_new_tokens": 8, **params})
    assert not problems.items, problems.items
    tiny = tiny_module()
    handle = tiny.TinyHandle(tiny.tiny_llama(), tiny.ByteCodec(), device="cpu")
    rows: list[dict] = []
    ctx = FitContext(seed=1, work_dir=tmp_path, curve=rows.append, heldout=sequences(4, seed=9))
    Hyperfit(config).fit(handle, sequences(10), ctx)
    return rows, {k: v.detach().clone() for k, v in handle.module.state_dict().items()}


def test_log_spaced_steps_definition():
    assert log_spaced_steps(60, 8) == [1, 2, 3, 6, 10, 19, 33, 60]
    assert log_spaced_steps(5000, 5) == [1, 8, 71, 595, 5000]
    assert log_spaced_steps(4, 10) == [1, 2, 3, 4]  # deduplicated: fewer steps than asked where they collide
    assert log_spaced_steps(7, 1) == [7] and log_spaced_steps(1, 5) == [1] and log_spaced_steps(0, 5) == []
    for total, points in ((100, 7), (5000, 30), (3, 3)):
        steps = log_spaced_steps(total, points)
        assert steps[0] == 1 and steps[-1] == total and steps == sorted(set(steps)) and len(steps) <= points


def test_log_schedule_logs_exactly_the_log_spaced_steps_and_trains_the_same(tmp_path: Path):
    # 10 sequences in batches of 2: 5 updates per epoch, 60 updates = 12 epochs
    log_rows, log_weights = fit(tmp_path / "log", updates=60, curve_schedule="log", curve_points=8)
    steps = [row["step"] for row in log_rows]
    assert steps == [0] + log_spaced_steps(60, 8) == [0, 1, 2, 3, 6, 10, 19, 33, 60]
    for row in log_rows:  # every point tracks the held-out columns
        assert {"heldout_loss", "heldout_entropy", "greedy_ttr"} <= set(row), row
    assert all("train_loss" in row for row in log_rows[1:]) and "train_loss" not in log_rows[0]
    assert [row["epoch"] for row in log_rows] == [round(s / 5, 4) for s in steps]

    # the default (epoch) schedule: a point before training and at every epoch end, as before
    epoch_rows, epoch_weights = fit(tmp_path / "epochs", updates=60)
    assert [row["step"] for row in epoch_rows] == [0] + list(range(5, 61, 5))
    assert all("heldout_loss" in row for row in epoch_rows)
    # logging elsewhere does not change the training: same weights, same held-out values where the steps meet
    assert all(torch.equal(log_weights[k], epoch_weights[k]) for k in epoch_weights)
    by_step = {row["step"]: row for row in epoch_rows}
    for row in log_rows:
        if row["step"] in by_step:
            assert row["heldout_loss"] == pytest.approx(by_step[row["step"]]["heldout_loss"], abs=1e-6)
            assert row["greedy_ttr"] == pytest.approx(by_step[row["step"]]["greedy_ttr"])
    assert log_rows[1]["train_loss"] > 0


def test_log_point_train_loss_is_the_mean_since_the_previous_point(tmp_path: Path):
    # one update per "epoch" (batch = all sequences): the epoch rows hold each update's loss
    every, _ = fit(tmp_path / "every", batch_size=10, updates=12, curve_every=1)
    losses = {row["step"]: row["train_loss"] for row in every if row["step"]}
    rows, _ = fit(tmp_path / "log", batch_size=10, updates=12, curve_schedule="log", curve_points=4)
    steps = [row["step"] for row in rows]
    assert steps == [0, 1, 2, 5, 12] == [0] + log_spaced_steps(12, 4)
    previous = 0
    for row in rows[1:]:
        span = [losses[s] for s in range(previous + 1, row["step"] + 1)]
        assert row["train_loss"] == pytest.approx(sum(span) / len(span), rel=1e-6)
        previous = row["step"]


def test_schedule_defaults_and_validation(tmp_path: Path):
    defaults = {p.name: p for p in Hyperfit.params}
    assert defaults["curve_schedule"].default == "epochs" and defaults["curve_every"].default == 1
    assert not defaults["curve_schedule"].affects_result and not defaults["curve_points"].affects_result
    bench = tiny_benchmark(tmp_path)
    bench["recipes"]["fit"] |= {"curve_schedule": "log", "curve_every": 0}
    with pytest.raises(ConfigError, match="curve_every: 0 turns the curve off"):
        load_test_benchmark(bench, tmp_path)


def test_runner_writes_the_log_spaced_curve(tmp_path: Path):
    bench = tiny_benchmark(tmp_path, decoders={"greedy": {"plugin": "greedy"}}, metrics={"ttr": {"plugin": "ttr", "window": 16}})
    bench["recipes"]["fit"] |= {"train": {"dataset": "train-set", "samples": 8, "tokens": 24, "heldout": 4},
                                "batch_size": 2, "epochs": 6, "curve_schedule": "log", "curve_points": 6,
                                "curve_new_tokens": 8}  # fmt: skip
    bench["eval"] |= {"contexts": 2}
    run = run_benchmark(bench, tmp_path)
    with (run.results_dir / "recipes" / "tiny__fit" / "curves.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # 8 sequences in batches of 2 for 6 epochs: 24 updates
    assert [int(r["step"]) for r in rows] == [0] + log_spaced_steps(24, 6) == [0, 1, 2, 4, 7, 13, 24]
    assert all(r["heldout_loss"] and r["heldout_entropy"] and r["greedy_ttr"] for r in rows)
    manifest = json.loads((run.results_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["config"]["recipes"]["fit"]["curve_schedule"] == "log"
