// cchmi._cuda's pybind11 module (csrc/bind_cuda.cpp) over the emulated kernels, for tests only:
// tests/test_cuda_emulated.py builds it with the host compiler and runs the cuda backend's Python
// glue (spatial sort, boxes, pointers, batches) end to end on CPU tensors. The runtime queries of
// csrc/cuda/smoke_cuda.cu are replaced by stubs: one "device", no kernels of its own.
#define CCHMI_EMULATE_CUDA 1

#include "cuda/count_cuda.cu"
#include "cuda/knn_cuda.cu"
#include "cuda/smoke_cuda.h"

namespace cchmi::cuda {

int device_count() { return 1; }
int runtime_version() { return 0; }
int driver_version() { return 0; }
const char* device_name(int) { return "emulated"; }
long long iota_sum(index_t n, void*) { return n * (n - 1) / 2; }

}  // namespace cchmi::cuda

#include "bind_cuda.cpp"
