#!/usr/bin/env bash
# On a GPU machine: the CUDA tests, then the GPU benchmark (200M and 2B included), within 8 minutes;
# the benchmark table is printed last. On a CPU-only machine the CUDA tests skip and the benchmark
# runs its CPU paths in quick mode, so the script itself stays exercised.
set -euo pipefail
cd "$(dirname "$0")/.."
make setup >/dev/null
PY=.venv/bin/python
if $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  timeout 180 $PY -m pytest tests/core/test_cuda.py -q -p no:cacheprovider
  timeout 290 $PY -m lib.bench --no-sweep --no-layouts  # rows are logged as measured
else
  echo "no CUDA device: CUDA tests skip, benchmark in quick CPU mode"
  $PY -m pytest tests/core/test_cuda.py -q -p no:cacheprovider -rs
  $PY -m lib.bench --quick
fi
