#!/usr/bin/env bash
# One command for a GPU machine without network (Python with numpy, pybind11, scikit-build-core,
# cmake, ninja and nvcc present): build cchmi with its CUDA module, run the GPU tests with the
# require switch (a missing GPU fails them instead of skipping), print `cchmi info`, then the fused
# neural-kernel benchmark table (bench_neural --part kernels). The GPU kNN kernels extend this script.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
CCHMI_CUDA=ON pip install --no-build-isolation --no-deps . 2>&1 | tail -n 2
# -P: do not put the checkout first on sys.path (the installed build must be the one imported)
python -P -m pytest -q -p no:cacheprovider --require-gpu tests/gpu
(cd /tmp && python -m cchmi info)
# The checkout goes last on sys.path: `bench` imports from it, `cchmi` from the installed build.
repo=$(pwd)
(cd /tmp && python -c "import sys; sys.path.append('$repo'); from bench.bench_neural import main; main(['--part', 'kernels'])")
echo "gpu_check: $(( $(date +%s) - start )) s"
