"""Discover plugins (entry points, local files), isolate broken ones, and build the registry.

Discovery follows the pattern of pytest/tox/datasette: entry points in the group ``harness`` are loaded
one by one so a plugin that fails to import is reported and skipped (fatal with ``strict``); plugins
named in ``HARNESS_DISABLE_PLUGINS`` or ``--disable-plugin`` are not loaded (entry-point names) or
their registrations are dropped (registered names); ``--plugins FILE.py`` loads a local module.
Every hook is called through pluggy, one plugin at a time (:func:`call_hook`), here and in
:func:`harness.testing.registered` alike.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable

import pluggy

from harness import hookspecs
from harness.errors import InputError, PluginError
from harness.hookspecs import Register
from harness.registry import Registry, Source

ENTRY_POINT_GROUP = "harness"
DISABLE_ENV = "HARNESS_DISABLE_PLUGINS"


@dataclass
class PluginOptions:
    local_files: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    strict: bool = False

    def all_disabled(self) -> set[str]:
        names = set(self.disabled)
        names.update(n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip())
        return names


@dataclass
class LoadedPlugins:
    registry: Registry
    failures: list[str] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)


def _entry_points() -> Iterable[tuple[md.EntryPoint, md.Distribution]]:
    seen: set[tuple[str, str]] = set()
    for dist in md.distributions():
        dist_name = dist.metadata["Name"] or "?"
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP:
                continue
            key = (dist_name.lower(), ep.name)
            if key in seen:  # the same dist can be visible twice (editable + site-packages)
                continue
            seen.add(key)
            yield ep, dist


def _load_local_file(path_text: str) -> ModuleType:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise InputError(f"--plugins {path_text}: no such file")
    module_name = "harness_local_plugin_" + path.stem.replace("-", "_")
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"--plugins {path_text}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def _fail(loaded: LoadedPlugins, strict: bool, message: str) -> None:
    if strict:
        raise PluginError(message)
    loaded.failures.append(message)


def new_plugin_manager() -> pluggy.PluginManager:
    """A pluggy manager that knows the harness hooks (and no plugins yet)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def call_hook(pm: pluggy.PluginManager, plugin: object, hook_name: str, register: Register) -> None:
    """Call ``hook_name`` of one registered ``plugin`` through pluggy, the others left out.

    Calling plugins one at a time is what attributes every registration to its source and confines a
    hook that raises to its own plugin; going through pluggy (not ``getattr``) keeps its hookimpl options
    and argument checking. The one dispatch path of ``harness`` and of :func:`harness.testing.registered`.
    """
    others = [p for p in pm.get_plugins() if p is not plugin]
    pm.subset_hook_caller(hook_name, remove_plugins=others)(register=register)


def load_plugins(options: PluginOptions | None = None) -> LoadedPlugins:
    """Import every plugin and collect its registrations into a fresh :class:`Registry`."""
    options = options or PluginOptions()
    disabled = options.all_disabled()
    pm = new_plugin_manager()
    loaded = LoadedPlugins(Registry())
    modules: list[tuple[Any, Source]] = []

    def add_module(module: Any, source: Source) -> None:
        try:
            pm.register(module, name=source.plugin)
            pm.check_pending()
        except Exception as exc:  # unknown hook names, bad hook arguments, double registration
            if pm.is_registered(module):
                pm.unregister(module)
            _fail(loaded, options.strict, f"plugin {source} skipped: {exc}")
            return
        modules.append((module, source))

    for ep, dist in _entry_points():
        dist_name = dist.metadata["Name"]
        if {ep.name, f"{dist_name}:{ep.name}", dist_name} & disabled:
            continue
        source = Source(f"{dist_name}:{ep.name}", dist_name, dist.version)
        try:
            module = ep.load()
        except Exception as exc:
            _fail(loaded, options.strict, f"plugin {source} failed to import and was skipped: {type(exc).__name__}: {exc}")
            continue
        add_module(module, source)

    for path_text in options.local_files:
        source = Source(f"file:{path_text}")
        try:
            module = _load_local_file(path_text)
        except InputError:
            raise
        except Exception as exc:
            _fail(loaded, options.strict, f"plugin {source} failed to import and was skipped: {type(exc).__name__}: {exc}")
            continue
        add_module(module, source)

    for module, source in modules:
        loaded.sources.append(source)
        for kind, hook_name in hookspecs.HOOK_BY_KIND.items():

            def register(cls: Any, _kind: str = kind, _source: Source = source) -> None:
                if getattr(cls, "name", None) in disabled:
                    return
                loaded.registry.add(_kind, cls, _source)

            try:
                call_hook(pm, module, hook_name, register)
            except PluginError:
                raise  # a name clash or a non-plugin class: fatal even without --strict-plugins
            except Exception as exc:
                _fail(loaded, options.strict, f"plugin {source} failed in {hook_name}: {type(exc).__name__}: {exc}")

    return loaded
