"""The documented accelerate launch configs parse with accelerate's own loader and say what the docs say."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"


@pytest.mark.parametrize(
    ("name", "kind", "processes", "machines"),
    [("ddp", "MULTI_GPU", 8, 1), ("fsdp", "FSDP", 8, 1), ("deepspeed-zero3", "DEEPSPEED", 8, 1)],
)
def test_launch_config_parses(name: str, kind: str, processes: int, machines: int):
    config_args = pytest.importorskip("accelerate.commands.config.config_args")
    config = config_args.load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert config.distributed_type.name == kind
    assert (config.num_processes, config.num_machines) == (processes, machines)
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_sharding_strategy"] == "FULL_SHARD"
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    if kind == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == 3


def test_every_config_is_documented():
    docs = (CONFIGS.parents[1] / "docs" / "recipes.md").read_text(encoding="utf-8")
    for path in CONFIGS.glob("*.yaml"):
        assert f"configs/accelerate/{path.name}" in docs, path.name
