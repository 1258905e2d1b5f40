"""The model-based metrics register through their own hook, stay cheap to import, and run inside `harness run`."""

from __future__ import annotations

import csv
import subprocess
import sys

import pluggy
import pytest
from conftest import TINY_PLUGINS, tiny_benchmark, write_yaml
from mm_helpers import registry_with_model_metrics

from harness import hookspecs
from harness.api import Metric
from harness.config import load_benchmark
from harness.params import resolve_params
from harness.runner import Runner, RunOptions

NAMES = ["coherence", "judge-preference", "mauve", "perplexity", "tf-entropy", "tf-topk-prob", "top1-agreement"]


def test_hook_registers_the_model_based_metrics():
    import harness_plugins.metrics as mod

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(mod)
    got: list[type] = []
    pm.hook.harness_register_metrics(register=got.append)
    got = [c for c in got if c.name in NAMES]
    assert sorted(c.name for c in got) == NAMES
    for cls in got:
        assert issubclass(cls, Metric)
        assert cls.definition and cls.description and cls.version == "1"
        assert cls.level in ("sample", "corpus") and cls.modalities == ("text",)
        _, problems = resolve_params(cls.params, {p.name: "base" for p in cls.params if p.required})
        assert not problems.items, (cls.name, problems.items)
    by_name = {c.name: c for c in got}
    assert by_name["mauve"].level == "corpus" and by_name["mauve"].max_bootstrap == 50
    assert by_name["perplexity"].higher_is_better is False
    assert by_name["tf-entropy"].higher_is_better is None and by_name["tf-topk-prob"].higher_is_better is None
    assert by_name["coherence"].higher_is_better is True and by_name["mauve"].higher_is_better is True


def test_import_is_light():
    code = (
        "import sys, harness_plugins.metrics.model_based\n"
        "heavy = [m for m in ('torch', 'numpy', 'transformers', 'mauve', 'faiss', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("params,problem", [({"k": 0}, "k"), ({"span": "all"}, "span"),
                                            ({"featurizer": "bert"}, "featurizer")])  # fmt: skip
def test_bad_params_are_rejected(params, problem):
    import harness_plugins.metrics.model_based as mod

    cls = {"k": mod.TeacherForcedTopKProb, "span": mod.TeacherForcedEntropy, "featurizer": mod.Mauve}[problem]
    _, problems = resolve_params(cls.params, params)
    assert [name for name, _ in problems.items] == [problem]


def test_harness_run_scores_model_based_metrics(tmp_path):
    registry = registry_with_model_metrics(tmp_path, str(TINY_PLUGINS))
    data = tiny_benchmark(tmp_path)
    data["recipes"] = {"base": {"plugin": "none"}}
    data["decoders"] = {"greedy": {"plugin": "greedy"}}
    data["eval"].update({"datasets": ["other-set"], "contexts": 4, "bootstrap": 200})
    data["metrics"] = {
        "tf-entropy": {"plugin": "tf-entropy"},
        "top3": {"plugin": "tf-topk-prob", "k": 3},
        "perplexity": {"plugin": "perplexity"},
        "coherence": {"plugin": "coherence"},
        "mauve": {"plugin": "mauve", "num_buckets": 2, "kmeans_num_redo": 1},
    }
    bench = load_benchmark(write_yaml(tmp_path / "tiny.yaml", data), registry)
    cache = tmp_path / "cache"
    summary = Runner(bench, RunOptions(results_root=tmp_path / "results", cache_root=cache)).run()
    with (summary.results_dir / "scores.csv").open(encoding="utf-8", newline="") as handle:
        rows = {r["metric"]: r for r in csv.DictReader(handle)}
    assert sorted(rows) == sorted(data["metrics"])
    for name, row in rows.items():
        assert float(row["ci_low"]) <= float(row["ci_high"]) and row["n"] == "4", name
    assert 0 <= float(rows["top3"]["value"]) <= 1 and float(rows["perplexity"]["value"]) > 1
    assert 0 <= float(rows["mauve"]["value"]) <= 1 and -1 <= float(rows["coherence"]["value"]) <= 1
    assert list((cache / "features" / "text-features").glob("minilm-*.npy"))  # features cached under cache_dir
