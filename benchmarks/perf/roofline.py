"""A roofline for this machine: its measured matmul peak and memory bandwidth, and our loops against them.

Peaks (measured here, not taken from a datasheet):

* **matmul peak** per dtype: the best of ``--repeats`` timings of an n × n × n matmul (2·n³ FLOP), after a
  warm-up, for float32 and bfloat16 (n = ``--matmul-n``);
* **memory bandwidth**: the best of ``--repeats`` timings of summing a ``--stream-mib`` MiB float32 tensor
  (bytes read / seconds: the access pattern of decoding, which streams every weight once per step).

Our loops, on the embedded SmolLM2-135M (or ``--model tiny``):

* **training**: the recipe loop (``harness_plugins.recipes._trainer.train`` with the hyperfit params) on
  batches of 8 × 128 tokens, in fp32 and in bf16 autocast; achieved FLOP/s = 6 · parameters · tokens/s
  (forward + backward; attention's own FLOPs left out, ~4% at 128 tokens), as a fraction of the matmul peak
  of the dtype the matmuls run in;
* **greedy decoding** at batch 1, 8 and 32 (``harness.api.decode``: KV cache, 32-token contexts,
  ``--new-tokens`` new) with float32 and bfloat16 weights; achieved FLOP/s = 2 · parameters · tokens/s, and
  bytes moved per generated token = (weight bytes + the KV cache read at the mean position) / batch, whose
  product with tokens/s is set against the measured bandwidth. At batch 1 decoding is bandwidth-bound;
  at batch 32 it moves toward the compute roof.

Every figure is a ratio against peaks measured in the same process. The same script runs on a GPU
(``--device cuda``; timings synchronise the device).

Reproduce (the table in docs/performance.md):

    .venv/bin/python benchmarks/perf/roofline.py --out results/perf/roofline.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("embedded", "tiny"), default="embedded")
    p.add_argument("--device", default="cpu")
    p.add_argument("--matmul-n", type=int, default=2048)
    p.add_argument("--stream-mib", type=int, default=512)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--updates", type=int, default=3, help="training updates per timing")
    p.add_argument("--new-tokens", type=int, default=48)
    p.add_argument("--batches", default="1,8,32")
    p.add_argument("--out", type=Path)
    return p.parse_args(argv)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def best_seconds(fn: Callable[[], Any], device: str, repeats: int) -> float:
    fn()  # warm-up: kernels chosen, caches filled
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak(dtype: Any, n: int, device: str, repeats: int) -> float:
    import torch

    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    return 2 * n**3 / best_seconds(lambda: a @ b, device, repeats)


def stream_bandwidth(mib: int, device: str, repeats: int) -> float:
    import torch

    x = torch.ones(mib * 2**20 // 4, dtype=torch.float32, device=device)
    return x.numel() * 4 / best_seconds(lambda: x.sum(), device, repeats)


def load_model(args: argparse.Namespace) -> Any:
    if args.model == "embedded":
        from harness.api import LoadContext
        from harness.store import default_cache_dir
        from harness_plugins.models.embedded_smollm2 import EmbeddedSmolLM2

        return EmbeddedSmolLM2({}).load(LoadContext(device=args.device, cache_dir=default_cache_dir() / "models"))
    from harness.testing import ByteCodec, TinyHandle, tiny_llama

    return TinyHandle(tiny_llama().to(args.device), ByteCodec(), device=args.device)


def parameter_count(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())  # tied embeddings counted once


def kv_bytes_per_position(module: Any, element_bytes: int) -> int:
    config = module.config
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * heads * head_dim * element_bytes


def training_rate(handle: Any, precision: str, args: argparse.Namespace) -> float:
    """Training tokens/s of our recipe loop at ``precision`` (best of repeats)."""
    import random

    from harness.api import FitContext
    from harness.params import resolve_params
    from harness_plugins.recipes._trainer import train
    from harness_plugins.recipes.hyperfit import Hyperfit

    batch, tokens = 8, 128
    vocab = int(handle.module.config.vocab_size)
    rng = random.Random(0)
    data = [[rng.randrange(vocab) for _ in range(tokens)] for _ in range(batch * args.updates)]
    config, _ = resolve_params(Hyperfit.params, {"lr": 1e-6, "batch_size": batch, "updates": args.updates,
                                                 "curve_every": 0, "checkpoint_minutes": 0.0, "precision": precision})  # fmt: skip
    state = {k: v.detach().clone() for k, v in handle.module.state_dict().items()}

    def fit() -> None:
        with tempfile.TemporaryDirectory() as work:
            train(handle, data, FitContext(seed=0, work_dir=Path(work)), config)
        handle.module.load_state_dict(state)

    seconds = best_seconds(fit, args.device, max(1, args.repeats // 2))
    return batch * tokens * args.updates / seconds


def decoding_rate(handle: Any, batch: int, args: argparse.Namespace) -> float:
    """Generated tokens/s of greedy decoding at ``batch`` rows (best of repeats)."""
    import random

    from harness.api import decode

    vocab = int(handle.module.config.vocab_size)
    rng = random.Random(batch)
    contexts = [[rng.randrange(vocab) for _ in range(32)] for _ in range(batch)]
    seconds = best_seconds(lambda: decode(handle, contexts, args.new_tokens, [0] * batch), args.device, max(1, args.repeats // 2))
    return batch * args.new_tokens / seconds


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import torch

    from harness.precision import cpu_native_bf16

    peaks = {
        "float32": matmul_peak(torch.float32, args.matmul_n, args.device, args.repeats),
        "bfloat16": matmul_peak(torch.bfloat16, args.matmul_n, args.device, args.repeats),
    }
    bandwidth = stream_bandwidth(args.stream_mib, args.device, args.repeats)
    handle = load_model(args)
    params = parameter_count(handle.module)
    rows: list[dict[str, Any]] = []
    for precision, dtype in (("fp32", "float32"), ("bf16", "bfloat16")):
        rate = training_rate(handle, precision, args)
        flops = 6 * params * rate
        rows.append({"loop": f"training {precision} (8×128)", "tokens_per_s": rate, "flops": flops,
                     "peak": peaks[dtype], "flop_fraction": flops / peaks[dtype]})  # fmt: skip
    for dtype_name in ("float32", "bfloat16"):
        handle.module.to(getattr(torch, dtype_name))
        element = 4 if dtype_name == "float32" else 2
        weights = params * element
        mean_position = 32 + args.new_tokens / 2
        for batch in [int(b) for b in args.batches.split(",")]:
            rate = decoding_rate(handle, batch, args)
            flops = 2 * params * rate
            per_token = (weights + batch * mean_position * kv_bytes_per_position(handle.module, element)) / batch
            rows.append({
                "loop": f"greedy {dtype_name} batch {batch}", "tokens_per_s": rate, "flops": flops,
                "peak": peaks[dtype_name], "flop_fraction": flops / peaks[dtype_name],
                "bytes_per_token": per_token, "bandwidth_fraction": per_token * rate / bandwidth,
            })  # fmt: skip
    handle.module.float()
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "device": args.device,
                    "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "cpu_native_bf16": cpu_native_bf16(), "torch": torch.__version__},  # fmt: skip
        "model": args.model, "parameters": params,
        "matmul_peak_flops": peaks, "matmul_n": args.matmul_n, "stream_bandwidth_bytes_per_s": bandwidth,
        "rows": rows,
    }  # fmt: skip
    print(markdown(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def markdown(result: dict[str, Any]) -> str:
    peaks = result["matmul_peak_flops"]
    lines = [
        f"peaks: matmul {result['matmul_n']}³ float32 {peaks['float32'] / 1e9:.0f} GFLOP/s, "
        f"bfloat16 {peaks['bfloat16'] / 1e9:.0f} GFLOP/s; memory read {result['stream_bandwidth_bytes_per_s'] / 1e9:.1f} GB/s "
        f"({result['machine']['threads']} threads, {result['parameters'] / 1e6:.1f}M parameters)",
        "",
        "| loop | tokens/s | achieved GFLOP/s | of matmul peak | MB moved / token | of bandwidth |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        moved = f"{row['bytes_per_token'] / 1e6:.1f}" if "bytes_per_token" in row else "–"
        share = f"{row['bandwidth_fraction']:.0%}" if "bandwidth_fraction" in row else "–"
        lines.append(f"| {row['loop']} | {row['tokens_per_s']:.1f} | {row['flops'] / 1e9:.1f} | "
                     f"{row['flop_fraction']:.1%} | {moved} | {share} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
