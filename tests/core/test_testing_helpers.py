"""harness.testing, the helpers plugin authors test with: cheap to import, real registry, real runs."""

from __future__ import annotations

import subprocess
import sys

import harness_plugins.decoders
import pytest

from harness.errors import PluginError
from harness.testing import TinyLlamaLoader, load_registry, registered, run_benchmark, run_cli, tiny_benchmark


def test_import_is_cheap() -> None:
    code = "import sys, harness.testing; heavy = [m for m in ('torch', 'transformers', 'pytest') if m in sys.modules]; assert not heavy, heavy"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registered_calls_the_hooks_like_an_entry_point() -> None:
    got = registered(harness_plugins.decoders)
    assert list(got) == ["decoder"] and "greedy" in [cls.name for cls in got["decoder"]]


def test_extra_classes_clash_like_installed_ones() -> None:
    assert load_registry(extra=(TinyLlamaLoader,)).find("model_loader", "tiny-llama") is not None
    with pytest.raises(PluginError, match='duplicate model loader name "tiny-llama"'):
        load_registry(extra=(TinyLlamaLoader, TinyLlamaLoader))


def test_run_benchmark_runs_and_resumes(tmp_path) -> None:
    bench = tiny_benchmark(tmp_path, name="helpers", recipes={"base": {"plugin": "none"}},
                           decoders={"greedy": {"plugin": "greedy"}})  # fmt: skip
    bench["eval"].update(contexts=3, datasets=["other-set"])
    run = run_benchmark(bench, tmp_path)
    assert sorted(r["metric"] for r in run.rows) == ["entropy", "self-bleu", "ttr"]
    assert 0 < run.value("ttr") <= 1 and (run.results_dir / "leaderboard.md").is_file()
    with pytest.raises(LookupError, match="0 rows"):
        run.value("ttr", decoder="top-p")
    again = run_benchmark(bench, tmp_path)
    assert any(run.summary.computed.values())
    assert again.rows == run.rows and not any(again.summary.computed.values())


def test_run_cli_reports_exit_codes_and_messages(tmp_path) -> None:
    code, out = run_cli(["validate", str(tmp_path / "missing.yaml")])
    assert code == 2 and "missing.yaml" in out
    code, out = run_cli(["plugins"])
    assert code == 0 and "greedy" in out


def test_registered_fails_like_loading_does() -> None:
    """A misspelt hook is refused by pluggy here exactly as `harness` refuses it, and a raising hook raises."""
    import types

    import pluggy

    from harness.api import hookimpl

    misspelt = types.ModuleType("misspelt")
    misspelt.harness_register_decoder = hookimpl(lambda register: None)
    with pytest.raises(pluggy.PluginValidationError, match="harness_register_decoder"):
        registered(misspelt)

    raising = types.ModuleType("raising")

    def harness_register_metrics(register):
        raise RuntimeError("boom")

    raising.harness_register_metrics = hookimpl(harness_register_metrics)
    with pytest.raises(RuntimeError, match="boom"):
        registered(raising)
