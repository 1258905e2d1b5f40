"""One model, one dtype: a fitted model generates in its loader's dtype, fitted in this process or loaded.

The trainer keeps fp32 master weights while it trains a half-precision model; before, the runner then
generated from that fp32 module, while a later run loaded the stored fit into the loader's bf16 model,
so one benchmark could compare bf16 against fp32 and a cell could hold batches made in two dtypes.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.runner import Runner, RunOptions
from harness.testing import TinyLlamaLoader, load_registry, load_test_benchmark, tiny_benchmark


def bf16_bench(tmp_path: Path) -> dict:
    bench = tiny_benchmark(tmp_path, name="bf16")
    bench["models"] = {"tiny": {"loader": "tiny-llama", "dtype": "bfloat16"}}
    bench["decoders"] = {"greedy": {"plugin": "greedy"}}
    bench["metrics"] = {"ttr": {"plugin": "ttr", "window": 16}}
    bench["matrix"] = [{"recipe": "fit", "decoder": "greedy"}]
    bench["recipes"]["fit"]["lr"] = 3e-2  # large enough that bf16 rounding of the fitted weights matters
    return bench


def generations(results: Path) -> list[list[int]]:
    path = results / "bf16" / "cells" / "tiny__fit__greedy" / "generations.jsonl"
    return [json.loads(line)["output_ids"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_bf16_fit_generates_the_same_in_process_and_from_the_cache(tmp_path: Path):
    registry = load_registry(extra=(TinyLlamaLoader,))
    bench = load_test_benchmark(bf16_bench(tmp_path), tmp_path, registry)
    cache = tmp_path / "cache"
    in_process = Runner(bench, RunOptions(tmp_path / "a", cache, device="cpu"))
    fit_key = in_process.fit().fits[("tiny", "fit")].key
    handle = in_process.pool.held("tiny", fit_key)
    dtypes = {p.dtype for p in handle.module.parameters()}
    assert dtypes == {__import__("torch").bfloat16}, dtypes  # the trainer's fp32 masters were cast back
    in_process.run()
    assert in_process.book.computed["fit"] == 1

    # a second run on the same cache: the stored fit is loaded into the bf16 base model, generation recomputed
    for stage in ("generate", "score"):
        for path in (cache / "stages" / stage).glob("*.json"):
            path.unlink()
    from_cache = Runner(bench, RunOptions(tmp_path / "b", cache, device="cpu"))
    from_cache.run()
    assert from_cache.book.reused["fit"] == 1 and from_cache.book.computed.get("fit", 0) == 0
    assert generations(tmp_path / "a") == generations(tmp_path / "b")


def test_stored_fit_is_in_the_loader_dtype(tmp_path: Path):
    from safetensors import safe_open

    registry = load_registry(extra=(TinyLlamaLoader,))
    bench = load_test_benchmark(bf16_bench(tmp_path), tmp_path, registry)
    runner = Runner(bench, RunOptions(tmp_path / "a", tmp_path / "cache", device="cpu"))
    fit_key = runner.fit().fits[("tiny", "fit")].key
    stored = runner.book.cache.directory("fits", fit_key) / "weights.safetensors"
    with safe_open(str(stored), "pt") as weights:
        assert {str(weights.get_tensor(k).dtype) for k in weights.keys()} == {"torch.bfloat16"}
