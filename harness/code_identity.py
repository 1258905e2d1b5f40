"""What code computed a result: a hash of a plugin's source files, and the versions of the libraries.

A stage key holds the hash of the plugin class's module *and of every module of the same package it
imports* (found by reading the import statements, at any depth, without running anything), so an edit
to a shared helper (``harness_plugins/decoders/_ngram.py``) or to a ``--plugins FILE.py`` recomputes the
stages that code decides, while an edit to an unrelated plugin does not. Code outside the plugin's own
package (the harness core, torch, transformers) is covered by versions instead: ``library_versions``.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata as md
import importlib.util
import sys
from functools import lru_cache
from pathlib import Path

#: the libraries whose version decides what a model computes (tokenisation, kernels, weight conversion)
MODEL_LIBRARIES = ("torch", "transformers", "tokenizers", "safetensors", "accelerate", "numpy")


def library_versions(names: tuple[str, ...] = MODEL_LIBRARIES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def _module_file(name: str) -> Path | None:
    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None) if module is not None else None
    if origin is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        origin = spec.origin if spec is not None else None
    if origin is None or not origin.endswith(".py"):
        return None
    return Path(origin)


def _imported_names(source: str, module_name: str, is_package: bool) -> set[str]:
    """Absolute names of the modules an import statement anywhere in ``source`` may refer to."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    package = module_name if is_package else module_name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return names


@lru_cache(maxsize=None)
def module_source_hash(module_name: str) -> str:
    """sha256 over the module's file and every same-package module it imports, transitively."""
    top = module_name.split(".")[0]
    seen: dict[str, Path] = {}
    todo = [module_name]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None or not path.is_file():
            continue
        seen[name] = path
        source = path.read_text(encoding="utf-8", errors="replace")
        for imported in _imported_names(source, name, path.name == "__init__.py"):
            if imported.split(".")[0] == top and imported not in seen:
                todo.append(imported)
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode() + b"\0" + seen[name].read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def class_source_hash(cls: type) -> str:
    """The source hash of the module defining ``cls`` (a ``--plugins FILE.py`` module included)."""
    module = cls.__module__
    if module == "__main__" or _module_file(module) is None:
        import inspect

        try:
            return hashlib.sha256(inspect.getsource(cls).encode()).hexdigest()[:20]
        except (OSError, TypeError):
            return ""
    return module_source_hash(module)
