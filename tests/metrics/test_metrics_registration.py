"""The bundled metrics module registers its three metrics and stays cheap to import."""

from __future__ import annotations

import subprocess
import sys

import pluggy

from harness import hookspecs
from harness.api import Metric
from harness.params import resolve_params


def test_hook_registers_three_metrics():
    import harness_plugins.metrics as mod

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(mod)
    got: list[type] = []
    pm.hook.harness_register_metrics(register=got.append)
    assert sorted(c.name for c in got) == ["entropy", "self-bleu", "ttr"]
    for cls in got:
        assert issubclass(cls, Metric)
        assert cls.definition and cls.description and cls.version == "1"
        assert cls.level in ("sample", "corpus")
        resolved, problems = resolve_params(cls.params, {})
        assert not problems.items, (cls.name, problems.items)


def test_import_is_light():
    code = (
        "import sys, harness_plugins.metrics\n"
        "heavy = [m for m in ('torch', 'numpy', 'sacrebleu', 'regex') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
