"""The bundled plugins use the SDK and nothing else of the core: every import of ``harness`` is ``harness.api``.

``harness.api`` is the whole surface a plugin may use (design.md, "The plugin SDK"); a bundled plugin that
reached into ``harness.runner`` or ``harness.store`` would tie the core's internals to plugin code that third
parties copy. The check reads the source (ast), so lazy imports inside functions count as much as
module-level ones, and so do ``importlib.import_module("harness.x")`` and relative imports that climb out of
``harness_plugins``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import harness.api

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "harness_plugins"
ALLOWED = "harness.api"


def _package_of(path: Path, root: Path) -> list[str]:
    """The package a module file belongs to, as parts (``harness_plugins/recipes/x.py`` → [harness_plugins, recipes])."""
    return list(path.relative_to(root).parts[:-1])  # an __init__.py belongs to its own folder's package too


def _core_module(name: str) -> bool:
    return name == "harness" or name.startswith("harness.")


def violations(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line: what`` for each import in ``path`` that reaches a harness module other than harness.api."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    where = path.relative_to(root)
    package = _package_of(path, root)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _core_module(alias.name) and alias.name != ALLOWED:
                    found.append(f"{where}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > len(package):  # `from ... import x` climbing out of harness_plugins
                    found.append(f"{where}:{node.lineno}: relative import {'.' * node.level}{node.module or ''} leaves the package")
                    continue
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "harness":
                bad = [a.name for a in node.names if f"harness.{a.name}" != ALLOWED]
                if bad:
                    found.append(f"{where}:{node.lineno}: from harness import {', '.join(bad)}")
            elif _core_module(module) and module != ALLOWED:
                found.append(f"{where}:{node.lineno}: from {module} import ...")
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            target = node.args[0].value
            if called in ("import_module", "__import__") and isinstance(target, str) and _core_module(target) and target != ALLOWED:
                found.append(f"{where}:{node.lineno}: {called}({target!r})")
    return found


def sdk_names_used(path: Path) -> list[tuple[int, str]]:
    """(line, name) of every name a module takes from harness.api."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(n.lineno, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == ALLOWED and not n.level
            for a in n.names]  # fmt: skip


def _files() -> list[Path]:
    files = sorted(PLUGINS.rglob("*.py"))
    assert len(files) > 20, "the bundled plugins moved: update PLUGINS"
    return files


def test_bundled_plugins_import_only_harness_api() -> None:
    problems = [v for path in _files() for v in violations(path)]
    assert not problems, "bundled plugins must import only harness.api from the core:\n" + "\n".join(problems)


def test_every_name_plugins_take_from_the_sdk_is_exported() -> None:
    exported = set(harness.api.__all__)
    problems = [f"{p.relative_to(ROOT)}:{line}: {name}" for p in _files() for line, name in sdk_names_used(p) if name not in exported]
    assert not problems, "names imported from harness.api but missing from its __all__:\n" + "\n".join(problems)


def test_the_sdk_exports_what_it_lists_and_lists_what_it_exports() -> None:
    missing = [name for name in harness.api.__all__ if not hasattr(harness.api, name)]
    assert not missing and len(set(harness.api.__all__)) == len(harness.api.__all__), missing
    # every harness object api.py defines or re-exports is listed (stdlib/typing helpers are not the SDK)
    public = [
        name for name, value in vars(harness.api).items()
        if not name.startswith("_") and name != "TYPE_CHECKING"
        and (name.isupper() or str(getattr(value, "__module__", None) or getattr(value, "__name__", "")).startswith("harness"))
    ]  # fmt: skip
    unlisted = sorted(set(public) - set(harness.api.__all__))
    assert not unlisted, f"harness.api defines or imports these without listing them in __all__: {unlisted}"


def test_the_checker_catches_every_way_in(tmp_path: Path) -> None:
    """The rule itself: each spelling of a core import is caught, harness.api and in-package imports are not."""
    package = tmp_path / "harness_plugins" / "kind"
    package.mkdir(parents=True)
    module = package / "bad.py"
    module.write_text(
        "import harness.store\n"
        "import harness.api\n"
        "from harness import hookimpl, api\n"
        "from harness.api import Param\n"
        "from harness.errors import InputError\n"
        "from . import _helper\n"
        "from .. import other_kind\n"
        "from ... import harness\n"
        "import importlib\n"
        "def lazy():\n"
        "    from harness.runner import Runner\n"
        "    importlib.import_module('harness.config')\n",
        encoding="utf-8",
    )
    found = violations(module, root=tmp_path)
    lines = [int(v.split(":")[1]) for v in found]
    assert lines == [1, 3, 5, 8, 11, 12], found
    assert "from harness import hookimpl" in found[1] and "api" not in found[1].split("import ")[1]
