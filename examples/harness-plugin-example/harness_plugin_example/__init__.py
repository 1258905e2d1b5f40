"""An installable hyperfit-harness plugin package with one plugin of each kind.

| kind | name | module |
|---|---|---|
| model loader | ``example-char-llama`` | :mod:`harness_plugin_example.models` |
| dataset | ``example-counting`` | :mod:`harness_plugin_example.datasets` |
| recipe | ``example-sgd`` | :mod:`harness_plugin_example.recipes` |
| decoder | ``example-no-repeat-greedy`` | :mod:`harness_plugin_example.decoders` |
| metric | ``example-word-repeats`` | :mod:`harness_plugin_example.metrics` |

Each module is registered under the ``harness`` entry-point group (see pyproject.toml) and imports torch and
transformers only inside methods, so ``harness plugins`` stays fast.
"""

__version__ = "0.1.0"
