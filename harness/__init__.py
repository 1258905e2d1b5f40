"""hyperfit-harness: a plugin-based benchmark harness for hyperfitting and open-ended generation.

Importing this package is cheap (no torch, no transformers): plugin modules import it for
``hookimpl`` and the API types.
"""

from harness.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["hookimpl", "__version__"]
