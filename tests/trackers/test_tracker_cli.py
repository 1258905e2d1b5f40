"""`harness run --tracker NAME`: the tracker at its defaults (under the results root), a line saying where the
run went, and `--fit-only` mirroring the curves it trains."""

from __future__ import annotations

import pytest

from conftest import TINY_PLUGINS
from tracker_helpers import installed, tracked_benchmark
from harness.testing import run_cli, write_yaml

pytestmark = pytest.mark.skipif(not installed("tensorboard"), reason="pip install 'hyperfit-harness[tensorboard]'")


def harness_run(tmp_path, *extra: str, trackers=None) -> tuple[int, str]:
    path = write_yaml(tmp_path / "tracked.yaml", tracked_benchmark(tmp_path, trackers))
    return run_cli(["run", str(path), "--results", str(tmp_path / "results"), "--cache", str(tmp_path / "cache"),
                    "--plugins", str(TINY_PLUGINS), *extra])  # fmt: skip


def scalar_tags(folder) -> dict[str, list[int]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [e.step for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_the_flag_writes_under_the_results_root_and_says_where(tmp_path):
    code, output = harness_run(tmp_path, "--tracker", "tensorboard")
    assert code == 0, output
    [folder] = (tmp_path / "results" / "tensorboard" / "tracked").iterdir()
    assert f"trackertensorboard:eventfilesin{folder}" in "".join(output.split())  # rich may wrap the path anywhere
    tags = scalar_tags(folder)
    assert tags["curve/tiny__fit/train_loss"] == [2, 4]
    assert "score/tiny__fit__greedy/train-set/ttr" in tags


def test_yaml_settings_win_over_the_flag_defaults(tmp_path):
    code, output = harness_run(tmp_path, "--tracker", "tensorboard", "--quiet",
                               trackers={"tensorboard": {"log_dir": str(tmp_path / "runs")}})  # fmt: skip
    assert code == 0, output
    assert not (tmp_path / "results" / "tensorboard").exists()
    assert len(list((tmp_path / "runs" / "tracked").iterdir())) == 1


def test_fit_only_mirrors_the_curves_it_trains(tmp_path):
    code, output = harness_run(tmp_path, "--tracker", "tensorboard", "--fit-only", "--quiet")
    assert code == 0, output
    [folder] = (tmp_path / "results" / "tensorboard" / "tracked").iterdir()
    tags = scalar_tags(folder)
    assert tags["curve/tiny__fit/heldout_loss"] == [0, 2, 4]
    assert not any(tag.startswith("score/") for tag in tags)
