"""The bundled metrics module registers its metrics and stays cheap to import."""

from __future__ import annotations

import subprocess
import sys

import pluggy

from harness import hookspecs
from harness.api import Metric
from harness.params import resolve_params


ALL_METRICS = [
    "ttr", "self-bleu", "entropy", "ttr-curve", "seq-rep-n", "rep-n", "diversity", "distinct-n", "ngram-entropy",
    "dataset-bleu", "dataset-overlap", "dataset-overlap-max", "dataset-overlap-share",
    "mauve", "coherence", "tf-entropy", "tf-topk-prob", "perplexity", "top1-agreement", "judge-preference",
    "base-rank", "base-divergence", "layer-geometry",
    "row-repetition", "distinct-clusters", "pixel-mse", "psnr", "completion-diversity", "recognisability",
    "human-preference", "human-agreement", "lm-eval",
]  # fmt: skip


def test_hook_registers_every_metric():
    import harness_plugins.metrics as mod

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(mod)
    got: list[type] = []
    pm.hook.harness_register_metrics(register=got.append)
    assert [c.name for c in got] == ALL_METRICS
    for cls in got:
        assert issubclass(cls, Metric)
        assert cls.definition and cls.description and cls.version == "1"
        assert cls.level in ("sample", "corpus")
        assert cls.higher_is_better in (True, False, None)
        assert (cls.requires or cls.name == "lm-eval") and set(cls.modalities) <= {"text", "image"}  # lm-eval reads the weights only
        # defined the method its level calls
        method = "score_samples" if cls.level == "sample" else "score_corpus"
        assert getattr(cls, method) is not getattr(Metric, method), cls.name
        # a placeholder of the right type for each required param (a recipe name, a list of task names)
        filled = {p.name: (["base"] if p.type is list or p.type == (list,) else "base") for p in cls.params if p.required}
        resolved, problems = resolve_params(cls.params, filled)
        assert not problems.items, (cls.name, problems.items)


def test_import_is_light():
    code = (
        "import sys, harness_plugins.metrics\n"
        "heavy = [m for m in ('torch', 'numpy', 'sacrebleu', 'regex') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


#: the lexical and repetition metrics: one `unit` param each, with the default its published definition uses
UNIT_DEFAULTS = {
    "ttr": "token-ids", "ttr-curve": "token-ids", "seq-rep-n": "token-ids",
    "rep-n": "words", "diversity": "words", "distinct-n": "words", "ngram-entropy": "words",
}  # fmt: skip


def test_every_unit_param_is_the_shared_one():
    """Same name, type, choices and help everywhere; only the default differs, and it is what it always was."""
    from harness_plugins.metrics import METRICS
    from harness_plugins.metrics._common import unit_param

    with_unit = {cls.name: p for cls in METRICS for p in cls.params if p.name == "unit"}
    assert sorted(with_unit) == sorted(UNIT_DEFAULTS)
    for name, param in with_unit.items():
        assert param == unit_param(UNIT_DEFAULTS[name]), name
        assert param.describe() == unit_param(UNIT_DEFAULTS[name]).describe(), name


def test_unit_param_switches_the_field_an_instance_requires():
    from harness_plugins.metrics import METRICS

    by_name = {cls.name: cls for cls in METRICS}
    for name in UNIT_DEFAULTS:
        cls = by_name[name]
        assert cls({"unit": "words"}).requires == ("output_text",), name
        assert cls({"unit": "token-ids"}).requires == ("output_ids",), name
        assert cls().requires == cls.requires, name  # the class attribute describes the default
    assert by_name["self-bleu"]({"tokenize": "ids"}).requires == ("output_ids",)
    assert by_name["self-bleu"]().requires == ("output_text",)
    assert by_name["dataset-bleu"]({"tokenize": "13a"}).requires == ("output_text",)
    assert by_name["dataset-bleu"]().requires == ("output_ids",)
