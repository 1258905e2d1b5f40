"""The bundled plugins of hyperfit-harness, one folder per plugin kind.

They are registered through the ``harness`` entry-point group exactly like a third-party package and
use only the public API in :mod:`harness.api`.
"""
