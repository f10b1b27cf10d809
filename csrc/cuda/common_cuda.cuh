// Helpers shared by the CUDA kernels: error checks, launch geometry, max-norm arithmetic.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <stdexcept>
#include <string>

#include "common/check.h"

namespace cchmi::cuda {

inline void throw_on_error(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so the next call starts clean
    throw std::runtime_error(std::string("cchmi._cuda: ") + what + ": " + cudaGetErrorString(err));
  }
}

// Threads per block and candidate rows per shared-memory tile of the tiled kernels.
constexpr int kThreads = 128;
constexpr int kTile = 128;
// gridDim.y (one problem of a batch per y-block) is limited to 65535: larger batches are launched in chunks.
constexpr index_t kMaxGridY = 65535;

// |a - b| with one rounding (the subtraction), as in the CPU kernels: the numerical contract.
__device__ __forceinline__ float absdiff(float a, float b) { return fabsf(a - b); }
__device__ __forceinline__ double absdiff(double a, double b) { return fabs(a - b); }
__device__ __forceinline__ float maxof(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double maxof(double a, double b) { return fmax(a, b); }

// Padded widths of the dimension-specialised kernels: d is rounded up to one of them and the extra
// coordinates are zero in queries and candidates alike (|0 - 0| = 0 leaves a max-norm unchanged).
// 0 selects the kernels with a runtime dimension.
inline int padded_dim(index_t d) {
  for (int p : {4, 8, 16, 32, 64})
    if (d <= p) return p;
  return 0;
}

inline void set_device(int device) { throw_on_error(cudaSetDevice(device), "cudaSetDevice"); }

inline unsigned blocks_for(index_t items, index_t per_block) {
  const index_t b = (items + per_block - 1) / per_block;
  CCHMI_CHECK(b <= INT_MAX, "problem too large for one launch");
  return static_cast<unsigned>(b);
}

}  // namespace cchmi::cuda
