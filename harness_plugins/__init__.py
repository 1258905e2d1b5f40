"""The bundled plugins of hyperfit-harness, one folder per plugin kind.

They are registered through the ``harness`` entry-point group exactly like a third-party package and
import nothing of ``harness`` but its public API, :mod:`harness.api` (tests/core/test_sdk_boundary.py checks
every file). Modules whose names start with ``_`` are helpers shared inside their folder; each other module
holds a plugin. See docs/contributing.md for where a new plugin goes.
"""
