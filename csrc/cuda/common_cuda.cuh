// Helpers shared by the CUDA kernels: error checks, launch geometry, max-norm arithmetic.
#pragma once

#ifdef CCHMI_EMULATE_CUDA
// tests/cuda/emulate.h runs the kernels on the CPU (threads of a block as OS threads) to test them.
#include "emulate.h"
#else
#include <cuda_runtime.h>
// Launches a kernel (a function or function pointer) on `stream`; the emulator redefines it.
#define CCHMI_LAUNCH(kernel, grid, block, stream, ...) kernel<<<(grid), (block), 0, (stream)>>>(__VA_ARGS__)
#endif

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

// Threads per block of every kernel.
constexpr int kThreads = 128;
// gridDim.y (one problem of a batch per y-block) is limited to 65535: larger batches are launched in chunks.
constexpr index_t kMaxGridY = 65535;

// |a - b| with one rounding (the subtraction), as in the CPU kernels: the numerical contract.
__device__ __forceinline__ float absdiff(float a, float b) { return fabsf(a - b); }
__device__ __forceinline__ double absdiff(double a, double b) { return fabs(a - b); }
__device__ __forceinline__ float maxof(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double maxof(double a, double b) { return fmax(a, b); }

// Lower bound of the distance from q (DP registers, zero-padded past d) to any point of the box
// [lo, hi] (d values each): max_c max(fl(lo_c - q_c), fl(q_c - hi_c), 0), see cchmi/_spatial.py.
template <typename T, int DP>
__device__ __forceinline__ T box_near(const T (&q)[DP], const T* lo, const T* hi, int d) {
  T near = static_cast<T>(0);
#pragma unroll
  for (int c = 0; c < DP; ++c)
    if (c < d) near = maxof(near, maxof(lo[c] - q[c], q[c] - hi[c]));
  return near;
}

// Upper bound of the distance from q to any point of the box: max_c max(fl(hi_c - q_c), fl(q_c - lo_c)).
template <typename T, int DP>
__device__ __forceinline__ T box_far(const T (&q)[DP], const T* lo, const T* hi, int d) {
  T far = static_cast<T>(0);
#pragma unroll
  for (int c = 0; c < DP; ++c)
    if (c < d) far = maxof(far, maxof(hi[c] - q[c], q[c] - lo[c]));
  return far;
}

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
