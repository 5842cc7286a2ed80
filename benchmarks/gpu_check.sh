#!/usr/bin/env bash
# One check of the CUDA backend on a GPU machine (H100/H200 with PyTorch and JAX for CUDA
# preinstalled, no internet), under 10 minutes in all:
#   (a) install numba-cuda, the CUDA 13.0 toolkit pieces and cuBLAS from wheels/ if there;
#   (b) the op suite on the real GPU against the reference interpreter;
#   (c) benchmarks/gpu_workloads.py: W1-W5 for tracejit, PyTorch and JAX, and the copy
#       bandwidth; results in $OUT/gpu_results.{json,md} when OUT is set.
# Usage: bash benchmarks/gpu_check.sh     (from the repository root)
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
OUT=${OUT:-}
[ -n "$OUT" ] && mkdir -p "$OUT"
status=0
step() { echo; echo "=== $* ($(date +%T))"; }

step "device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | head -3

step "(a) wheels"
if [ -d wheels ]; then
    timeout 120 "$PY" -m pip install -q --no-index --find-links wheels/ wheels/*.whl \
        || { echo "pip install from wheels/ failed"; status=1; }
else
    echo "no wheels/ directory: using what is installed"
fi
"$PY" -c "import numba_cuda, numba; print('numba', numba.__version__)" \
    || { echo "numba-cuda is not importable: nothing below can run"; exit 1; }

step "(b) op suite on the GPU: tests/backends tests/codegen_cuda"
TRACEJIT_GPU=cuda timeout 300 "$PY" -m pytest -q --maxfail=20 -p no:cacheprovider \
    tests/backends tests/codegen_cuda 2>&1 | tail -25
rc=${PIPESTATUS[0]}
echo "pytest exit status $rc"
[ "$rc" -eq 0 ] || status=1
if [ -n "$OUT" ]; then echo "$rc" > "$OUT/pytest_rc"; fi

step "(c) W1-W5 on the GPU"
TRACEJIT_GPU=cuda timeout 240 "$PY" benchmarks/gpu_workloads.py --runs 20 \
    ${OUT:+--out "$OUT"} 2>&1 | tail -40
rc=${PIPESTATUS[0]}
echo "gpu_workloads exit status $rc"
[ "$rc" -eq 0 ] || status=1
exit $status
