#!/usr/bin/env bash
# bench.gpu on a bare CUDA machine whose torch build is already installed:
#   bench/gpu.sh [OUT.json] [bench.gpu options...]
#
# 1. the project installed next to the CUDA torch, pinned to that exact build so pip can never
#    replace it (it fails instead, naming the conflict): into PYTHON's virtual environment if it
#    runs in one, else into a new one that sees the machine's packages (--system-site-packages);
# 2. the full-size random SDXL (imagine tiny-model DIR --full-size), unless already written;
# 3. python -m bench.gpu, its JSON on stdout and in OUT.json (default bench-gpu.json).
#
# Environment: PYTHON (default python3), BENCH_VENV (default ~/.cache/imagine/venv-gpu),
# BENCH_MODEL (default ~/.cache/imagine/sdxl-base-random, or a real SDXL directory).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
OUT="${1:-bench-gpu.json}"
shift || true
VENV="${BENCH_VENV:-$HOME/.cache/imagine/venv-gpu}"
MODEL="${BENCH_MODEL:-$HOME/.cache/imagine/sdxl-base-random}"

if ! "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "bench/gpu.sh: no CUDA device visible to $PYTHON's torch" >&2
    echo '{"benchmark": "gpu", "error": "no CUDA"}' | tee "$OUT"
    exit 0
fi

if "$PYTHON" -c 'import sys; sys.exit(0 if sys.prefix != sys.base_prefix else 1)'; then
    PY="$PYTHON"  # already a virtual environment (with torch in it): install there
else
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv --system-site-packages "$VENV"
    PY="$VENV/bin/python"
fi
TORCH="$("$PY" -c 'import torch; print(torch.__version__)')"
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "torch==$TORCH" >"$CONSTRAINTS"
echo "bench/gpu.sh: installing the project around torch $TORCH" >&2
"$PY" -m pip install --quiet --constraint "$CONSTRAINTS" -e '.[worker]'

if [ ! -f "$MODEL/model_index.json" ]; then
    if [ -d "$MODEL" ] && [ -n "$(ls -A "$MODEL")" ]; then
        echo "bench/gpu.sh: $MODEL is an incomplete model (no model_index.json); remove it" >&2
        exit 1
    fi
    "$PY" -m imagine tiny-model "$MODEL" --full-size >&2
fi

"$PY" -m bench.gpu --model "$MODEL" --out "$OUT" "$@"
