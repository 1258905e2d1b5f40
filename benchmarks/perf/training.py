"""Training throughput and memory: the harness's recipe loop vs a plain fp32 loop like the official code.

Throughput: both loops run in the same process on the same model, batch and sequence length, in
``--repeats`` interleaved rounds of ``--updates`` optimizer updates after a warm-up; the median
tokens/s of each is kept and the ratio ours / plain reported (≈ 1 expected at equal settings: the
harness adds bookkeeping, not arithmetic).

* **ours**: ``harness_plugins/recipes/_trainer.train`` with the ``hyperfit`` params (Adam, wd 0, dropout off),
  curves and checkpoints off, at ``--precision`` (fp32 on CPU; bf16 autocast on a GPU by default);
* **plain**: what the paper's official code does per step — AdamW with its default weight decay, no
  autocast, ``model(input_ids, labels=input_ids).loss.backward(); step(); zero_grad()``.

Memory: on CUDA, ``torch.cuda.max_memory_allocated`` around each method (reset between them). On CPU,
each method also runs once in a child process and its peak RSS is reported (a process-wide figure
cannot be split within one process).

Models: ``--model embedded`` (SmolLM2-135M from the wheel, the offline default), ``--model tinyllama``
(a randomly initialised model of TinyLlama-1.1B's shape: 22 layers, hidden 2048, 32 heads, 4 KV heads,
vocab 32000; ``--layers`` shrinks it for a smoke test), ``--model tiny`` (2-layer toy). Model FLOPs
utilisation on CUDA = 6 · parameters · tokens/s / ``--peak-tflops`` (989 = H100 SXM dense bf16).

Reproduce:

    .venv/bin/python benchmarks/perf/training.py --model embedded --out results/perf/training.json
    # on a GPU machine (random init, no download):
    python benchmarks/perf/training.py --model tinyllama --device cuda --tokens 256 --out results/perf/training-gpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from harness.store import default_cache_dir

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("embedded", "tinyllama", "tiny"), default="embedded")
    p.add_argument("--layers", type=int, default=0, help="tinyllama only: override the layer count (0: 22)")
    p.add_argument("--cache-dir", type=Path, default=default_cache_dir() / "models")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--precision", default="", help="our loop's precision (default: fp32 on CPU, bf16 on CUDA)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--tokens", type=int, default=128, help="tokens per sequence")
    p.add_argument("--updates", type=int, default=3, help="updates per timed round")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (median kept)")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="accelerator peak for MFU (H100 SXM bf16 dense)")
    p.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                   help="on CPU, also measure each method's peak RSS in a child process")
    p.add_argument("--only", choices=("ours", "plain"), help=argparse.SUPPRESS)  # child-process mode
    p.add_argument("--out", type=Path, help="JSON file to write")
    return p.parse_args(argv)


def build(args: argparse.Namespace) -> tuple[Any, str]:
    """(handle, device) for the chosen model."""
    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if args.model == "embedded":
        from harness.api import LoadContext
        from harness_plugins.models.embedded_smollm2 import EmbeddedSmolLM2

        handle = EmbeddedSmolLM2({}).load(LoadContext(device=device, cache_dir=args.cache_dir))
        return handle, device
    sys.path.insert(0, str(REPO / "tests"))
    from harness.testing import ByteCodec, TinyHandle

    if args.model == "tiny":
        from harness.testing import tiny_llama

        return TinyHandle(tiny_llama().to(device), ByteCodec(), device=device), device
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=args.layers or 22,
        num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048,
    )  # fmt: skip
    module = LlamaForCausalLM(config).to(device)
    return TinyHandle(module, ByteCodec(), device=device), device


def batches(args: argparse.Namespace, vocab: int, count: int) -> list[list[int]]:
    import random

    rng = random.Random(0)
    return [[rng.randrange(vocab) for _ in range(args.tokens)] for _ in range(count)]


def run_ours(handle: Any, data: list[list[int]], args: argparse.Namespace, precision: str) -> None:
    from harness.api import FitContext
    from harness.params import resolve_params
    from harness_plugins.recipes.hyperfit import Hyperfit
    from harness_plugins.recipes._trainer import train

    config, _ = resolve_params(Hyperfit.params, {
        "lr": 1e-6, "batch_size": args.batch_size, "updates": args.updates, "curve_every": 0,
        "checkpoint_minutes": 0.0, "precision": precision,
    })  # fmt: skip
    with tempfile.TemporaryDirectory() as work:
        train(handle, data, FitContext(seed=0, work_dir=Path(work)), config)


def run_plain(handle: Any, data: list[list[int]], args: argparse.Namespace) -> None:
    """The official code's step: AdamW (default weight decay), fp32, no autocast."""
    import torch

    module = handle.module
    device = next(module.parameters()).device
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-6)
    module.train()
    for step in range(args.updates):
        batch = torch.tensor(data[step * args.batch_size : (step + 1) * args.batch_size], device=device)
        loss = module(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    module.eval()
    del optimizer


def timed(fn: Any, device: str) -> tuple[float, int | None]:
    """(seconds, peak CUDA bytes or None)."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        return time.perf_counter() - started, int(torch.cuda.max_memory_allocated())
    return time.perf_counter() - started, None


def child_peak_rss(args: argparse.Namespace, method: str) -> float:
    """Peak RSS (MiB) of a child process that loads the model and runs one round of ``method``."""
    command = [sys.executable, str(HERE), "--model", args.model, "--device", "cpu", "--batch-size", str(args.batch_size),
               "--tokens", str(args.tokens), "--updates", str(args.updates), "--only", method,
               "--cache-dir", str(args.cache_dir), "--layers", str(args.layers)]  # fmt: skip
    if args.precision:
        command += ["--precision", args.precision]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    args = parse_args(argv)
    handle, device = build(args)
    precision = args.precision or ("bf16" if device.startswith("cuda") else "fp32")
    vocab = int(handle.module.config.vocab_size)
    data = batches(args, vocab, args.batch_size * args.updates)
    if args.only:
        run_ours(handle, data, args, precision) if args.only == "ours" else run_plain(handle, data, args)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return {}
    parameters = sum(p.numel() for p in handle.module.parameters())
    tokens = args.batch_size * args.tokens * args.updates
    run_ours(handle, data, args, precision)  # warm-up both
    run_plain(handle, data, args)
    seconds: dict[str, list[float]] = {"ours": [], "plain": []}
    peaks: dict[str, int | None] = {}
    for _ in range(args.repeats):
        for name, fn in (("ours", lambda: run_ours(handle, data, args, precision)), ("plain", lambda: run_plain(handle, data, args))):
            elapsed, peak = timed(fn, device)
            seconds[name].append(elapsed)
            peaks[name] = peak if peak is not None else peaks.get(name)
    rate = {name: tokens / statistics.median(values) for name, values in seconds.items()}
    result: dict[str, Any] = {
        "model": args.model, "parameters": parameters, "device": device,
        "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "precision_ours": precision, "precision_plain": "fp32",
        "batch_size": args.batch_size, "tokens_per_sequence": args.tokens, "updates_per_round": args.updates,
        "repeats": args.repeats, "seconds": seconds,
        "tokens_per_second": rate, "ratio_ours_over_plain": rate["ours"] / rate["plain"],
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }  # fmt: skip
    if device.startswith("cuda"):
        result["peak_memory_gib"] = {k: v / 2**30 for k, v in peaks.items() if v is not None}
        result["mfu"] = {k: 6 * parameters * r / (args.peak_tflops * 1e12) for k, r in rate.items()}
    elif args.memory:
        result["peak_rss_mib"] = {method: child_peak_rss(args, method) for method in ("ours", "plain")}
    print(f"{args.model} on {device}: {parameters / 1e6:.1f} M parameters, batch {args.batch_size} × {args.tokens} tokens")
    for name in ("ours", "plain"):
        extra = ""
        if "peak_memory_gib" in result:
            extra = f"  peak {result['peak_memory_gib'][name]:.2f} GiB  MFU {result['mfu'][name]:.1%}"
        elif "peak_rss_mib" in result:
            extra = f"  peak RSS {result['peak_rss_mib'][name]:.0f} MiB"
        print(f"  {name:5s} ({precision if name == 'ours' else 'fp32'}): {rate[name]:9.1f} tokens/s{extra}")
    print(f"  ratio ours / plain: {result['ratio_ours_over_plain']:.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
