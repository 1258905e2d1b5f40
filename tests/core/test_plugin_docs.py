"""docs/plugins.md is what scripts/gen_plugin_docs.py makes of the current docstrings, and covers every hook and kind."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

from harness import api, hookspecs, testing

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_plugin_docs.py"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_plugin_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_page_is_up_to_date() -> None:
    page = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert page == _generator().render(), "docs/plugins.md is stale: run python scripts/gen_plugin_docs.py"


def test_page_covers_hooks_kinds_contexts_and_test_helpers() -> None:
    page = _generator().render()
    for hook in hookspecs.HOOK_BY_KIND.values():
        assert f"### `{hook}(register: Register) -> None`" in page
    for base in api.KIND_BASES.values():
        assert f"### `{base.__name__}`" in page
    for ctx in (api.LoadContext, api.FitContext, api.DecodeContext, api.MetricContext):
        section = page.split(f"### `harness.api.{ctx.__name__}` (dataclass)", 1)[1].split("\n### ", 1)[0]
        for f in dataclasses.fields(ctx):
            assert f"- `{f.name}` (" in section, (ctx.__name__, f.name)
    for name in testing.__all__:
        assert f"- `{name}" in page, name
    assert "0x" not in page  # no memory addresses: the page is reproducible


def test_check_mode(tmp_path, monkeypatch, capsys) -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    generator = _generator()
    stale = tmp_path / "plugins.md"
    stale.write_text("# Writing plugins\n", encoding="utf-8")
    monkeypatch.setattr(generator, "PAGE", stale)
    monkeypatch.setattr(generator, "ROOT", tmp_path)
    monkeypatch.setattr(sys, "argv", ["gen_plugin_docs.py", "--check"])
    assert generator.main() == 1 and "out of date" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["gen_plugin_docs.py"])
    assert generator.main() == 0 and stale.read_text(encoding="utf-8") == generator.render()


# --------------------------------------------------------------------------- the worked examples, run


def _examples(page: str) -> dict[str, str]:
    """{hook: module source} of the fenced example after each hook's marker on the page."""
    out = {}
    for hook in hookspecs.HOOK_BY_KIND.values():
        marker = f"<!-- example: {hook} -->\n```python\n"
        assert page.count(marker) == 1, f"docs/plugins.md has no single example for {hook}"
        out[hook] = page.split(marker, 1)[1].split("\n```\n", 1)[0] + "\n"
    return out


def test_every_hook_example_registers_through_its_hook(tmp_path) -> None:
    for hook, source in _examples((ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")).items():
        assert "from harness.api import" in source and "from harness." not in source.replace("from harness.api", "")
        path = tmp_path / f"{hook}.py"
        path.write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(f"docs_example_{hook}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        got = testing.registered(module)
        kind = next(k for k, h in hookspecs.HOOK_BY_KIND.items() if h == hook)
        assert list(got) == [kind] and len(got[kind]) == 1, (hook, got)


def test_the_five_examples_run_together_in_a_benchmark(tmp_path) -> None:
    files = []
    for hook, source in _examples((ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")).items():
        files.append(tmp_path / f"example_{hook}.py")
        files[-1].write_text(source, encoding="utf-8")
    bench = testing.tiny_benchmark(tmp_path, name="examples")
    bench["models"] = {"gpt2": {"loader": "random-gpt2"}}
    bench["datasets"] = {"train-set": bench["datasets"]["train-set"], "words": {"plugin": "random-words"}}
    bench["recipes"] = {"base": {"plugin": "none"}, "sgd": {"plugin": "sgd-steps", "train": {"dataset": "train-set"}}}
    bench["decoders"] = {"by-hand": {"plugin": "argmax-by-hand"}}
    bench["metrics"] = {"distinct": {"plugin": "distinct-tokens"}}
    bench["eval"].update(datasets=["words"], contexts=3)
    run = testing.run_benchmark(bench, tmp_path, plugin_files=files, extra=())
    for recipe in ("base", "sgd"):
        assert 0 < run.value("distinct", recipe=recipe) <= 1
    curve = (run.results_dir / "recipes" / "gpt2__sgd" / "curves.csv").read_text(encoding="utf-8").splitlines()
    assert curve[0].startswith("step") and len(curve) == 1 + 3, curve  # the recipe's three logged steps
