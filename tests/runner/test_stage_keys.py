"""Stage keys hold everything that decides a result and nothing else: one test per ingredient.

Each test changes one ingredient between two runs on one cache and checks which stages recompute:
what decides a result recomputes it, a logging or checkpoint param reuses the stored fit.
"""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import pytest

from harness import code_identity
from harness.runner import Runner, RunOptions
from harness.testing import TinyLlamaLoader, load_registry, load_test_benchmark, run_benchmark, tiny_benchmark


def small(tmp_path: Path, **overrides) -> dict:
    bench = tiny_benchmark(tmp_path, **overrides)
    bench["decoders"] = {"greedy": {"plugin": "greedy"}}
    bench["metrics"] = {"ttr": {"plugin": "ttr", "window": 16}}
    bench["matrix"] = [{"recipe": "fit", "decoder": "greedy"}]
    return bench


def counts(run) -> tuple[dict[str, int], dict[str, int]]:
    return run.summary.computed, run.summary.reused


def test_logging_and_checkpoint_params_reuse_the_fit(tmp_path: Path):
    bench = small(tmp_path)
    first = run_benchmark(bench, tmp_path)
    assert first.summary.computed["fit"] == 1
    changed = copy.deepcopy(bench)
    changed["recipes"]["fit"] |= {"checkpoint_minutes": 1.0, "checkpoint_every": 1, "curve_every": 2,
                                  "curve_contexts": 2, "curve_new_tokens": 8}  # fmt: skip
    second = run_benchmark(changed, tmp_path)
    computed, reused = counts(second)
    assert computed.get("fit", 0) == 0 and reused["generate"] >= 1  # nothing to fit, nothing to regenerate
    assert computed.get("generate", 0) == 0 and computed.get("score", 0) == 0
    assert second.value("ttr", dataset="train-set") == first.value("ttr", dataset="train-set")


def test_a_param_that_decides_the_weights_recomputes_the_fit(tmp_path: Path):
    bench = small(tmp_path)
    run_benchmark(bench, tmp_path)
    changed = copy.deepcopy(bench)
    changed["recipes"]["fit"]["lr"] = 1e-3
    computed, _ = counts(run_benchmark(changed, tmp_path))
    assert computed["fit"] == 1 and computed["generate"] >= 1


def test_the_data_order_does_not_depend_on_where_the_dataset_lives(tmp_path: Path):
    """The same corpus in another folder: another dataset identity (its path), the same training set and order."""
    import shutil

    bench = small(tmp_path)
    registry = load_registry(extra=(TinyLlamaLoader,))
    seeds = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        moved = copy.deepcopy(bench)
        shutil.copy(bench["datasets"]["train-set"]["path"], tmp_path / folder / "corpus.txt")
        moved["datasets"]["train-set"]["path"] = str(tmp_path / folder / "corpus.txt")
        runner = Runner(load_test_benchmark(moved, tmp_path, registry), RunOptions(tmp_path / "r", tmp_path / "c", device="cpu"))
        seeds.append(runner.planner.plan().fits[("tiny", "fit")].data_seed)
    assert seeds[0] == seeds[1]


def test_the_data_order_comes_from_seed_and_training_set_alone(tmp_path: Path):
    """hyperfit and finetune on the same data, with different logging params, see one data order."""
    bench = small(tmp_path)
    bench["recipes"]["other"] = dict(bench["recipes"]["fit"], curve_every=2, checkpoint_minutes=3.0)
    bench["recipes"]["other"]["train"] = dict(bench["recipes"]["fit"]["train"])
    registry = load_registry(extra=(TinyLlamaLoader,))
    runner = Runner(load_test_benchmark(bench, tmp_path, registry), RunOptions(tmp_path / "r", tmp_path / "c", device="cpu"))
    bench_plan = runner.planner.plan()
    other = runner.planner.fit_plan("tiny", runner.bench.recipes["other"], bench_plan.contexts)
    fits = [bench_plan.fits[("tiny", "fit")], other]
    assert fits[0].data_seed == fits[1].data_seed
    assert fits[0].key == fits[1].key


def test_resolved_dtype_is_in_every_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`dtype: auto` is the same literal on a CPU and a GPU: the key must hold what it resolved to."""
    bench = small(tmp_path)
    run_benchmark(bench, tmp_path)
    monkeypatch.setattr(TinyLlamaLoader, "resolved_settings", lambda self, device: {"dtype": "bfloat16"})
    computed, _ = counts(run_benchmark(bench, tmp_path))
    assert computed["fit"] == 1 and computed["contexts"] >= 1 and computed["generate"] >= 1


def test_device_kind_is_in_the_model_key(tmp_path: Path):
    registry = load_registry(extra=(TinyLlamaLoader,))
    bench = load_test_benchmark(small(tmp_path), tmp_path, registry)
    cpu = Runner(bench, RunOptions(tmp_path / "r", tmp_path / "c", device="cpu"))
    gpu = Runner(bench, RunOptions(tmp_path / "r", tmp_path / "c", device="cpu"))
    gpu.pool._device = "cuda:1"  # key computation only: nothing is loaded
    assert cpu.pool.model_id("tiny") != gpu.pool.model_id("tiny")
    assert gpu.pool.model_facts("tiny")["device"] == "cuda"


def test_library_versions_are_in_every_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import harness.model_pool as runner_module

    bench = small(tmp_path)
    run_benchmark(bench, tmp_path)
    real = code_identity.library_versions()
    monkeypatch.setattr(runner_module, "library_versions", lambda: real | {"transformers": "99.0"})
    computed, _ = counts(run_benchmark(bench, tmp_path))
    assert computed["fit"] == 1 and computed["generate"] >= 1


PLUGIN = '''
from harness import hookimpl
from harness_plugins.decoders.greedy import Greedy


class Edited(Greedy):
    name = "edited-greedy"
    description = "greedy, from a local file"
    SHIFT = {shift}


@hookimpl
def harness_register_decoders(register):
    register(Edited)
'''


def test_an_edited_local_plugin_file_recomputes_its_stages(tmp_path: Path):
    """Version "1" before and after: only the code hash tells the edit apart."""
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(textwrap.dedent(PLUGIN.format(shift=0)), encoding="utf-8")
    bench = small(tmp_path)
    bench["decoders"] = {"greedy": {"plugin": "edited-greedy"}}
    run_benchmark(bench, tmp_path, plugin_files=[plugin])
    again = run_benchmark(bench, tmp_path, plugin_files=[plugin])
    assert again.summary.computed.get("generate", 0) == 0
    plugin.write_text(textwrap.dedent(PLUGIN.format(shift=1)), encoding="utf-8")
    code_identity.module_source_hash.cache_clear()
    edited = run_benchmark(bench, tmp_path, plugin_files=[plugin])
    assert edited.summary.computed["generate"] >= 1 and edited.summary.computed.get("fit", 0) == 0


def test_source_hash_follows_same_package_imports_at_any_depth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A helper imported inside a function (as plugins import their loop lazily) is part of the hash;
    an unrelated module of the package is not."""
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "helper.py").write_text("def step():\n    return 1\n", encoding="utf-8")
    (package / "unrelated.py").write_text("X = 1\n", encoding="utf-8")
    (package / "plugin.py").write_text(
        "class P:\n    def run(self):\n        from .helper import step\n        return step()\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    code_identity.module_source_hash.cache_clear()
    before = code_identity.module_source_hash("mypkg.plugin")
    (package / "unrelated.py").write_text("X = 2\n", encoding="utf-8")
    code_identity.module_source_hash.cache_clear()
    assert code_identity.module_source_hash("mypkg.plugin") == before
    (package / "helper.py").write_text("def step():\n    return 2\n", encoding="utf-8")
    code_identity.module_source_hash.cache_clear()
    assert code_identity.module_source_hash("mypkg.plugin") != before


def test_generate_keys_hash_the_core_decoding_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Fixing a bug in harness/decoding.py (the loop every composed decoder runs on) recomputes generations."""
    bench = small(tmp_path)
    run_benchmark(bench, tmp_path)
    real = code_identity.module_source_hash

    def edited(name: str) -> str:
        return real(name) + ("-edited" if name == "harness.decoding" else "")

    monkeypatch.setattr("harness.data_plan.module_source_hash", edited)
    computed, _ = counts(run_benchmark(bench, tmp_path))
    assert computed.get("fit", 0) == 0 and computed["generate"] >= 1


def test_hub_models_are_keyed_by_resolved_commit_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from harness_plugins.models._hf_handle import model_fingerprint

    cache = tmp_path / "hub"
    repo = cache / "models--org--name"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert model_fingerprint("org/name").endswith(":unresolved")  # not cached, offline: says so
    for sha in ("a" * 40, "b" * 40):
        (repo / "snapshots" / sha).mkdir(parents=True)
        (repo / "snapshots" / sha / "tokenizer.json").write_text('{"v": 1}', encoding="utf-8")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40, encoding="utf-8")
    first = model_fingerprint("org/name")
    assert "a" * 40 in first
    (repo / "refs" / "main").write_text("b" * 40, encoding="utf-8")  # main moved on the hub
    assert model_fingerprint("org/name") != first
    assert "b" * 40 in model_fingerprint("org/name", revision="b" * 40)
    # the same commit with another tokenizer file (same size): another fingerprint
    before = model_fingerprint("org/name")
    (repo / "snapshots" / ("b" * 40) / "tokenizer.json").write_text('{"v": 2}', encoding="utf-8")
    assert model_fingerprint("org/name") != before


def test_local_model_folder_fingerprint_sees_same_size_weight_edits(tmp_path: Path):
    from harness_plugins.models._hf_handle import folder_fingerprint

    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(bytes(5 << 20))
    before = folder_fingerprint(str(tmp_path))
    data = bytearray(weights.read_bytes())
    data[-10] = 7  # a re-saved fit of the same shape
    weights.write_bytes(bytes(data))
    assert folder_fingerprint(str(tmp_path)) != before


def test_auto_dtype_resolves_per_device(monkeypatch: pytest.MonkeyPatch):
    from harness import precision
    from harness_plugins.models._hf_handle import resolved_dtype_name

    for native, expected in ((False, "float32"), (True, "bfloat16")):
        monkeypatch.setattr(precision, "cpu_native_bf16", lambda native=native: native)
        assert resolved_dtype_name("auto", "cpu") == expected
        assert resolved_dtype_name("bfloat16", "cpu") == "bfloat16" and resolved_dtype_name("float32", "cpu") == "float32"


def test_manifest_records_what_decides_reproducibility(tmp_path: Path):
    import json

    run = run_benchmark(small(tmp_path), tmp_path)
    manifest = json.loads((run.results_dir / "manifest.json").read_text(encoding="utf-8"))
    hardware = manifest["hardware"]
    for field in ("cpu_model", "cpu_flags", "torch_threads", "cpu_capability", "blas_info"):
        assert field in hardware, field
    facts = manifest["models"]["tiny"]
    assert facts["resolved"] == {"dtype": "float32"} and facts["device"] == "cpu"
    assert facts["libraries"]["torch"] and facts["libraries"]["transformers"]
    checks = manifest["disjointness"]["tiny/fit"]
    assert {c["role"] for c in checks["training"]} == {"training"} and checks["held-out"]
    assert all(c["ngram"] == 24 and c["eval_contexts"] == 6 for c in checks["training"])


def test_a_warm_run_loads_no_model_for_the_disjointness_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The check's verdict is stored: a rerun with every stage cached never needs the codec's special tokens."""
    bench = small(tmp_path)
    run_benchmark(bench, tmp_path)
    loads = []
    real = TinyLlamaLoader.load
    monkeypatch.setattr(TinyLlamaLoader, "load", lambda self, ctx: loads.append(1) or real(self, ctx))
    warm = run_benchmark(bench, tmp_path)
    assert loads == [] and warm.summary.computed == {}
