"""The name → plugin table built once per process from every plugin's ``register`` calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from harness.api import KIND_BASES, Plugin
from harness.errors import InputError, PluginError, did_you_mean

KIND_LABELS = {
    "model_loader": "model loader",
    "dataset": "dataset",
    "recipe": "recipe",
    "decoder": "decoder",
    "metric": "metric",
}


@dataclass(frozen=True)
class Source:
    """Where a registration came from: the plugin module and its distribution."""

    plugin: str
    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        if self.distribution:
            return f"{self.plugin} ({self.distribution} {self.version})"
        return self.plugin


@dataclass(frozen=True)
class Registration:
    kind: str
    cls: type[Plugin]
    source: Source

    @property
    def name(self) -> str:
        return self.cls.name

    def describe(self) -> dict[str, Any]:
        """JSON-able summary for ``harness plugins --json``."""
        info: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "description": self.cls.description,
            "version": self.cls.version,
            "plugin": self.source.plugin,
            "distribution": self.source.distribution,
            "distribution_version": self.source.version,
            "params": {p.name: p.describe() for p in self.cls.params},
            "requires_packages": list(self.cls.requires_packages),
        }
        train_params = getattr(self.cls, "train_params", None)
        if train_params is not None:  # a recipe's `train:` block: listed like its params, with its defaults
            info["train"] = {p.name: p.describe() for p in train_params()}
        for attr in ("level", "higher_is_better", "requires", "modality", "modalities", "deterministic", "trains"):
            if hasattr(self.cls, attr):
                value = getattr(self.cls, attr)
                info[attr] = list(value) if isinstance(value, tuple) else value
        return info


class Registry:
    """Registrations per kind; a second registration of a name in the same kind is an error."""

    def __init__(self) -> None:
        self._by_kind: dict[str, dict[str, Registration]] = {kind: {} for kind in KIND_BASES}

    def add(self, kind: str, cls: Any, source: Source) -> None:
        base = KIND_BASES[kind]
        label = KIND_LABELS[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(f"plugin {source}: registered {cls!r} as a {label}, but it is not a {base.__name__} subclass")
        if not cls.name or not isinstance(cls.name, str):
            raise PluginError(f"plugin {source}: {cls.__name__} has no `name`")
        needs = cls.requires_packages
        if not isinstance(needs, (tuple, list)) or not all(isinstance(n, str) and n for n in needs):
            raise PluginError(f"plugin {source}: {cls.__name__}.requires_packages must be a tuple of distribution names, got {needs!r}")
        existing = self._by_kind[kind].get(cls.name)
        if existing is not None:
            raise PluginError(
                f'duplicate {label} name "{cls.name}": registered by {existing.source} and by {source}; '
                "disable one with --disable-plugin or HARNESS_DISABLE_PLUGINS"
            )
        self._by_kind[kind][cls.name] = Registration(kind, cls, source)

    def remove(self, name: str) -> bool:
        found = False
        for table in self._by_kind.values():
            if table.pop(name, None) is not None:
                found = True
        return found

    def names(self, kind: str) -> list[str]:
        return list(self._by_kind[kind])

    def get(self, kind: str, name: str) -> Registration:
        try:
            return self._by_kind[kind][name]
        except KeyError:
            raise InputError(f'unknown {KIND_LABELS[kind]} "{name}"' + did_you_mean(name, self._by_kind[kind])) from None

    def find(self, kind: str, name: str) -> Registration | None:
        return self._by_kind[kind].get(name)

    def __iter__(self) -> Iterator[Registration]:
        for table in self._by_kind.values():
            yield from table.values()
