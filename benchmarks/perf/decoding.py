"""Decoding throughput: our greedy loop vs transformers' generate, and the citation blocker's overhead.

Two measurements at one batch size (default 8); every method is timed in ``--repeats`` interleaved
rounds after a warm-up and the median is kept:

1. generated tokens/s of our ``greedy`` decoder vs a direct ``model.generate(do_sample=False)`` call
   on the same left-padded batch (the outputs are checked to be token-for-token identical, so both
   produce the same tokens and the ratio is a fair speed ratio; ≥ 0.9 expected);
2. seconds per generated token of ``citation-blocked`` (window 5) vs our ``greedy`` on the same
   batch; overhead = blocked / greedy − 1 (target ≤ 10 %). The n-gram index is built before timing
   (its one-off build time is reported separately), as it is once per training set in a run. By
   default each row's context + greedy continuation is added to the training set, so the blocker
   intervenes at nearly every step (its worst case, like a hyperfitted model that wants to copy);
   ``--no-plant`` times it on the training set alone.

Models: ``--model embedded`` (default) loads SmolLM2-135M through the ``embedded-smollm2`` loader from
``--cache-dir`` (the harness cache's ``models/`` folder by default; converted there once if missing),
contexts are the first ``--context-tokens`` tokens of embedded Wikipedia articles and the training
set is ``--train-samples`` non-overlapping ``--train-tokens`` windows of other articles. ``--model
tiny`` is a 2-layer random Llama over bytes with random contexts (a smoke test of this script).

Reproduce (the numbers in the closing note of the decoders issue):

    .venv/bin/python benchmarks/perf/decoding.py --model embedded --batch-size 8 --new-tokens 128 \
        --out results/perf/decoding.json
    .venv/bin/python benchmarks/perf/decoding.py --model tiny --out /tmp/decoding-tiny.json

Prints a small table and writes every number (plus machine and versions) as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from harness.store import default_cache_dir

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("embedded", "tiny"), default="embedded")
    p.add_argument("--cache-dir", type=Path, default=default_cache_dir() / "models",
                   help="where the embedded loader keeps the converted model (default: the harness cache's models/)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--context-tokens", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--train-samples", type=int, default=2000, help="training sequences indexed by the blocker")
    p.add_argument("--train-tokens", type=int, default=256)
    p.add_argument("--window", type=int, default=5, help="citation-blocked window k")
    p.add_argument("--plant", action=argparse.BooleanOptionalAction, default=True,
                   help="add each row's context + greedy continuation to the training set, so the blocker fires "
                        "at most steps (its worst case, as on a hyperfitted model); --no-plant: training set only")
    p.add_argument("--repeats", type=int, default=3, help="interleaved timed rounds (median kept)")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    return p.parse_args(argv)


def load(args: argparse.Namespace) -> tuple[Any, list[list[int]], list[list[int]], str]:
    """(handle, contexts, training sequences, description)."""
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    rng = random.Random(args.seed)
    if args.model == "tiny":
        sys.path.insert(0, str(REPO / "tests"))
        from conftest import tiny_module

        tiny = tiny_module()
        handle = tiny.TinyHandle(tiny.tiny_llama(seed=args.seed).to(device), tiny.ByteCodec(), device=device)
        contexts = [[rng.randrange(2, 258) for _ in range(args.context_tokens)] for _ in range(args.batch_size)]
        train = [[rng.randrange(2, 258) for _ in range(args.train_tokens)] for _ in range(args.train_samples)]
        return handle, contexts, train, "tiny random Llama (2 layers, hidden 32, byte vocabulary)"

    from harness.api import LoadContext
    from harness_plugins.datasets.embedded_wikipedia import EmbeddedWikipedia
    from harness_plugins.models.embedded_smollm2 import EmbeddedSmolLM2

    handle = EmbeddedSmolLM2({"dtype": "float32"}).load(LoadContext(device=device, cache_dir=args.cache_dir))
    docs = [handle.codec.encode(d.text) for d in EmbeddedWikipedia({}).documents()]
    rng.shuffle(docs)
    long_enough = [d for d in docs if len(d) >= args.context_tokens + args.new_tokens]
    if len(long_enough) < args.batch_size:
        raise SystemExit(f"only {len(long_enough)} embedded articles are long enough for one batch")
    contexts = [d[: args.context_tokens] for d in long_enough[: args.batch_size]]
    used = {id(d) for d in long_enough[: args.batch_size]}
    windows = [d[s : s + args.train_tokens] for d in docs if id(d) not in used
               for s in range(0, len(d) - args.train_tokens + 1, args.train_tokens)]  # fmt: skip
    train = rng.sample(windows, min(args.train_samples, len(windows)))
    return handle, contexts, train, "SmolLM2-135M-Instruct (embedded-smollm2, float32)"


def timed(fns: dict[str, Callable[[], Any]], repeats: int, device: str) -> dict[str, tuple[float, Any]]:
    """Median wall time per function over ``repeats`` interleaved rounds, after one warm-up each.

    Interleaving (a, b, c, a, b, c, ...) exposes every method to the same background load, and the
    median ignores single slow rounds, so the ratios are stable on a shared machine.
    """
    import statistics

    import torch

    def sync() -> None:
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()

    results = {name: fn() for name, fn in fns.items()}  # warm-up (allocator, kernels, caches)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            started = time.perf_counter()
            results[name] = fn()
            sync()
            times[name].append(time.perf_counter() - started)
    return {name: (statistics.median(times[name]), results[name]) for name in fns}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch
    import transformers

    from harness.api import DecodeContext
    from harness_plugins.decoders.citation_blocked import CitationBlocked
    from harness_plugins.decoders.greedy import Greedy
    from harness.api import model_device, pad_batch
    from harness.decoding import pad_id

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    handle, contexts, train, described = load(args)
    load_s = time.perf_counter() - started
    module = handle.module
    device = model_device(module)
    eos = handle.codec.eos_token_id
    seeds = list(range(len(contexts)))
    new = args.new_tokens

    # 1. our greedy vs transformers' generate; 2. citation-blocked vs greedy — timed in interleaved rounds
    ids, mask, _ = pad_batch(contexts, pad_id(handle), device, "left")
    config = transformers.GenerationConfig(do_sample=False, max_new_tokens=new, pad_token_id=pad_id(handle), eos_token_id=eos)

    def hf() -> Any:
        with torch.inference_mode():
            return module.generate(input_ids=ids, attention_mask=mask, generation_config=config)

    def ours_fn() -> Any:
        return Greedy({}).generate(handle, contexts, new, DecodeContext(seeds=seeds))

    ours = ours_fn()
    if args.plant:
        train = train + [c + g.output_ids for c, g in zip(contexts, ours)]
    blocked_decoder = CitationBlocked({"window": args.window})
    built = time.perf_counter()
    index = blocked_decoder.index_for(train)
    index_s = time.perf_counter() - built

    def blocked_fn() -> Any:
        return blocked_decoder.generate(handle, contexts, new, DecodeContext(seeds=seeds, train_sequences=train))

    timings = timed({"ours": ours_fn, "hf": hf, "blocked": blocked_fn}, args.repeats, device)
    (ours_s, ours), (hf_s, hf_out), (blocked_s, blocked) = timings["ours"], timings["hf"], timings["blocked"]
    hf_rows = []
    for row in hf_out[:, ids.shape[1] :].tolist():
        hf_rows.append(row[: row.index(eos)] if eos is not None and eos in row else row)
    greedy_tokens = sum(len(g.output_ids) for g in ours)
    identical = [g.output_ids for g in ours] == hf_rows
    blocked_tokens = sum(len(g.output_ids) for g in blocked)
    greedy_per_token = ours_s / max(greedy_tokens, 1)
    blocked_per_token = blocked_s / max(blocked_tokens, 1)

    report = {
        "model": described,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "batch_size": len(contexts),
        "context_tokens": args.context_tokens,
        "new_tokens": new,
        "repeats": args.repeats,
        "load_s": round(load_s, 3),
        "greedy_vs_generate": {
            "ours_s": ours_s,
            "generate_s": hf_s,
            "generated_tokens": greedy_tokens,
            "ours_tokens_per_s": greedy_tokens / ours_s,
            "generate_tokens_per_s": greedy_tokens / hf_s,
            "ratio": hf_s / ours_s,
            "identical_outputs": identical,
        },
        "citation_blocked_vs_greedy": {
            "window": args.window,
            "train_sequences": len(train),
            "planted_greedy_rows": args.plant,
            "train_tokens": args.train_tokens,
            "index_entries": len(index),
            "index_build_s": index_s,
            "greedy_s_per_token": greedy_per_token,
            "blocked_s_per_token": blocked_per_token,
            "overhead": blocked_per_token / greedy_per_token - 1.0,
            "generated_tokens": blocked_tokens,
            "blocked_steps": sum(g.extras.get("blocked_steps", 0) for g in blocked),
        },
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version()},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    g, b = report["greedy_vs_generate"], report["citation_blocked_vs_greedy"]
    print(f"{described} on {device}, batch {len(contexts)}, {args.context_tokens} + {new} tokens, "
          f"{torch.get_num_threads()} threads, median of {args.repeats} interleaved rounds")  # fmt: skip
    print(f"{'measurement':<34} {'value':>14}")
    print(f"{'our greedy tokens/s':<34} {g['ours_tokens_per_s']:>14.1f}")
    print(f"{'generate(do_sample=False) tok/s':<34} {g['generate_tokens_per_s']:>14.1f}")
    print(f"{'ratio ours / generate':<34} {g['ratio']:>14.3f}")
    print(f"{'identical outputs':<34} {str(g['identical_outputs']):>14}")
    print(f"{'greedy ms/token':<34} {1000 * b['greedy_s_per_token']:>14.3f}")
    print(f"{'citation-blocked ms/token':<34} {1000 * b['blocked_s_per_token']:>14.3f}")
    print(f"{'blocker overhead per token':<34} {100 * b['overhead']:>13.1f}%")
    print(f"{'blocked steps (all rows)':<34} {b['blocked_steps']:>14d}")
    print(f"{'index build (once per train set)':<34} {b['index_build_s']:>13.2f}s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
