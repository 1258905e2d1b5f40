#!/usr/bin/env bash
# One command on one H100/H200, offline, from a fresh checkout set up with the CUDA torch
# (TORCH_SPEC=torch make setup): under 8 minutes. Writes results/perf/gpu-*.json; the figures go to
# docs/performance.md and docs/cost.md.
#   bash benchmarks/perf/gpu_check.sh            # PYTHON=... to use another interpreter
#
# 1. training: random-init TinyLlama-1.1B shape, our recipe loop (bf16 autocast) vs the plain fp32 loop:
#    tokens/s, MFU (against --peak-tflops, 989 = H100 SXM dense bf16), peak memory;
# 2. decoding at batch 64 on the embedded SmolLM2-135M: our greedy and top-p vs model.generate, and vs vLLM
#    when its environment is installed (bash scripts/setup_vllm.sh);
# 3. a bf16 end-to-end benchmark with --device cuda on a random-init model: the one-dtype rule and stage keys.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-.venv/bin/python}"
OUT=results/perf
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device: this check needs a GPU'; print(torch.cuda.get_device_name(0), torch.__version__)"
started=$(date +%s)
step() { echo "== $1 ($(( $(date +%s) - started )) s)"; }

step "training: TinyLlama-1.1B shape, ours (bf16) vs plain fp32"
timeout 240 "$PY" benchmarks/perf/training.py --model tinyllama --device cuda --tokens 256 --batch-size 8 \
  --updates 5 --repeats 3 --out "$OUT/gpu-training.json" || echo "training check failed (exit $?)"

step "decoding at batch 64: ours vs generate vs vLLM"
timeout 180 "$PY" benchmarks/perf/vllm_throughput.py --device cuda --batch-sizes 64 --decoders greedy top-p \
  --out "$OUT/gpu-decoding.json" || echo "decoding check failed (exit $?)"

step "bf16 end to end on a random-init model (--device cuda)"
timeout 150 "$PY" benchmarks/perf/gpu_end_to_end.py --device cuda --out "$OUT/gpu-end-to-end.json" \
  || echo "end-to-end check failed (exit $?)"

step "done"
ls -l "$OUT"/gpu-*.json
