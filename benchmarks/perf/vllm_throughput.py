"""Generation throughput: our greedy loop vs transformers' ``generate`` vs the vLLM backend, at several batch sizes.

On the embedded SmolLM2-135M (float32), ``--context-tokens`` of embedded Wikipedia and news documents are
continued by ``--new-tokens`` greedy tokens under the fixed-length policy (EOS never chosen: our loop
suppresses it, ``generate`` gets ``suppress_tokens=[eos]``, vLLM ``ignore_eos`` plus the worker's EOS ban),
at each batch size of ``--batches``. Reported: generated tokens/s of each method and its ratio to our loop
measured in the same process (our loop and ``generate`` are timed in interleaved rounds, median of
``--repeats``), plus how many rows vLLM gave token-for-token as our loop did.

vLLM runs in its own venv (``bash scripts/setup_vllm.sh``) through ``harness/vllm_worker.py``: one engine
load per mode, then every batch size twice in turn (``runs`` of the worker protocol): vLLM's CPU kernels
set themselves up on the first batch of each new size, so the second is the steady-state figure (prefill +
decode of the batch); the engine load and each first batch are reported separately. Modes
(``--vllm-modes``): ``eager`` (the CPU default, no torch.compile) and ``compiled`` (vLLM's torch.compile
graphs, longer load).

Reproduce (the table in docs/vllm.md; about 6 minutes on the 2-core CPU machine):

    .venv/bin/python benchmarks/perf/vllm_throughput.py --out results/perf/vllm_throughput.json
    .venv/bin/python benchmarks/perf/vllm_throughput.py --device cuda --batches 8,32,128,512 --out /tmp/vllm-gpu.json

Timings are wall clock on a machine that others may share: the load average before and after is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from harness.store import default_cache_dir

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache-dir", type=Path, default=default_cache_dir() / "models",
                   help="where the embedded loader keeps the converted model (default: the harness cache's models/)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (vLLM then needs a CUDA build in its venv)")
    p.add_argument("--batches", default="8,32,128")
    p.add_argument("--context-tokens", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=1, help="interleaved timed rounds of ours and generate (median kept)")
    p.add_argument("--vllm-modes", default="eager,compiled", help="comma list of eager, compiled ('' skips vLLM)")
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    return p.parse_args(argv)


def contexts_for(handle: Any, count: int, length: int, new_tokens: int) -> list[list[int]]:
    """The first ``length`` tokens of embedded Wikipedia, then news, documents long enough for a continuation."""
    from harness_plugins.datasets.embedded_news import EmbeddedNews
    from harness_plugins.datasets.embedded_wikipedia import EmbeddedWikipedia

    found: list[list[int]] = []
    for dataset in (EmbeddedWikipedia({}), EmbeddedNews({})):
        for doc in dataset.documents():
            ids = handle.codec.encode(doc.text)
            if len(ids) >= length + new_tokens:
                found.append(ids[:length])
            if len(found) >= count:
                return found
    return [found[i % len(found)] for i in range(count)]  # fewer documents than rows: reuse them


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, device: str, warm_up: bool) -> dict[str, tuple[float, Any]]:
    """Median wall seconds of each function over ``repeats`` rounds (a, b, a, b, ...), after one warm-up each
    (``warm_up``; the first batch size only: allocator and kernels are then set up for the process)."""
    results = {name: fn() for name, fn in fns.items()} if warm_up else {}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            started = time.perf_counter()
            results[name] = fn()
            sync(device)
            times[name].append(time.perf_counter() - started)
    return {name: (statistics.median(times[name]), results[name]) for name in fns}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch
    import transformers

    from harness import vllm_backend as vb
    from harness.api import DecodeContext, LoadContext, pad_batch
    from harness.decoding import pad_id
    from harness_plugins.decoders.greedy import Greedy
    from harness_plugins.models.embedded_smollm2 import EmbeddedSmolLM2

    load_before = os.getloadavg()
    started = time.perf_counter()
    handle = EmbeddedSmolLM2({"dtype": "float32"}).load(LoadContext(device=args.device, cache_dir=args.cache_dir))
    load_s = time.perf_counter() - started
    module, eos, new = handle.module, handle.codec.eos_token_id, args.new_tokens
    batches = [int(b) for b in args.batches.split(",") if b]
    contexts = contexts_for(handle, max(batches), args.context_tokens, new)
    model_dir = vb.export_for_vllm(handle, args.cache_dir / "vllm-export" / f"smollm2-float32-{handle.codec.fingerprint()}")

    rows: list[dict[str, Any]] = []
    ours_outputs: dict[int, list[list[int]]] = {}
    for batch in batches:
        ctxs = contexts[:batch]
        seeds = list(range(batch))
        ids, mask, _ = pad_batch(ctxs, pad_id(handle), module.device, "left")
        config = transformers.GenerationConfig(do_sample=False, max_new_tokens=new, min_new_tokens=new,
                                               pad_token_id=pad_id(handle), eos_token_id=eos, suppress_tokens=[eos])  # fmt: skip

        def ours_fn(ctxs: list[list[int]] = ctxs, seeds: list[int] = seeds) -> Any:
            return Greedy({}).generate(handle, ctxs, new, DecodeContext(seeds=seeds))

        def hf_fn(ids: Any = ids, mask: Any = mask, config: Any = config) -> Any:
            with torch.inference_mode():
                return module.generate(input_ids=ids, attention_mask=mask, generation_config=config)

        timed = interleaved({"ours": ours_fn, "generate": hf_fn}, args.repeats, args.device, warm_up=batch == batches[0])
        (ours_s, ours), (hf_s, hf_out) = timed["ours"], timed["generate"]
        ours_outputs[batch] = [g.output_ids for g in ours]
        hf_rows = hf_out[:, ids.shape[1] :].tolist()
        tokens = batch * new
        rows.append({
            "batch": batch, "generated_tokens": tokens,
            "ours_s": ours_s, "ours_tokens_per_s": tokens / ours_s,
            "generate_s": hf_s, "generate_tokens_per_s": tokens / hf_s, "generate_vs_ours": ours_s / hf_s,
            "generate_identical_rows": sum(a == b for a, b in zip(ours_outputs[batch], hf_rows)),
        })  # fmt: skip
        print(f"batch {batch:4d}: ours {tokens / ours_s:8.1f} tok/s, generate {tokens / hf_s:8.1f} tok/s", flush=True)

    engines: dict[str, Any] = {}
    modes = [m for m in args.vllm_modes.split(",") if m]
    if modes and vb.vllm_python() is None:
        print(f"vLLM is not installed ({vb._candidate_python()}): `bash scripts/setup_vllm.sh`; its columns are skipped")
        modes = []
    for mode in modes:
        warm = contexts[: batches[0]]
        request = vb.build_request(model_dir, "float32", "greedy", {}, warm, new, list(range(len(warm))), False, eos, None)
        # every batch size twice: vLLM's CPU kernels set up per new batch shape on its first batch (seconds),
        # so the first run is reported as "first" and the second, steady state, is the figure
        request["runs"] = [
            {"requests": [{"prompt_token_ids": c, "seed": i} for i, c in enumerate(contexts[:b])]} for b in batches for _ in (0, 1)
        ]
        request["max_model_len"] = args.context_tokens + new
        request["enforce_eager"] = mode == "eager"
        began = time.perf_counter()
        response = vb.run_worker(request)
        wall = time.perf_counter() - began
        engines[mode] = {"load_s": response["seconds"]["load"], "process_wall_s": wall,
                         "vllm_version": response["vllm_version"]}  # fmt: skip
        for n, row in enumerate(rows):
            first, run = response["runs"][2 * n], response["runs"][2 * n + 1]
            row[f"vllm_{mode}_first_s"] = first["generate_s"]
            outs = run["outputs"]
            assert all(len(o) == new and eos not in o for o in outs), "the fixed-length policy was broken"
            row[f"vllm_{mode}_s"] = run["generate_s"]
            row[f"vllm_{mode}_tokens_per_s"] = row["generated_tokens"] / run["generate_s"]
            row[f"vllm_{mode}_vs_ours"] = row["ours_s"] / run["generate_s"]
            row[f"vllm_{mode}_identical_rows"] = sum(a == b for a, b in zip(ours_outputs[row["batch"]], outs))
            print(f"batch {row['batch']:4d}: vLLM {mode} {row[f'vllm_{mode}_tokens_per_s']:8.1f} tok/s "
                  f"({row[f'vllm_{mode}_vs_ours']:.2f}x ours), identical rows {row[f'vllm_{mode}_identical_rows']}/{row['batch']}",
                  flush=True)  # fmt: skip

    report = {
        "model": "SmolLM2-135M-Instruct (embedded-smollm2, float32)",
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "context_tokens": args.context_tokens,
        "new_tokens": new,
        "eos_policy": "fixed length: EOS never chosen (ours: suppressed; generate: suppress_tokens; vLLM: ignore_eos + EOS ban)",
        "repeats": args.repeats,
        "model_load_s": load_s,
        "vllm_engines": engines,
        "rows": rows,
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version()},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "vllm": next(iter(engines.values()))["vllm_version"] if engines else None},  # fmt: skip
        "command": "python benchmarks/perf/vllm_throughput.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    print()
    header = f"{'batch':>5} {'ours tok/s':>11} {'generate':>16}" + "".join(f" {'vLLM ' + m:>24}" for m in engines)
    print(header)
    for row in rows:
        line = f"{row['batch']:>5} {row['ours_tokens_per_s']:>11.1f}"
        line += f" {row['generate_tokens_per_s']:>8.1f} ({row['generate_vs_ours']:.2f}x)"
        for m in engines:
            line += f" {row[f'vllm_{m}_tokens_per_s']:>15.1f} ({row[f'vllm_{m}_vs_ours']:.2f}x)"
        print(line)
    for m, e in engines.items():
        firsts = ", ".join(f"{r['batch']}: {r[f'vllm_{m}_first_s']:.1f} s" for r in rows)
        print(f"vLLM {m}: engine load {e['load_s']:.1f} s; first batch of each size (untimed warm-up) {firsts}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
