#!/usr/bin/env bash
# One command for a GPU machine without network (Python with numpy, pybind11, scikit-build-core,
# cmake, ninja and nvcc present): build cchmi with its CUDA module, run the GPU tests with the
# require switch (a missing GPU fails them instead of skipping), then print `cchmi info`.
# The GPU kNN kernels and their benchmark table extend this script.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
CCHMI_CUDA=ON pip install --no-build-isolation --no-deps . 2>&1 | tail -n 2
# -P: do not put the checkout first on sys.path (the installed build must be the one imported)
python -P -m pytest -q -p no:cacheprovider --require-gpu tests/gpu
(cd /tmp && python -m cchmi info)
echo "gpu_check: $(( $(date +%s) - start )) s"
