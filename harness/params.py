"""Typed parameter schemas that every plugin declares, so YAML is checked before anything heavy runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from harness.errors import did_you_mean


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

_TYPE_NAMES = {int: "int", float: "float", str: "str", bool: "bool", list: "list", dict: "mapping"}


@dataclass(frozen=True)
class Param:
    """One parameter of a plugin.

    ``type`` is a Python type or a tuple of them (``(int, str)`` for "an int or 'auto'").
    A default of ``None`` makes the parameter optional and nullable; ``REQUIRED`` makes it mandatory.
    ``affects_result=False`` marks a param that cannot change the plugin's output (logging, progress,
    checkpoint cadence): it stays out of stage keys, so changing it reuses the stored stage.
    """

    name: str
    type: type | tuple[type, ...]
    default: Any = REQUIRED
    help: str = ""
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False
    affects_result: bool = True

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def types(self) -> tuple[type, ...]:
        return self.type if isinstance(self.type, tuple) else (self.type,)

    def type_name(self) -> str:
        return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in self.types)

    def describe(self) -> dict[str, Any]:
        """A JSON-able description for ``harness plugins --json`` and the docs."""
        out: dict[str, Any] = {"type": self.type_name(), "help": self.help}
        out["default"] = None if self.required else self.default
        out["required"] = self.required
        if self.choices:
            out["choices"] = list(self.choices)
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if not self.affects_result:
            out["affects_result"] = False
        return out

    def check(self, value: Any) -> tuple[Any, str | None]:
        """Return (coerced value, problem or None)."""
        if value is None and self.default is None:
            return None, None
        types = self.types
        ok = False
        for t in types:
            if t is bool:
                ok = isinstance(value, bool)
            elif t is float:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                if ok:
                    value = float(value)
            elif t is int:
                ok = isinstance(value, int) and not isinstance(value, bool)
            else:
                ok = isinstance(value, t)
            if ok:
                break
        if not ok:
            return value, f"expected {self.type_name()}, got {type(value).__name__} {value!r}"
        if self.choices is not None and value not in self.choices:
            return value, f"{value!r} is not allowed" + did_you_mean(str(value), map(str, self.choices))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.min is not None and (value < self.min or (self.exclusive_min and value == self.min)):
                bound = "above" if self.exclusive_min else "at least"
                return value, f"{value!r} must be {bound} {self.min}"
            if self.max is not None and value > self.max:
                return value, f"{value!r} must be at most {self.max}"
        return value, None


@dataclass
class ParamProblems:
    """Problems found while resolving params: (field name, message) pairs."""

    items: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, message: str) -> None:
        self.items.append((name, message))


def resolve_params(schema: Sequence[Param], given: Mapping[str, Any]) -> tuple[dict[str, Any], ParamProblems]:
    """Fill defaults, coerce and check ``given`` against ``schema``; unknown keys are problems."""
    problems = ParamProblems()
    by_name = {p.name: p for p in schema}
    resolved: dict[str, Any] = {}
    for key, value in given.items():
        if key not in by_name:
            problems.add(str(key), f"unknown parameter {key!r}" + did_you_mean(str(key), by_name))
            continue
        coerced, problem = by_name[key].check(value)
        if problem:
            problems.add(key, problem)
        resolved[key] = coerced
    for p in schema:
        if p.name not in given:
            if p.required:
                problems.add(p.name, f"required parameter {p.name!r} is missing")
            else:
                resolved[p.name] = p.default
    return resolved, problems
