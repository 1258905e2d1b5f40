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
