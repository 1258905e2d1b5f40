"""Estimated GPU hours and memory of benchmarks on H100s, computed from the benchmark YAMLs.

ESTIMATES, NOT MEASUREMENTS. Every number comes from a roofline over stated assumptions (ASSUMPTIONS
below: peak FLOP/s, model FLOP utilisation, memory and link bandwidths) and the model sizes in MODELS.
Replace the assumed utilisation with the measured tokens/s of ``benchmarks/perf/training.py --model tinyllama --device cuda``
when a GPU run exists. What is counted:

* Training, per fit (model x training recipe): 6·N FLOPs per trained token (8·N with gradient
  checkpointing) over ``updates × batch_size × train.tokens`` tokens; per update the time is
  max(compute, collective communication) + the optimizer step (memory-bound, or CPU Adam when the
  optimizer state is offloaded). Curve points (held-out loss: 2·N per token; greedy continuations:
  memory-bound decode steps) are added. Attention FLOPs are left out (<2% at 256 tokens).
* Memory per GPU for training: weights + gradients + Adam state (bytes/param by layout and precision),
  activations after Korthikanti et al. 2022 (s·b·h·(34 + 5·a·s/h) bytes per layer in 16-bit, doubled in
  fp32; 2·s·b·h per layer plus one layer with gradient checkpointing) and the logits.
* Generation, per cell x eval dataset: ``new_tokens`` decode steps per batch; a step costs
  max(weight bytes / HBM bandwidth, 2·N·batch FLOPs / compute) plus the KV-cache read. The batch is the
  largest power of two (≤ 256) whose KV cache fits next to the weights, as ``batch_size: auto`` probes.
* GPU-side scoring: teacher-forced passes (tf-*, perplexity: one per cell and dataset; top1-agreement:
  two), MAUVE's featurizer (gpt2-large or the model) and the judge model of judge-preference.
  CPU metrics (TTR, Self-BLEU, copying) are not counted.

Layouts: ``1gpu``; ``ddp8`` (data parallel, full replica per GPU); ``fsdp8`` (full shard over 8 GPUs of one
machine); ``zero3-8-offload`` (DeepSpeed ZeRO-3 on 8 GPUs, bf16 weights and gradients on the GPUs, fp32
master weights and Adam state in host RAM); ``zero3-64`` (8 machines x 8 GPUs). The trainer splits
``batch_size`` over the processes, so a layout whose process count does not divide it is marked impossible.

Usage::

    .venv/bin/python benchmarks/perf/cost_model.py                      # the paper-*.yaml benchmarks
    .venv/bin/python benchmarks/perf/cost_model.py benchmarks/paper-text.yaml --limit 5
    .venv/bin/python benchmarks/perf/cost_model.py --out results/perf/cost_model.json --doc docs/cost.md
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GB = 1e9

#: H100 SXM 80 GB (NVIDIA datasheet, dense) plus the utilisation we assume. Change here, rerun, commit.
ASSUMPTIONS: dict[str, Any] = {
    "gpu": "NVIDIA H100 SXM 80 GB",
    "gpu_memory_bytes": 80e9,
    "usable_memory_fraction": 0.85,          # CUDA context, allocator fragmentation, NCCL buffers
    "peak_flops": {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12},   # fp32 without TF32 (torch default)
    "mfu": {"bf16": 0.35, "fp16": 0.35, "fp32": 0.5},   # ASSUMED training utilisation at 1-8 x 256 tokens/GPU
    "inference_mfu": 0.4,                    # ASSUMED for prefill / teacher-forced passes
    "hbm_bytes_per_s": 3.35e12,
    "hbm_efficiency": 0.7,                   # ASSUMED share of HBM bandwidth a decode step reaches
    "nvlink_bytes_per_s": 300e9,             # ASSUMED NCCL bus bandwidth per GPU inside one machine
    "internode_bytes_per_s": 50e9,           # ASSUMED per GPU across machines (8 x 400 Gb/s per machine)
    "pcie_bytes_per_s": 25e9,                # ASSUMED effective host<->GPU bandwidth per GPU (ZeRO offload)
    "cpu_adam_params_per_s": 4e9,            # ASSUMED DeepSpeed CPU-Adam rate per machine (order of magnitude)
    "max_auto_batch": 256,
    "judge_prompt_tokens": 150,              # instructions around context + two continuations
    "judge_batch_size": 4,
    "decoder_multipliers": {"contrastive": 2.0, "citation-blocked": 1.11, "beam": 4.0},
}


@dataclass(frozen=True)
class ModelSpec:
    params: float       # parameter count N
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    positions: int = 0  # image models: tokens per image (context_fraction applies to it)
    note: str = ""


#: parameter counts and shapes from the models' config.json files (rounded counts where noted)
MODELS: dict[str, ModelSpec] = {
    "TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T": ModelSpec(1.100048384e9, 22, 2048, 32, 4, 64, 32000),
    "TinyLlama/TinyLlama_v1.1": ModelSpec(1.100048384e9, 22, 2048, 32, 4, 64, 32000),
    "deepseek-ai/deepseek-llm-7b-base": ModelSpec(6.910365696e9, 30, 4096, 32, 32, 128, 102400),
    "meta-llama/Llama-3.1-8B": ModelSpec(8.030261248e9, 32, 4096, 32, 8, 128, 128256),
    "meta-llama/Llama-3.1-70B": ModelSpec(70.553706496e9, 80, 8192, 64, 8, 128, 128256),
    "Qwen/Qwen2.5-7B-Instruct": ModelSpec(7.615616512e9, 28, 3584, 28, 4, 128, 152064),
    "gpt2-large": ModelSpec(0.774030080e9, 36, 1280, 20, 20, 64, 50257),
    # hub config.json: n_layer 48, n_embd 1536, n_head 16, vocab 513 -> 12·L·d² + embeddings ≈ 1.36e9;
    # the paper says 774M (which is GPT-2 large's count); we follow the config
    "openai/imagegpt-large": ModelSpec(
        1.362e9, 48, 1536, 16, 16, 96, 513, positions=1024,
        note="≈1.36e9 from the hub config (48 x 1536); the paper states 774M",
    ),
}

BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "auto": 2}


@dataclass
class Layout:
    name: str
    gpus: int
    machines: int = 1
    kind: str = "single"     # single | ddp | fsdp | zero3
    offload: bool = False


LAYOUTS = [
    Layout("1gpu", 1),
    Layout("ddp8", 8, kind="ddp"),
    Layout("fsdp8", 8, kind="fsdp"),
    Layout("zero3-8-offload", 8, kind="zero3", offload=True),
    Layout("zero3-64", 64, machines=8, kind="zero3"),
]


# ---------------------------------------------------------------- arithmetic (unit-tested)

def train_tokens(updates: int, batch: int, tokens: int) -> int:
    return updates * batch * tokens


def train_flops(n_params: float, tokens: int, checkpointing: bool = False) -> float:
    """6·N per token (forward 2·N + backward 4·N); gradient checkpointing recomputes the forward: 8·N."""
    return (8.0 if checkpointing else 6.0) * n_params * tokens


def total_updates(samples: int, batch: int, epochs: int, updates: int = 0) -> int:
    """As the trainer: ``updates`` when set, else epochs × (samples // batch)."""
    return updates or epochs * (samples // batch)


def curve_points(total: int, per_epoch: int, curve_every: int) -> int:
    """Points logged: one before training and one every ``curve_every`` epochs (fractional last epoch counts)."""
    if curve_every <= 0:
        return 0
    return 1 + math.ceil(total / per_epoch / curve_every)


def state_bytes_per_param(layout: Layout, weight_bytes: int, precision: str) -> tuple[float, float]:
    """(bytes per parameter on the GPUs in total, on the host in total) for weights + grads + Adam.

    Torch Adam keeps moments in the weights' dtype: fp32 weights → 4 + 4 + 8 = 16 B/param whatever the
    autocast. ZeRO-3 in bf16: 2 (weights) + 2 (grads) on the GPUs, fp32 master + moments (12) + fp32
    gradient partition (4) on the host when offloaded, else on the GPUs.
    """
    if layout.kind == "zero3":
        return (4.0, 16.0) if layout.offload else (20.0, 0.0)
    return (4.0 * weight_bytes, 0.0)


def activation_bytes(spec: ModelSpec, micro: int, seq: int, precision: str, checkpointing: bool) -> float:
    s, b, h, a, L = seq, micro, spec.hidden, spec.heads, spec.layers
    per_layer = s * b * h * (34 + 5 * a * s / h)
    if precision == "fp32":
        per_layer *= 2
    acts = (2 * s * b * h * L + per_layer) if checkpointing else per_layer * L
    logits = s * b * spec.vocab * 10  # bf16 logits + fp32 log-softmax + its gradient
    return acts + logits


def decode_step_seconds(spec: ModelSpec, weight_bytes: int, batch: int, kv_bytes_per_token: float, length: int,
                        a: dict[str, Any]) -> float:
    bw = a["hbm_bytes_per_s"] * a["hbm_efficiency"]
    memory = (spec.params * weight_bytes + batch * kv_bytes_per_token * length) / bw
    compute = 2 * spec.params * batch / (a["peak_flops"]["bf16" if weight_bytes == 2 else "fp32"] * a["inference_mfu"])
    return max(memory, compute)


def kv_bytes_per_token(spec: ModelSpec, dtype_bytes: int) -> float:
    return 2 * spec.layers * spec.kv_heads * spec.head_dim * dtype_bytes


def auto_batch(spec: ModelSpec, weight_bytes: int, length: int, a: dict[str, Any]) -> int:
    free = a["gpu_memory_bytes"] * a["usable_memory_fraction"] - spec.params * weight_bytes
    per_seq = kv_bytes_per_token(spec, weight_bytes) * length + length * spec.vocab * 4 / 8  # + a logits slice
    if free <= per_seq:
        return 0
    batch = 1
    while batch * 2 * per_seq <= free and batch * 2 <= a["max_auto_batch"]:
        batch *= 2
    return batch


def forward_seconds(n_params: float, tokens: float, weight_bytes: int, batches: int, a: dict[str, Any]) -> float:
    """A teacher-forced / prefill pass: compute-bound, but never faster than reading the weights per batch."""
    peak = a["peak_flops"]["bf16" if weight_bytes == 2 else "fp32"]
    compute = 2 * n_params * tokens / (peak * a["inference_mfu"])
    memory = batches * n_params * weight_bytes / (a["hbm_bytes_per_s"] * a["hbm_efficiency"])
    return max(compute, memory)


# ---------------------------------------------------------------- training

def fit_estimate(spec: ModelSpec, weight_bytes: int, recipe: dict[str, Any], train: dict[str, Any], layout: Layout,
                 a: dict[str, Any]) -> dict[str, Any]:
    batch, samples, seq = recipe["batch_size"], train["samples"], train["tokens"]
    per_epoch = samples // batch
    updates = total_updates(samples, batch, recipe["epochs"], recipe.get("updates", 0))
    tokens = train_tokens(updates, batch, seq)
    ckpt = bool(recipe.get("gradient_checkpointing"))
    precision = recipe.get("precision", "fp32")
    if layout.kind == "zero3" or weight_bytes == 2:
        precision = "bf16" if precision == "fp32" else precision  # 16-bit weights compute in 16 bits
    out: dict[str, Any] = {"layout": layout.name, "gpus": layout.gpus, "updates": updates, "train_tokens": tokens}
    if batch % layout.gpus:
        out.update(possible=False, why=f"batch_size {batch} does not split over {layout.gpus} processes")
        return out
    per_rank = batch // layout.gpus
    micro = recipe.get("micro_batch_size") or per_rank
    # memory per GPU
    gpu_state, host_state = state_bytes_per_param(layout, weight_bytes, precision)
    sharded = layout.kind in ("fsdp", "zero3")
    state = spec.params * gpu_state / (layout.gpus if sharded else 1)
    unit = 2 * (spec.params / spec.layers) * (2 if layout.kind == "zero3" else weight_bytes) if sharded else 0.0
    acts = activation_bytes(spec, micro, seq, precision, ckpt)
    memory = state + unit + acts
    usable = a["gpu_memory_bytes"] * a["usable_memory_fraction"]
    # time per update
    flops = train_flops(spec.params, batch * seq, ckpt)
    compute = flops / (layout.gpus * a["peak_flops"][precision] * a["mfu"][precision])
    link = a["nvlink_bytes_per_s"] if layout.machines == 1 else a["internode_bytes_per_s"]
    frac = (layout.gpus - 1) / layout.gpus
    if layout.kind == "ddp":
        comm = 2 * frac * spec.params * weight_bytes / link
    elif layout.kind == "fsdp":
        comm = 3 * frac * spec.params * weight_bytes / link
    elif layout.kind == "zero3":
        comm = 3 * frac * spec.params * 2 / link
    else:
        comm = 0.0
    if layout.offload:
        transfer = 2 * spec.params * 2 / layout.gpus / a["pcie_bytes_per_s"]  # bf16 grads out, weights back
        optimizer = transfer + spec.params / layout.machines / a["cpu_adam_params_per_s"]
    else:
        adam_bytes = 28 if weight_bytes == 4 or layout.kind == "zero3" else 14
        optimizer = spec.params * adam_bytes / (layout.gpus if sharded else 1) / a["hbm_bytes_per_s"]
    step = max(compute, comm) + optimizer
    # curve points: held-out loss pass + greedy continuations (sharded weights are gathered every step)
    points = curve_points(updates, per_epoch, recipe.get("curve_every", 1))
    heldout_tokens = train.get("heldout", 0) * seq
    curve_gen_steps = recipe.get("curve_new_tokens", 96) if recipe.get("curve_contexts", 8) else 0
    comm_bytes = 2 if layout.kind == "zero3" else weight_bytes
    gather = frac * spec.params * comm_bytes / link if sharded else 0.0  # sharded weights are gathered per step
    step_decode = max(spec.params * comm_bytes / (layout.gpus if sharded else 1) / (a["hbm_bytes_per_s"] * a["hbm_efficiency"]),
                      gather)
    point = forward_seconds(spec.params / layout.gpus, heldout_tokens, weight_bytes, max(1, heldout_tokens // (8 * seq)), a) \
        + curve_gen_steps * step_decode
    seconds = updates * step + points * point
    out.update(
        possible=True,
        fits=memory <= usable,
        memory_gb_per_gpu=round(memory / GB, 1),
        host_memory_gb=round(spec.params * host_state / GB, 0) if host_state else 0,
        seconds_per_update=round(step, 4),
        bound="communication" if comm > compute else "compute",
        curve_points=points,
        hours=seconds / 3600,
        gpu_hours=seconds / 3600 * layout.gpus,
    )
    return out


def choose_layout(estimates: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The fitting layout with the fewest GPU hours (ties: fewer GPUs)."""
    fitting = [e for e in estimates if e.get("possible") and e.get("fits")]
    return min(fitting, key=lambda e: (round(e["gpu_hours"], 2), e["gpus"])) if fitting else None


# ---------------------------------------------------------------- eval

def eval_lengths(bench: Any, spec: ModelSpec) -> tuple[int, int]:
    ev = bench.eval
    if ev.context_fraction is not None and spec.positions:
        ctx = round(spec.positions * ev.context_fraction)
        return ctx, spec.positions - ctx
    return ev.context_tokens, ev.new_tokens


def generation_estimate(bench: Any, model_key: str, spec: ModelSpec, weight_bytes: int, contexts: int,
                        a: dict[str, Any]) -> dict[str, Any]:
    ctx, new = eval_lengths(bench, spec)
    length = ctx + new
    batch = auto_batch(spec, weight_bytes, length, a) if bench.eval.batch_size == "auto" else int(bench.eval.batch_size)
    if batch == 0:
        return {"fits_one_gpu": False, "weights_gb": round(spec.params * weight_bytes / GB, 1), "gpu_hours": None}
    kv = kv_bytes_per_token(spec, weight_bytes)
    seconds, continuations, tokens = 0.0, 0, 0
    for cell in (c for c in bench.cells if c.model == model_key):
        decoder = bench.decoders[cell.decoder]
        draws = 1 if decoder.registration.cls.deterministic else bench.eval.samples_per_prompt
        mult = a["decoder_multipliers"].get(decoder.plugin, 1.0)
        rows = contexts * draws
        for _ in bench.eval.datasets:
            batches = math.ceil(rows / batch)
            last = rows - (batches - 1) * batch
            for b in [batch] * (batches - 1) + [last]:
                seconds += mult * new * decode_step_seconds(spec, weight_bytes, b, kv, length, a)
                seconds += forward_seconds(spec.params, b * ctx, weight_bytes, 1, a)
            continuations += rows
            tokens += rows * new
    return {"fits_one_gpu": True, "batch": batch, "continuations": continuations, "generated_tokens": tokens,
            "gpu_hours": seconds / 3600}


def scoring_estimate(bench: Any, model_key: str, spec: ModelSpec, weight_bytes: int, contexts: int,
                     a: dict[str, Any]) -> dict[str, Any]:
    ctx, new = eval_lengths(bench, spec)
    cells = [c for c in bench.cells if c.model == model_key]
    texts = contexts * len(bench.eval.datasets)
    seconds, notes = 0.0, []
    spans = {m.params.get("span") for m in bench.metrics.values() if m.plugin in ("tf-entropy", "tf-topk-prob", "perplexity")}
    tf_passes = len(spans) + 2 * sum(1 for m in bench.metrics.values() if m.plugin == "top1-agreement")
    tokens = texts * (ctx + new)
    seconds += len(cells) * tf_passes * forward_seconds(spec.params, tokens, weight_bytes, math.ceil(texts / 8), a)
    for m in bench.metrics.values():
        if m.plugin in ("mauve", "coherence"):
            feat = m.params.get("featurizer", "minilm")
            fspec, fbytes = (MODELS["gpt2-large"], 4) if feat == "gpt2-large" else (spec, weight_bytes) if feat == "model" else (None, 0)
            if fspec is not None:
                # generations + human references, both embedded once (features are cached per text)
                seconds += len(cells) * forward_seconds(fspec.params, 2 * texts * new * 1.3, fbytes, math.ceil(2 * texts / 32), a)
        if m.plugin == "judge-preference" and not m.params.get("url"):
            judge = MODELS.get(m.params["model"])
            if judge is None:
                notes.append(f"judge {m.params['model']} not in MODELS: not counted")
                continue
            prompts = len(cells) * texts * 2
            prompt_tokens = prompts * (a["judge_prompt_tokens"] + ctx + 2 * new)
            batches = math.ceil(prompts / a["judge_batch_size"])
            seconds += forward_seconds(judge.params, prompt_tokens, 2, batches, a)
            seconds += batches * m.params.get("max_new_tokens", 8) * decode_step_seconds(
                judge, 2, a["judge_batch_size"], kv_bytes_per_token(judge, 2), a["judge_prompt_tokens"] + ctx + 2 * new, a)
    return {"gpu_hours": seconds / 3600, "notes": notes}


# ---------------------------------------------------------------- per benchmark

def fit_identity(model: Any, recipe: Any) -> str:
    return json.dumps([model.params, recipe.plugin, recipe.params, recipe.train], sort_keys=True, default=str)


def estimate_benchmark(bench: Any, limit: int | None, a: dict[str, Any], seen_fits: set[str]) -> dict[str, Any]:
    contexts = min(limit, bench.eval.contexts) if limit else bench.eval.contexts
    out: dict[str, Any] = {"benchmark": bench.name, "file": str(bench.path), "contexts_per_dataset": contexts,
                           "eval_datasets": len(bench.eval.datasets), "cells": len(bench.cells), "models": [], "notes": []}
    totals = {"train_gpu_hours": 0.0, "train_gpu_hours_new": 0.0, "generate_gpu_hours": 0.0, "score_gpu_hours": 0.0}
    for key, model in bench.models.items():
        spec = MODELS.get(model.params.get("id"))
        if spec is None:
            out["notes"].append(f"{key}: {model.params.get('id')!r} not in MODELS, not counted")
            continue
        weight_bytes = BYTES.get(model.params.get("dtype", "auto"), 2)
        entry: dict[str, Any] = {"model": key, "id": model.params["id"], "params_b": round(spec.params / 1e9, 2),
                                 "weight_dtype": model.params.get("dtype"), "fits": []}
        if spec.note:
            entry["note"] = spec.note
        layouts_needed = []
        for rkey in sorted({c.recipe for c in bench.cells if c.model == key}):
            recipe = bench.recipes[rkey]
            if recipe.train is None or not recipe.registration.cls.trains:
                continue
            estimates = [fit_estimate(spec, weight_bytes, recipe.params, recipe.train, lay, a) for lay in LAYOUTS]
            best = choose_layout(estimates)
            ident = fit_identity(model, recipe)
            shared = ident in seen_fits
            seen_fits.add(ident)
            fit = {"recipe": rkey, "updates": estimates[0]["updates"], "train_tokens": estimates[0]["train_tokens"],
                   "train_flops": train_flops(spec.params, estimates[0]["train_tokens"],
                                              bool(recipe.params.get("gradient_checkpointing"))),
                   "cached_from_earlier_benchmark": shared, "layouts": estimates, "best": best}
            entry["fits"].append(fit)
            if weight_bytes == 2 and best and best["layout"] != "zero3-8-offload" and recipe.params.get("lr", 1) < 1e-4:
                out["notes"].append(
                    f"{key}/{rkey}: 16-bit weights ({model.params.get('dtype')}) with torch Adam at lr "
                    f"{recipe.params['lr']:g}: updates fall below bf16 resolution; load float32")
            if best:
                totals["train_gpu_hours"] += best["gpu_hours"]
                totals["train_gpu_hours_new"] += 0.0 if shared else best["gpu_hours"]
                layouts_needed.append(best["layout"])
            else:
                out["notes"].append(f"{key}/{rkey}: no layout fits")
        entry["layout"] = max(layouts_needed, key=lambda n: [l.name for l in LAYOUTS].index(n)) if layouts_needed else "1gpu"
        gen = generation_estimate(bench, key, spec, weight_bytes, contexts, a)
        entry["generation"] = gen
        if gen["gpu_hours"] is None:
            out["notes"].append(f"{key}: {gen['weights_gb']} GB of weights do not fit one GPU for generation "
                                "(the harness generates on the main process's GPU)")
        else:
            totals["generate_gpu_hours"] += gen["gpu_hours"]
        score = scoring_estimate(bench, key, spec, weight_bytes, contexts, a)
        entry["scoring"] = score
        out["notes"].extend(score["notes"])
        totals["score_gpu_hours"] += score["gpu_hours"]
        out["models"].append(entry)
    totals["total_gpu_hours"] = totals["train_gpu_hours"] + totals["generate_gpu_hours"] + totals["score_gpu_hours"]
    out["totals"] = {k: round(v, 2) for k, v in totals.items()}
    return out


def load(paths: list[Path]) -> list[Any]:
    sys.path.insert(0, str(ROOT))
    from harness.config import load_benchmark
    from harness.plugin_manager import load_plugins

    registry = load_plugins().registry
    return [load_benchmark(p, registry) for p in paths]


# ---------------------------------------------------------------- rendering

def render_markdown(results: list[dict[str, Any]], quick: list[dict[str, Any]], limit: int) -> str:
    lines = [
        ("| benchmark | model | params | fits (updates each) | training layout | GPU mem/GPU (train) | train GPU-h | "
         "gen + score GPU-h | bound |"),
        "|---|---|---:|---|---|---:|---:|---:|---|",
    ]
    for r in results:
        for m in r["models"]:
            fits = m["fits"]
            bests = [f["best"] for f in fits if f["best"]]
            updates = sorted({f["updates"] for f in fits})
            fit_text = f"{len(fits)} ({', '.join(map(str, updates))})" if fits else "0"
            mem = max((b["memory_gb_per_gpu"] for b in bests), default=0)
            host = max((b["host_memory_gb"] for b in bests), default=0)
            train_h = sum(b["gpu_hours"] for b in bests)
            wall_h = sum(b["hours"] for b in bests)
            new_h = sum(f["best"]["gpu_hours"] for f in fits if f["best"] and not f["cached_from_earlier_benchmark"])
            gen = m["generation"]["gpu_hours"]
            gen_text = "no fit on 1 GPU" if gen is None else f"{gen + m['scoring']['gpu_hours']:.2f}"
            bound = ", ".join(sorted({b["bound"] for b in bests})) or "—"
            mem_text = f"{mem:.1f} GB" + (f" (+{host:.0f} GB host)" if host else "") if bests else "—"
            train_text = (f"{train_h:.2f} ({wall_h:.2f} h wall)" + (f", {new_h:.2f} new" if abs(new_h - train_h) > 1e-9 else "")
                          if fits else "—")
            lines.append(f"| {r['benchmark']} | {m['model']} | {m['params_b']}B | {fit_text} | "
                         f"{m['layout'] if fits else '1gpu (eval only)'} | {mem_text} | {train_text} | {gen_text} | {bound} |")
    lines += ["", (f"| benchmark | total GPU-h | of which training | new training (fits not cached by an earlier row) | "
                   f"`--limit {limit}`: GPU-h | notes |"), "|---|---:|---:|---:|---:|---|"]
    for r, q in zip(results, quick):
        t, qt = r["totals"], q["totals"]
        notes = "; ".join(r["notes"]) or ""
        lines.append(f"| {r['benchmark']} | {t['total_gpu_hours']:.2f} | {t['train_gpu_hours']:.2f} | "
                     f"{t['train_gpu_hours_new']:.2f} | {qt['total_gpu_hours']:.2f} | {notes} |")
    return "\n".join(lines)


def render_memory(benches: list[Any], a: dict[str, Any]) -> str:
    """Training state and inference weights per model used by the benchmarks: the arithmetic behind the layouts."""
    usable = a["gpu_memory_bytes"] * a["usable_memory_fraction"] / GB
    ids = sorted({m.params.get("id") for b in benches for m in b.models.values() if m.params.get("id") in MODELS},
                 key=lambda i: MODELS[i].params)
    lines = [(f"| model | params | Adam state, fp32 weights (16 B/param) | per GPU, FSDP over 8 | ZeRO-3 bf16 on 8 GPUs "
              f"+ CPU offload (GPU / host) | weights for generation fp32 / bf16 | one H100 ({usable:.0f} GB usable) |"),
             "|---|---:|---:|---:|---:|---:|---|"]
    for model_id in ids:
        n = MODELS[model_id].params
        fits = "train + generate" if 16 * n / GB <= usable else ("generate only" if 2 * n / GB <= usable else "neither")
        lines.append(f"| {model_id} | {n / 1e9:.2f}B | {16 * n / GB:.0f} GB | {16 * n / 8 / GB:.1f} GB | "
                     f"{4 * n / 8 / GB:.1f} GB / {16 * n / GB:.0f} GB | {4 * n / GB:.0f} / {2 * n / GB:.0f} GB | {fits} |")
    return "\n".join(lines)


def write_doc(path: Path, table: str) -> None:
    begin, end = "<!-- cost-model:begin -->", "<!-- cost-model:end -->"
    text = path.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{path}: needs the markers {begin} and {end}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{table}\n{end}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("benchmarks", nargs="*", type=Path, help="default: benchmarks/paper-*.yaml")
    parser.add_argument("--limit", type=int, default=5, help="contexts per dataset for the quick-look column")
    parser.add_argument("--out", type=Path, help="write the full estimate as JSON")
    parser.add_argument("--doc", type=Path, help="replace the table between the cost-model markers of this file")
    args = parser.parse_args(argv)
    paths = args.benchmarks or sorted((ROOT / "benchmarks").glob("paper-*.yaml"))
    # fits shared through the cache: order the files so each fit's first user pays for it
    benches = sorted(load(paths), key=lambda b: (not b.name.startswith("paper-text"), b.name))
    seen: set[str] = set()
    results = [estimate_benchmark(b, None, ASSUMPTIONS, seen) for b in benches]
    quick_seen: set[str] = set()
    quick = [estimate_benchmark(b, args.limit, ASSUMPTIONS, quick_seen) for b in benches]
    table = render_markdown(results, quick, args.limit) + "\n\n" + render_memory(benches, ASSUMPTIONS)
    print(table)
    if args.out:
        payload = {"what": "ESTIMATES from benchmarks/perf/cost_model.py (roofline over stated assumptions), "
                           "not measurements", "assumptions": ASSUMPTIONS,
                   "models": {k: asdict(v) for k, v in MODELS.items()},
                   "benchmarks": results, "quick_look_limit": args.limit, "quick_look": [
                       {"benchmark": q["benchmark"], "totals": q["totals"]} for q in quick]}
        args.out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    if args.doc:
        write_doc(args.doc, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
