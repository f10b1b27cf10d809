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
#include "cuda/tiles.h"

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
// A block's queries (kThreads times 1, 2 or 4) cover whole query blocks of kTileRows rows (ListedRows).
static_assert(kThreads % kTileRows == 0, "a block's queries must be whole query blocks");

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

// Which sorted rows a block of the kernels answers, as a template argument of the kernels (so the
// full-grid kernels compile as without it). Slot s of a block is its s-th query (0 <= s < per_block,
// per_block = its threads times its queries per thread); row() gives the slot's sorted row, or n
// when the slot answers nothing.
//
// EveryRow: block b answers the per_block consecutive rows from b * per_block (grid: every row).
struct EveryRow {
  __device__ __forceinline__ index_t first(index_t per_block, index_t) const {
    return static_cast<index_t>(blockIdx.x) * per_block;
  }
  __device__ __forceinline__ index_t row(index_t slot, index_t per_block, index_t) const {
    return static_cast<index_t>(blockIdx.x) * per_block + slot;
  }
};

// ListedRows (queries=): the rows of a list of query blocks of kTileRows sorted rows each (block t
// holds rows [t * kTileRows, (t + 1) * kTileRows) of n). Block b answers the per_block / kTileRows
// list entries from b * (per_block / kTileRows) (grid: ceil(count / (per_block / kTileRows)));
// slots past the list's end or past n answer nothing. The list must hold block numbers in
// [0, ceil(n / kTileRows)); any other entry answers nothing (no memory outside the arrays is read).
struct ListedRows {
  const index_t* blocks;
  index_t count;

  // A row to start the candidate tiles from: the block's first listed row (0 if it is no row).
  __device__ __forceinline__ index_t first(index_t per_block, index_t n) const {
    const index_t r = blocks[static_cast<index_t>(blockIdx.x) * (per_block / kTileRows)] * kTileRows;
    return r >= 0 && r < n ? r : 0;
  }
  __device__ __forceinline__ index_t row(index_t slot, index_t per_block, index_t n) const {
    const index_t at = static_cast<index_t>(blockIdx.x) * (per_block / kTileRows) + slot / kTileRows;
    if (at >= count) return n;
    const index_t r = blocks[at] * kTileRows + slot % kTileRows;
    return r >= 0 && r < n ? r : n;
  }
};

inline void set_device(int device) { throw_on_error(cudaSetDevice(device), "cudaSetDevice"); }

inline unsigned blocks_for(index_t items, index_t per_block) {
  const index_t b = (items + per_block - 1) / per_block;
  CCHMI_CHECK(b <= INT_MAX, "problem too large for one launch");
  return static_cast<unsigned>(b);
}

// gridDim.x of a launch of blocks of per_block queries answering `rows` of n.
inline unsigned grid_for(const EveryRow&, index_t n, index_t per_block) { return blocks_for(n, per_block); }
inline unsigned grid_for(const ListedRows& rows, index_t, index_t per_block) {
  return blocks_for(rows.count, per_block / kTileRows);
}

}  // namespace cchmi::cuda
