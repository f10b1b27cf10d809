#!/usr/bin/env bash
# One command for a GPU machine without network (Python with numpy, torch, triton, pybind11,
# scikit-build-core, cmake, ninja and nvcc present): build cchmi with its CUDA module, run the GPU
# tests with the require switch (a missing GPU fails them instead of skipping), print `cchmi info`,
# then the GPU kNN table (bench_gpu --quick), the fused neural-kernel table (bench_neural
# --part kernels) and the sharded path's one-device overhead (bench_distributed --gpu). Budget:
# under 8 minutes, build included.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
CCHMI_CUDA=ON pip install --no-build-isolation --no-deps . 2>&1 | tail -n 2
echo "gpu_check: built in $(( $(date +%s) - start )) s"
# -P: do not put the checkout first on sys.path (the installed build must be the one imported)
python -P -m pytest -q -p no:cacheprovider --require-gpu tests/gpu tests/test_distributed.py -m gpu
(cd /tmp && python -m cchmi info)
# The checkout goes last on sys.path: `bench` imports from it, `cchmi` from the installed build.
repo=$(pwd)
(cd /tmp && python -c "import sys; sys.path.append('$repo'); from bench.bench_gpu import main; main(['--quick'])")
(cd /tmp && python -c "import sys; sys.path.append('$repo'); from bench.bench_neural import main; main(['--part', 'kernels', '--quick'])")
(cd /tmp && python -c "import sys; sys.path.append('$repo'); from bench.bench_distributed import main; main(['--gpu', '--quick', '--no-csv'])")
echo "gpu_check: $(( $(date +%s) - start )) s"
