"""A bf16 end-to-end benchmark on a random-init model: the one-dtype rule and the stage keys, on the device given.

Builds a random-init Llama (hidden 512, 8 layers; a byte-level BPE tokenizer trained on the embedded Wikipedia
texts) as a local model folder, writes a benchmark (hyperfit with ``precision: auto``, ``dtype: auto``; greedy
and top-p; TTR) and runs ``harness run --device DEVICE`` twice on one cache:

1. cold: the fit trains, and the generations decode the fitted model held in memory;
2. after deleting the stored generations and scores: the fit is read back from the cache and the same
   contexts are decoded again.

Checks (each one recorded in the JSON with its verdict):
* the manifest says the model resolved to bfloat16 and the fit to bf16 on a GPU (float32 / the CPU's choice elsewhere),
  and names the device kind;
* every fit / generate / score stage key is recorded, and the second run reused the fit (trained nothing);
* **one model, one dtype**: the continuations of run 2 (stored fit) equal run 1's (fit in memory), token for token,
  and the scores agree.

Reproduce (GPU; also runs on a CPU with --device cpu):

    python benchmarks/perf/gpu_end_to_end.py --device cuda --out results/perf/gpu-end-to-end.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--work", type=Path, default=None, help="folder for the model, cache and results (default: a temp dir)")
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    return p.parse_args(argv)


def build_model(folder: Path, hidden: int, layers: int) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from harness.testing import save_tiny_hf_model
    from harness_plugins.datasets.embedded_wikipedia import EmbeddedWikipedia

    texts = [doc.text for _, doc in zip(range(300), EmbeddedWikipedia({}).documents())]
    save_tiny_hf_model(folder, texts, vocab_size=2000)
    config = json.loads((folder / "config.json").read_text())
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=config["vocab_size"], hidden_size=hidden, intermediate_size=hidden * 8 // 3, num_hidden_layers=layers,
        num_attention_heads=hidden // 64, num_key_value_heads=max(1, hidden // 256), max_position_embeddings=2048,
        bos_token_id=1, eos_token_id=2, pad_token_id=0,
    ))  # fmt: skip
    model.save_pretrained(folder)
    return folder


BENCHMARK = """\
name: gpu-end-to-end
seed: 0
models:
  rand: {{loader: hf-causal-lm, id: {model}, dtype: auto}}
datasets:
  wiki: {{plugin: embedded-wikipedia}}
  news: {{plugin: embedded-news}}
recipes:
  base: {{plugin: none}}
  hyperfit:
    plugin: hyperfit
    train: {{dataset: wiki, samples: 64, tokens: 128, heldout: 8}}
    lr: 5.0e-4
    epochs: 8
    batch_size: 16
    precision: auto
    curve_every: 4
    curve_contexts: 4
    curve_new_tokens: 32
decoders:
  greedy: {{plugin: greedy}}
  top-p: {{plugin: top-p, p: 0.9}}
eval:
  datasets: [news]
  contexts: 32
  context_tokens: 32
  new_tokens: 96
  batch_size: 16
  bootstrap: 200
metrics:
  ttr: {{plugin: ttr, window: 64}}
"""


def harness(args: list[str], cache: Path) -> tuple[int, str, float]:
    env = {**os.environ, "HARNESS_CACHE": str(cache)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, env=env, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - started


def generations(results: Path) -> dict[str, list[list[int]]]:
    out = {}
    for path in sorted(results.glob("cells/*/generations.jsonl")):
        out[path.parent.name] = [json.loads(line)["output_ids"] for line in path.read_text().splitlines()]
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-e2e-"))
    model = build_model(work / "model", args.hidden, args.layers)
    yaml_path = work / "gpu-end-to-end.yaml"
    yaml_path.write_text(BENCHMARK.format(model=model), encoding="utf-8")
    cache = work / "cache"
    checks: dict[str, Any] = {}
    code, log1, seconds1 = harness(["run", str(yaml_path), "--results", str(work / "r1"), "--device", args.device, "--quiet"], cache)
    if code:
        print(log1, file=sys.stderr)
        return code
    for stage in ("generate", "score"):
        shutil.rmtree(cache / "stages" / stage, ignore_errors=True)
    code, log2, seconds2 = harness(["run", str(yaml_path), "--results", str(work / "r2"), "--device", args.device, "--quiet"], cache)
    if code:
        print(log2, file=sys.stderr)
        return code
    m1 = json.loads((work / "r1" / "gpu-end-to-end" / "manifest.json").read_text())
    m2 = json.loads((work / "r2" / "gpu-end-to-end" / "manifest.json").read_text())
    on_gpu = args.device.startswith("cuda")
    resolved = m1["models"]["rand"]["resolved"]
    fit_settings = m1["fits"].get("rand/hyperfit", {})
    checks["model dtype"] = {"value": resolved, "ok": resolved.get("dtype") == "bfloat16" if on_gpu else True}
    checks["fit precision"] = {"value": fit_settings, "ok": ("bf16" in json.dumps(fit_settings)) if on_gpu else True}
    checks["device kind"] = {"value": m1["models"]["rand"].get("device"), "ok": m1["models"]["rand"].get("device") == ("cuda" if on_gpu else "cpu")}
    keys = m1["stage_keys"]
    checks["stage keys"] = {"value": {k: len(v) for k, v in keys.items()},
                            "ok": bool(keys.get("fit")) and len(keys.get("generate", {})) == 4 and len(keys.get("score", {})) == 4}
    checks["fit reused"] = {"value": m2["stages"], "ok": m2["stages"]["reused"].get("fit") == 1 and not m2["stages"]["computed"].get("fit")}
    g1, g2 = generations(work / "r1" / "gpu-end-to-end"), generations(work / "r2" / "gpu-end-to-end")
    agreement = {cell: sum(a == b for a, b in zip(g1[cell], g2[cell])) / max(1, len(g1[cell])) for cell in g1}
    checks["one dtype (stored fit decodes as the fit in memory)"] = {"value": agreement, "ok": all(v == 1.0 for v in agreement.values())}
    s1 = (work / "r1" / "gpu-end-to-end" / "scores.csv").read_text()
    s2 = (work / "r2" / "gpu-end-to-end" / "scores.csv").read_text()
    checks["scores equal"] = {"ok": s1 == s2}
    import torch

    out = {
        "device": torch.cuda.get_device_name(0) if on_gpu else "cpu",
        "torch": torch.__version__,
        "seconds": {"cold": round(seconds1, 1), "stored_fit": round(seconds2, 1)},
        "timings": m1.get("timings_seconds"),
        "checks": checks,
        "ok": all(c["ok"] for c in checks.values()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v["ok"] for k, v in checks.items()}, indent=2))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
