"""A tracker whose package is missing stops the run with one message naming the extra, before anything runs."""

from __future__ import annotations

import sys

import pytest

from conftest import TINY_PLUGINS
from tracker_helpers import tracked_benchmark
from harness.errors import InputError
from harness.testing import run_benchmark, run_cli, write_yaml
from harness.trackers import check_packages


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``import MODULE`` fail as it does when the package is not installed."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_a_missing_package_names_the_extra(monkeypatch):
    hide(monkeypatch, "mlflow")
    with pytest.raises(InputError) as caught:
        check_packages(["mlflow"])
    assert str(caught.value) == ("tracker mlflow needs the mlflow package, which is not installed: "
                                 "pip install 'hyperfit-harness[mlflow]'")  # fmt: skip


def test_several_missing_packages_make_one_message(monkeypatch):
    hide(monkeypatch, "wandb", "tensorboard")
    with pytest.raises(InputError) as caught:
        check_packages(["wandb", "tensorboard"])
    message = str(caught.value)
    assert "tracker wandb needs the wandb package" in message and "tracker tensorboard needs the tensorboard package" in message
    assert message.endswith("pip install 'hyperfit-harness[wandb,tensorboard]'")


def test_a_package_that_fails_to_import_says_why(monkeypatch):
    """Installed but broken (e.g. a too-old dependency): the message says why, whether or not it is installed here."""
    import importlib

    import harness.trackers as trackers

    real_import = importlib.import_module

    def broken(name, *args, **kwargs):
        if name == "tensorboard":
            raise ImportError("protobuf is too old")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(trackers.importlib, "import_module", broken)
    with pytest.raises(InputError, match=r"fails to import \(ImportError: protobuf is too old\): pip install 'hyperfit-harness\[tensorboard\]'"):
        check_packages(["tensorboard"])


def test_the_runner_stops_before_planning(monkeypatch, tmp_path):
    hide(monkeypatch, "wandb")
    with pytest.raises(InputError, match=r"hyperfit-harness\[wandb\]"):
        run_benchmark(tracked_benchmark(tmp_path, {"wandb": {}}), tmp_path)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "results").exists()


@pytest.mark.parametrize("how", ["flag", "yaml"])
def test_harness_run_exits_2_before_any_model_loads(monkeypatch, tmp_path, how):
    hide(monkeypatch, "mlflow")
    path = write_yaml(tmp_path / "tracked.yaml", tracked_benchmark(tmp_path, {"mlflow": {}} if how == "yaml" else None))
    args = ["run", str(path), "--results", str(tmp_path / "results"), "--cache", str(tmp_path / "cache"),
            "--plugins", str(TINY_PLUGINS), "--quiet"] + (["--tracker", "mlflow"] if how == "flag" else [])  # fmt: skip
    code, output = run_cli(args)
    assert code == 2
    assert output.strip() == ("error: tracker mlflow needs the mlflow package, which is not installed: "
                              "pip install 'hyperfit-harness[mlflow]'")  # fmt: skip
    assert not (tmp_path / "cache").exists() and not (tmp_path / "results").exists()


def test_an_unknown_tracker_flag_is_refused(tmp_path):
    path = write_yaml(tmp_path / "tracked.yaml", tracked_benchmark(tmp_path, None))
    code, output = run_cli(["run", str(path), "--tracker", "neptune", "--plugins", str(TINY_PLUGINS)])
    assert code == 2 and "'neptune' is not one of 'mlflow', 'wandb', 'tensorboard'" in output
