"""Error types that the CLI turns into one clear message and an exit code.

Anything the user can fix (a YAML field, a parameter, a path, a missing model or package) is an
``InputError`` (exit 2); a failure while running is a ``RunError`` (exit 1). Other exceptions are bugs
and are shown with a hint to rerun with ``--debug``.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class HarnessError(Exception):
    """Base class: ``str(error)`` is the whole message the user sees."""

    exit_code = 1


class InputError(HarnessError):
    """Bad input: config, params, paths, missing model or package, no network."""

    exit_code = 2


class ConfigError(InputError):
    """One or more problems in a benchmark file, each naming file, field path and value."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class PluginError(InputError):
    """A plugin could not be loaded or registered (duplicate name, broken import with --strict-plugins)."""


class RunError(HarnessError):
    """A stage failed while running; finished stages stay stored."""

    exit_code = 1


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean "x"?)' for the closest choice, or a list of valid choices."""
    options = sorted(set(choices))
    close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.6)
    if close:
        return f' (did you mean "{close[0]}"?)'
    if options and len(options) <= 12:
        return " (choose from: " + ", ".join(options) + ")"
    return ""
