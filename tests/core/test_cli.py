"""The `harness` command line: help, plugins, validate, run's input errors, exit codes, and light imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_PLUGINS, tiny_benchmark, write_yaml
from harness import __version__
from harness.cli import main


def harness(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120):
    """Run the real CLI in a fresh interpreter (exit codes and stderr exactly as a user sees them)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout,
    )  # fmt: skip


def call(*args: str) -> int:
    """Run the CLI in-process; return its exit code (0 when it returns normally)."""
    try:
        main(list(args))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write_yaml(tmp_path / "good.yaml", tiny_benchmark(tmp_path))


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    data = tiny_benchmark(tmp_path)
    data["decoders"]["top-p"]["plugin"] = "top_p"
    return write_yaml(tmp_path / "bad.yaml", data)


# --------------------------------------------------------------------------- help and version


def test_help_exits_zero():
    result = harness("--help")
    assert result.returncode == 0, result.stderr
    for command in ("validate", "run", "plugins", "score", "leaderboard", "show"):
        assert command in result.stdout
    assert "--plugins" in result.stdout and "--disable-plugin" in result.stdout
    assert result.stderr == ""


def test_subcommand_help_and_version(capsys):
    assert call("validate", "--help") == 0
    assert "without loading any model" in capsys.readouterr().out
    assert call("--version") == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_command_is_a_usage_error(capsys):
    assert call("frobnicate") == 2
    assert "No such command" in capsys.readouterr().err


# --------------------------------------------------------------------------- plugins


def test_plugins_json_lists_kinds_params_and_distribution(capsys):
    assert call("plugins", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["failures"] == []
    by_name = {p["name"]: p for p in out["plugins"]}
    assert {p["kind"] for p in out["plugins"]} == {"model_loader", "dataset", "recipe", "decoder", "metric"}
    assert by_name["top-p"]["kind"] == "decoder"
    assert by_name["top-p"]["distribution"] == "hyperfit-harness"
    assert by_name["top-p"]["distribution_version"] == "0.1.0"
    assert by_name["top-p"]["params"]["p"]["default"] == 0.9
    assert by_name["top-p"]["params"]["top_k"]["type"] == "int"
    assert by_name["hf-causal-lm"]["params"]["id"]["required"] is True
    assert by_name["hyperfit"]["trains"] is True and by_name["none"]["trains"] is False
    assert by_name["self-bleu"]["level"] == "corpus" and by_name["self-bleu"]["higher_is_better"] is False
    assert by_name["ttr"]["requires"] == ["output_ids"]
    assert by_name["hyperfit"]["params"]["optimizer"]["choices"] == ["adam", "adamw"]
    assert "tiny-llama" not in by_name


def test_plugins_json_shows_the_train_block_and_the_packages_each_plugin_needs(capsys):
    assert call("plugins", "--json") == 0
    by_name = {p["name"]: p for p in json.loads(capsys.readouterr().out)["plugins"]}
    train = by_name["hyperfit"]["train"]
    assert {k: train[k]["default"] for k in ("samples", "tokens", "heldout")} == {"samples": 2000, "tokens": 256, "heldout": 16}
    assert train["dataset"]["required"] is True
    assert by_name["pretrain"]["train"]["samples"]["default"] == 1024 and by_name["none"]["train"]["heldout"]["default"] == 0
    assert "train" not in by_name["top-p"], "only recipes have a train: block"
    assert by_name["lora"]["requires_packages"] == ["peft"]
    assert "gguf" in by_name["embedded-smollm2"]["requires_packages"]
    assert by_name["digits"]["requires_packages"] == ["scikit-learn"] and by_name["none"]["requires_packages"] == []


def test_plugins_json_with_local_file_before_or_after_the_subcommand(capsys):
    for args in (("--plugins", str(TINY_PLUGINS), "plugins", "--json"), ("plugins", "--plugins", str(TINY_PLUGINS), "--json")):
        assert call(*args) == 0
        by_name = {p["name"]: p for p in json.loads(capsys.readouterr().out)["plugins"]}
        assert by_name["tiny-llama"]["plugin"] == f"file:{TINY_PLUGINS}"
        assert by_name["tiny-llama"]["distribution"] is None
        assert by_name["flaky"]["kind"] == "decoder"


def test_plugins_disable_flag(capsys):
    assert call("plugins", "--json", "--disable-plugin", "decoders", "--disable-plugin", "ttr") == 0
    names = {p["name"] for p in json.loads(capsys.readouterr().out)["plugins"]}
    assert not names & {"greedy", "top-p", "ttr"}
    assert {"self-bleu", "hyperfit"} <= names


def test_plugins_table(capsys):
    assert call("plugins") == 0
    out = capsys.readouterr().out
    assert "top-p" in out and "hyperfit-harness 0.1.0" in out
    assert "train.samples: int = 2000" in out and "peft" in out


def test_plugins_reports_a_broken_plugin_as_a_warning(tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("raise ImportError('nope')\n", encoding="utf-8")
    assert call("--plugins", str(broken), "plugins", "--json") == 0
    captured = capsys.readouterr()
    message = f"plugin file:{broken} failed to import and was skipped: ImportError: nope"
    assert json.loads(captured.out)["failures"] == [message]
    assert f"warning: {message}" in captured.err


def test_strict_plugins_makes_a_broken_plugin_fatal(tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("raise ImportError('nope')\n", encoding="utf-8")
    assert call("--strict-plugins", "--plugins", str(broken), "plugins", "--json") == 2
    assert capsys.readouterr().err == f"error: plugin file:{broken} failed to import and was skipped: ImportError: nope\n"


def test_missing_local_plugin_file(tmp_path, capsys):
    missing = tmp_path / "nope.py"
    assert call("--plugins", str(missing), "plugins") == 2
    assert capsys.readouterr().err == f"error: --plugins {missing}: no such file\n"


# --------------------------------------------------------------------------- validate


def test_validate_good_file(good, capsys):
    assert call("--plugins", str(TINY_PLUGINS), "validate", str(good)) == 0
    out = capsys.readouterr().out
    assert out == f"{good}: ok — 4 cells × 2 eval datasets × 3 metrics\n"


def test_validate_good_file_in_a_subprocess(good):
    result = harness("validate", "--plugins", str(TINY_PLUGINS), str(good))
    assert result.returncode == 0, result.stderr
    assert "ok — 4 cells" in result.stdout


def test_validate_bad_file_exit_2_and_no_traceback(bad):
    result = harness("--plugins", str(TINY_PLUGINS), "validate", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    assert str(bad) in result.stderr
    assert "decoders.top-p.plugin" in result.stderr
    assert 'did you mean "top-p"' in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")


def test_validate_bad_file_with_debug_shows_traceback(bad):
    result = harness("--debug", "--plugins", str(TINY_PLUGINS), "validate", str(bad))
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert "ConfigError" in result.stderr
    assert 'did you mean "top-p"' in result.stderr


def test_validate_several_problems_are_indented_lines(tmp_path, capsys):
    data = tiny_benchmark(tmp_path)
    data["decoders"]["top-p"]["plugin"] = "top_p"
    data["metrics"]["ttr"]["window"] = "wide"
    path = write_yaml(tmp_path / "two.yaml", data)
    assert call("--plugins", str(TINY_PLUGINS), "validate", str(path)) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "error:"
    assert len(lines) == 3
    assert all(line.startswith(f"  {path}:") for line in lines[1:])
    assert "decoders.top-p.plugin" in lines[1] and "metrics.ttr.window" in lines[2]


def test_validate_reports_problems_of_every_file(good, bad, tmp_path, capsys):
    missing = tmp_path / "missing.yaml"
    assert call("--plugins", str(TINY_PLUGINS), "validate", str(bad), str(good), str(missing)) == 2
    err = capsys.readouterr().err
    assert f"{bad}:" in err and "decoders.top-p.plugin" in err
    assert f"{missing}: no such benchmark file" in err
    assert str(good) + ":" not in err


def test_validate_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert call("validate", str(missing)) == 2
    assert capsys.readouterr().err == f"error: {missing}: no such benchmark file\n"


def test_validate_without_tiny_plugins_reports_unknown_loader(good, capsys):
    assert call("validate", str(good)) == 2
    err = capsys.readouterr().err
    assert 'models.tiny.loader: unknown model loader "tiny-llama"' in err


def test_validate_requires_an_argument(capsys):
    assert call("validate") == 2
    assert "Missing argument" in capsys.readouterr().err


# --------------------------------------------------------------------------- run: input errors


def _hf_benchmark(tmp_path: Path, model_id: str) -> Path:
    data = tiny_benchmark(tmp_path)
    data["models"] = {"m": {"loader": "hf-causal-lm", "id": model_id}}
    data["recipes"] = {"base": {"plugin": "none"}}
    data["decoders"] = {"greedy": {"plugin": "greedy"}}
    data["metrics"] = {"ttr": {"plugin": "ttr"}}
    data["eval"] = {"datasets": ["other-set"], "contexts": 2, "context_tokens": 4, "new_tokens": 4}
    return write_yaml(tmp_path / "hf.yaml", data)


def test_run_with_a_nonexistent_local_model_dir(tmp_path):
    model_dir = tmp_path / "no-such-model-dir"
    path = _hf_benchmark(tmp_path, str(model_dir))
    result = harness("run", str(path), "--results", str(tmp_path / "results"), "--device", "cpu", "--quiet", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f'error: model "{model_dir}" could not be loaded' in result.stderr
    assert "Traceback" not in result.stderr


def test_run_with_an_unavailable_hub_id_offline(tmp_path):
    path = _hf_benchmark(tmp_path, "no-such-org/no-such-model")
    result = harness(
        "run", str(path), "--results", str(tmp_path / "results"), "--device", "cpu", "--quiet",
        cwd=tmp_path, env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert 'error: model "no-such-org/no-such-model" could not be loaded' in result.stderr
    assert "HF_HUB_OFFLINE=1 uses only the cache" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_limit_larger_than_contexts(good, tmp_path, capsys):
    code = call("--plugins", str(TINY_PLUGINS), "run", str(good), "--limit", "7", "--results", str(tmp_path / "r"))
    assert code == 2
    assert capsys.readouterr().err == f"error: --limit 7 is larger than eval.contexts 6 in {good}\n"
    assert not (tmp_path / "r").exists()


def test_run_limit_must_be_positive(good, capsys):
    assert call("--plugins", str(TINY_PLUGINS), "run", str(good), "--limit", "0") == 2
    assert "--limit" in capsys.readouterr().err


def test_run_bad_device(good, capsys):
    assert call("--plugins", str(TINY_PLUGINS), "run", str(good), "--device", "gpu") == 2
    assert capsys.readouterr().err == "error: --device gpu: use cpu, cuda, cuda:N or auto\n"


def test_run_missing_benchmark_file(tmp_path):
    missing = tmp_path / "absent.yaml"
    result = harness("run", str(missing), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"error: {missing}: no such benchmark file\n"


def test_run_invalid_benchmark_does_not_start(bad, tmp_path, capsys):
    assert call("--plugins", str(TINY_PLUGINS), "run", str(bad), "--results", str(tmp_path / "r")) == 2
    assert 'did you mean "top-p"' in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- light imports

LIGHT = r"""
import sys
import harness.cli
from harness.config import load_benchmark
from harness.plugin_manager import PluginOptions, load_plugins

heavy = ("torch", "transformers", "pandas")
assert not [m for m in heavy if m in sys.modules], ("import harness.cli", [m for m in heavy if m in sys.modules])
loaded = load_plugins(PluginOptions(local_files=(sys.argv[1],)))
assert not loaded.failures, loaded.failures
assert not [m for m in heavy if m in sys.modules], ("load_plugins", [m for m in heavy if m in sys.modules])
bench = load_benchmark(sys.argv[2], loaded.registry)
assert len(bench.cells) == 4
try:
    harness.cli.main(["--plugins", sys.argv[1], "validate", sys.argv[2]])
except SystemExit as exc:
    raise AssertionError(f"validate exited {exc.code}")
assert not [m for m in heavy if m in sys.modules], ("validate", [m for m in heavy if m in sys.modules])
print("LIGHT-OK")
"""


def test_cli_plugins_and_validation_do_not_import_heavy_modules(good):
    result = subprocess.run(
        [sys.executable, "-c", LIGHT, str(TINY_PLUGINS), str(good)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "LIGHT-OK" in result.stdout
