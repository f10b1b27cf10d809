// Exact k nearest neighbours in max-norm on an NVIDIA GPU. Torch-free: device pointers, sizes, the
// device and the caller's stream (a cudaStream_t passed as void*; 0 is the legacy default stream).
#pragma once

#include "common/check.h"
#include "cuda/tiles.h"

namespace cchmi::cuda {

// Largest k: the k best candidates of every query live in registers.
constexpr index_t kMaxK = 64;

// For each of `batch` problems and every point i, the k nearest other points of the same problem.
//   points (batch, n, d): row-major, finite, each problem sorted spatially (any order is correct;
//     a spatial one makes the pruning work);
//   order (batch, n): the original index of each sorted point (a permutation of 0..n-1);
//   box_lo, box_hi (batch, ceil(n / kTileRows), d): per run of kTileRows sorted points, a box that
//     contains them (e.g. their min and max).
//   out_dist (batch, n, k): max_c |fl(x_jc - x_ic)|, ascending, for the sorted point i;
//   out_idx  (batch, n, k): original indices; among equal distances the smaller comes first.
// Requires 1 <= k <= min(n - 1, kMaxK), n < 2^31. Asynchronous on `stream`; throws std::invalid_argument
// on bad sizes and std::runtime_error on a CUDA error.
template <typename T>
void knn(const T* points, const index_t* order, const T* box_lo, const T* box_hi, index_t batch, index_t n,
         index_t d, index_t k, T* out_dist, index_t* out_idx, int device, void* stream);

// As knn, for the rows of some query blocks only (queries=): blocks (n_blocks, device memory) lists
// distinct query blocks, block t being sorted rows [t * kTileRows, (t + 1) * kTileRows) of n (the
// same runs as the boxes), in any order, each in [0, ceil(n / kTileRows)); the same list applies to
// every problem. Only the rows of the outputs in listed blocks are written, each equal bit for bit
// to knn's. n_blocks == 0 launches nothing.
template <typename T>
void knn_blocks(const T* points, const index_t* order, const T* box_lo, const T* box_hi, index_t batch, index_t n,
                index_t d, index_t k, const index_t* blocks, index_t n_blocks, T* out_dist, index_t* out_idx,
                int device, void* stream);

}  // namespace cchmi::cuda
