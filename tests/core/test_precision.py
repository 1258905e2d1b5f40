"""``dtype: auto`` / ``precision: auto``: bf16 exactly where the device computes it natively, and the
resolved choice in the stage keys. The CPU capability is mocked at its one detection point only."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import precision
from harness.runner import Runner, RunOptions
from harness.testing import TinyLlamaLoader, load_registry, load_test_benchmark, tiny_benchmark


@pytest.fixture(params=[True, False], ids=["bf16-cpu", "fp32-only-cpu"])
def native(request, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(precision, "cpu_native_bf16", lambda: request.param)
    return request.param


def test_auto_resolves_by_the_cpu_capability(native: bool) -> None:
    assert precision.resolve_dtype("auto", "cpu") == ("bfloat16" if native else "float32")
    assert precision.resolve_precision("auto", "cpu") == ("bf16" if native else "fp32")
    assert precision.resolve_dtype("float32", "cpu") == "float32" and precision.resolve_precision("fp32", "cpu") == "fp32"
    assert precision.resolve_dtype("bfloat16", "cpu") == "bfloat16"  # a pinned choice is never changed


def test_loaders_and_recipes_report_the_resolved_choice(native: bool) -> None:
    from harness_plugins.models.embedded_smollm2 import EmbeddedSmolLM2
    from harness_plugins.recipes.hyperfit import Hyperfit

    expected = "bfloat16" if native else "float32"
    assert EmbeddedSmolLM2({"dtype": "auto"}).resolved_settings("cpu") == {"dtype": expected}
    assert Hyperfit({"precision": "auto"}).resolved_settings("cpu") == {"precision": "bf16" if native else "fp32"}
    assert Hyperfit({}).resolved_settings("cpu") == {"precision": "fp32"}  # the paper's default stays pinned


def test_the_detection_reads_what_torch_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert precision.cpu_native_bf16() is False
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert precision.cpu_native_bf16() is True


def test_the_resolved_precision_is_in_the_fit_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = tiny_benchmark(tmp_path)
    bench["recipes"]["fit"]["precision"] = "auto"
    registry = load_registry(extra=(TinyLlamaLoader,))
    keys, recorded = [], []
    for capable in (True, False):
        monkeypatch.setattr(precision, "cpu_native_bf16", lambda capable=capable: capable)
        runner = Runner(load_test_benchmark(bench, tmp_path, registry), RunOptions(tmp_path / "r", tmp_path / "c", device="cpu"))
        plan = runner.planner.plan()
        keys.append(plan.fits[("tiny", "fit")].key)
        recorded.append(plan.fit_settings["tiny/fit"])
    assert keys[0] != keys[1]
    assert recorded == [{"precision": "bf16"}, {"precision": "fp32"}]
