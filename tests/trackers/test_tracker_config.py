"""The `trackers:` key of a benchmark: validated with the usual FILE:LINE: field.path messages, kept out of the
resolved config (so out of every stage key and the manifest's config), merged with `harness run --tracker`."""

from __future__ import annotations

import pytest

from conftest import TINY_PLUGINS
from tracker_helpers import tracked_benchmark
from harness.config import ConfigError, load_benchmark
from harness.plugin_manager import PluginOptions, load_plugins
from harness.testing import write_yaml
from harness.trackers import TRACKER_NAMES, TRACKERS, with_trackers


@pytest.fixture(scope="module")
def registry():
    return load_plugins(PluginOptions(local_files=(str(TINY_PLUGINS),))).registry


def load(tmp_path, registry, trackers):
    return load_benchmark(write_yaml(tmp_path / "tracked.yaml", tracked_benchmark(tmp_path, trackers)), registry)


def problems(tmp_path, registry, trackers) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, registry, trackers)
    return caught.value.problems


def test_no_trackers_by_default(tmp_path, registry):
    assert load(tmp_path, registry, None).trackers == {}


def test_settings_are_resolved_with_their_defaults(tmp_path, registry):
    bench = load(tmp_path, registry, {"mlflow": {"experiment": "mine"}, "wandb": None, "tensorboard": {}})
    assert bench.trackers == {
        "mlflow": {"tracking_uri": None, "experiment": "mine", "samples": 5},
        "wandb": {"project": None, "dir": None, "tags": None, "samples": 5},
        "tensorboard": {"log_dir": None, "samples": 5},
    }


def test_a_list_of_names_means_each_at_its_defaults(tmp_path, registry):
    bench = load(tmp_path, registry, ["tensorboard"])
    assert bench.trackers == {"tensorboard": {"log_dir": None, "samples": 5}}


def test_unknown_tracker_name_says_did_you_mean(tmp_path, registry):
    [message] = problems(tmp_path, registry, {"mlfow": {}})
    assert message.endswith('trackers.mlfow: unknown tracker "mlfow" (did you mean "mlflow"?)')
    assert message.startswith(f"{tmp_path / 'tracked.yaml'}:")


def test_unknown_setting_and_wrong_type_name_the_field(tmp_path, registry):
    found = problems(tmp_path, registry, {"mlflow": {"tracking_url": "file:x"}, "wandb": {"samples": "ten"},
                                          "tensorboard": {"samples": -1}})  # fmt: skip
    assert any("trackers.mlflow.tracking_url: unknown parameter 'tracking_url' (did you mean \"tracking_uri\"?)" in p for p in found)
    assert any("trackers.wandb.samples: expected int, got str 'ten'" in p for p in found)
    assert any("trackers.tensorboard.samples: -1 must be at least 0" in p for p in found)


def test_not_a_mapping(tmp_path, registry):
    [message] = problems(tmp_path, registry, "mlflow")
    assert "trackers: expected a mapping of tracker name → settings" in message
    [message] = problems(tmp_path, registry, {"wandb": "offline"})
    assert "trackers.wandb: expected a mapping of wandb settings ({} for the defaults), got 'offline'" in message


def test_trackers_stay_out_of_the_resolved_config(tmp_path, registry):
    tracked = load(tmp_path, registry, {"mlflow": {}, "tensorboard": {"log_dir": "runs"}})
    plain = load(tmp_path, registry, None)
    assert tracked.resolved() == plain.resolved()


def test_the_flag_adds_defaults_and_the_yaml_settings_win():
    merged = with_trackers({"mlflow": {"tracking_uri": "file:/x", "experiment": None, "samples": 1}}, ("mlflow", "tensorboard"))
    assert merged == {"mlflow": {"tracking_uri": "file:/x", "experiment": None, "samples": 1},
                      "tensorboard": {"log_dir": None, "samples": 5}}  # fmt: skip
    assert with_trackers({}, ()) == {}


def test_every_tracker_declares_what_the_cli_and_the_error_need():
    assert TRACKER_NAMES == ("mlflow", "wandb", "tensorboard")
    for name, cls in TRACKERS.items():
        assert cls.name == name and cls.module and any(p.name == "samples" for p in cls.params)
