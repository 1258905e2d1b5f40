"""Training checkpoints: a kill at any point of a save leaves a copy that `restore` finds, and the time-based
decision to save is rank 0's, broadcast, so the ranks of a launch enter the save barrier together."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness_plugins.recipes._checkpoint import CHECKPOINT, COMPLETE, RETIRED, STAGING, Checkpointer, LoopState
from harness_plugins.recipes._engine import LocalEngine

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]


class Killed(BaseException):
    """Stands in for SIGKILL at one point of a save: nothing after it runs."""


def model_at(step: int) -> tuple["torch.nn.Module", "torch.optim.Optimizer"]:
    torch.manual_seed(step)
    module = torch.nn.Linear(4, 3)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    module(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    return module, optimizer


def save_at(checkpoints: Checkpointer, step: int) -> dict[str, "torch.Tensor"]:
    module, optimizer = model_at(step)
    checkpoints.save(LoopState(step=step, epoch_losses=[float(step)]), module, optimizer, None)
    return {k: v.clone() for k, v in module.state_dict().items()}


def restored(work: Path) -> tuple[int, dict[str, "torch.Tensor"]] | None:
    module, optimizer = model_at(999)
    result = Checkpointer(work, every=4, minutes=0.0, engine=LocalEngine("fp32", "cpu")).restore(module, optimizer)
    if result is None:
        return None
    return result[0].step, module.state_dict()


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def kill_at_rename(monkeypatch: pytest.MonkeyPatch, which: int) -> None:
    """Let renames before the ``which``-th (1-based) of the next save go through; die at that one."""
    real = pathlib.Path.rename
    calls = {"n": 0}

    def rename(self, target):
        calls["n"] += 1
        if calls["n"] == which:
            raise Killed
        return real(self, target)

    monkeypatch.setattr(pathlib.Path, "rename", rename)


def two_saves_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, which: int) -> tuple[Path, dict, dict]:
    work = tmp_path / "work"
    checkpoints = Checkpointer(work, every=4, minutes=0.0, engine=LocalEngine("fp32", "cpu"))
    at_4 = save_at(checkpoints, 4)
    kill_at_rename(monkeypatch, which)
    with pytest.raises(Killed):
        save_at(checkpoints, 8)
    monkeypatch.undo()
    return work, at_4, model_at(8)[0].state_dict()


def test_kill_between_the_renames_restores_the_newest_complete_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    work, _, at_8 = two_saves_killed(tmp_path, monkeypatch, which=2)  # current -> retired done, staging -> current not
    assert not (work / CHECKPOINT).exists() and (work / RETIRED).is_dir() and (work / STAGING / COMPLETE).is_file()
    step, weights = restored(work)
    assert step == 8 and same(weights, at_8), "the staging copy was complete: nothing is lost"
    assert sorted(p.name for p in work.iterdir()) == [CHECKPOINT], "restore finished the interrupted swap"
    assert restored(work)[0] == 8


def test_kill_between_the_renames_falls_back_to_the_retired_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    work, at_4, _ = two_saves_killed(tmp_path, monkeypatch, which=2)
    (work / STAGING / COMPLETE).unlink()  # a staging copy without its marker (e.g. from before markers) is never used
    assert not (work / CHECKPOINT).exists()
    step, weights = restored(work)
    assert step == 4 and same(weights, at_4)
    assert (work / CHECKPOINT / "loop.json").is_file() and not (work / RETIRED).exists()


def test_kill_before_the_swap_uses_the_complete_staging_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    work, _, at_8 = two_saves_killed(tmp_path, monkeypatch, which=1)  # marked complete, nothing renamed yet
    step, weights = restored(work)
    assert step == 8 and same(weights, at_8)


def test_kill_while_staging_keeps_the_current_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    work = tmp_path / "work"
    checkpoints = Checkpointer(work, every=4, minutes=0.0, engine=LocalEngine("fp32", "cpu"))
    at_4 = save_at(checkpoints, 4)
    real = Path.write_text

    def write_text(self, *args, **kwargs):
        if self.name == COMPLETE:
            raise Killed  # the staging copy is fully written but not yet marked
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", write_text)
    with pytest.raises(Killed):
        save_at(checkpoints, 8)
    monkeypatch.undo()
    assert (work / STAGING / "loop.json").is_file()
    step, weights = restored(work)
    assert step == 4 and same(weights, at_4)


def test_half_deleted_copies_are_never_trusted(tmp_path: Path):
    work = tmp_path / "work"
    checkpoints = Checkpointer(work, every=4, minutes=0.0, engine=LocalEngine("fp32", "cpu"))
    save_at(checkpoints, 4)
    # a retired copy that a kill left half-deleted: its marker goes first, so it no longer counts
    (work / CHECKPOINT).rename(work / RETIRED)
    (work / RETIRED / COMPLETE).unlink()
    (work / RETIRED / "loop.json").unlink()
    assert restored(work) is None


def test_a_legacy_checkpoint_without_marker_still_restores(tmp_path: Path):
    work = tmp_path / "work"
    checkpoints = Checkpointer(work, every=4, minutes=0.0, engine=LocalEngine("fp32", "cpu"))
    at_4 = save_at(checkpoints, 4)
    (work / CHECKPOINT / COMPLETE).unlink()
    step, weights = restored(work)
    assert step == 4 and same(weights, at_4)


# --------------------------------------------------------------------------- the time-based decision


class Board:
    value: bool | None = None


class FakeRank:
    """One rank of a 2-process launch; broadcast_flag hands every rank what rank 0 posted."""

    def __init__(self, rank: int, board: Board):
        self.rank, self.world, self.is_main, self.board = rank, 2, rank == 0, board
        self.broadcasts = 0

    def broadcast_flag(self, flag: bool) -> bool:
        self.broadcasts += 1
        if self.is_main:
            self.board.value = flag
        return bool(self.board.value)


def test_time_based_save_is_decided_on_rank_0(tmp_path: Path):
    board = Board()
    ranks = [FakeRank(0, board), FakeRank(1, board)]
    clocks = [Checkpointer(tmp_path, every=0, minutes=1.0, engine=engine) for engine in ranks]
    clocks[1].last_saved -= 3600  # rank 1's clock says a save is long overdue, rank 0's says not yet
    assert [c.due(3, 10) for c in clocks] == [False, False], "rank 1 must not enter the save barrier alone"
    clocks[0].last_saved -= 3600
    clocks[1].last_saved += 3600  # now only rank 0's clock says due
    assert [c.due(4, 10) for c in clocks] == [True, True]
    assert [r.broadcasts for r in ranks] == [2, 2]


def test_step_based_save_needs_no_collective(tmp_path: Path):
    board = Board()
    ranks = [FakeRank(0, board), FakeRank(1, board)]
    clocks = [Checkpointer(tmp_path, every=4, minutes=0.0, engine=engine) for engine in ranks]
    assert [c.due(4, 10) for c in clocks] == [True, True] and [c.due(5, 10) for c in clocks] == [False, False]
    assert [r.broadcasts for r in ranks] == [0, 0]


def test_one_process_decides_on_its_own_clock(tmp_path: Path):
    checkpoints = Checkpointer(tmp_path, every=0, minutes=1.0, engine=LocalEngine("fp32", "cpu"))
    assert not checkpoints.due(1, 10)
    checkpoints.last_saved -= 3600
    assert checkpoints.due(2, 10) and not checkpoints.due(10, 10)


WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    import torch
    from harness_plugins.recipes._checkpoint import Checkpointer, LoopState
    from harness_plugins.recipes._engine import make_engine

    out, work = sys.argv[1], sys.argv[2]
    engine = make_engine("fp32", "cpu")
    torch.manual_seed(0)
    module = torch.nn.Linear(4, 3)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    module, optimizer = engine.prepare(module, optimizer)
    checkpoints = Checkpointer(work, every=0, minutes=1.0, engine=engine)
    if engine.rank == 1:
        checkpoints.last_saved -= 3600  # only rank 1's clock is past the interval
    decisions = [checkpoints.due(1, 10)]
    if engine.rank == 0:
        checkpoints.last_saved -= 3600  # now only rank 0's
    else:
        checkpoints.last_saved = time.monotonic()
    decisions.append(checkpoints.due(2, 10))
    if decisions[-1]:
        checkpoints.save(LoopState(step=2), module, optimizer, None)
    state = checkpoints.restore(module, optimizer)
    with open(os.path.join(out, f"rank{engine.rank}.json"), "w") as handle:
        json.dump({"world": engine.world, "decisions": decisions, "restored": state[0].step if state else None}, handle)
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_agree_on_rank_0s_clock(tmp_path: Path):
    """The real collective: a 2-process torchrun on CPUs (gloo), as tests/runner/test_distributed.py launches."""
    pytest.importorskip("accelerate")
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), str(script), str(tmp_path), str(tmp_path / "work")]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert [r["decisions"] for r in ranks] == [[False, True], [False, True]]
    assert [r["restored"] for r in ranks] == [2, 2]
