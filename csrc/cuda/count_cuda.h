// Per-point-radius counts in max-norm on an NVIDIA GPU: the marginal counts of the KSG family.
// Torch-free: device pointers, sizes, the device and the caller's stream (cudaStream_t as void*).
#pragma once

#include "common/check.h"
#include "cuda/tiles.h"

namespace cchmi::cuda {

// For each of `batch` problems and every point i, in one pass over the pairs:
//   out_x[i] = #{j != i : dist_x(i, j) < radius_x[i]},  out_y[i] likewise in y,
// with <= instead of < when `inclusive` (KSG-2 extents, Gao et al.), dist = max_c |fl(a_jc - a_ic)|.
// x: (batch, n, dx), y: (batch, n, dy) row-major, radius_*: (batch, n), out_*: (batch, n).
// box_lo_x, box_hi_x (batch, ceil(n / kTileRows), dx): per run of kTileRows points, a box containing
// them in x (likewise in y): a tile whose box lies outside a point's radius is skipped for it, one
// inside is counted whole. Any point order is correct; a spatial sort makes the boxes small.
// y == nullptr with dy == 0 counts in x only (out_y, radius_y and the y boxes unused). n < 2^31.
template <typename T>
void count_within_pair(const T* x, const T* box_lo_x, const T* box_hi_x, index_t dx, const T* y, const T* box_lo_y,
                       const T* box_hi_y, index_t dy, index_t batch, index_t n, const T* radius_x, const T* radius_y,
                       bool inclusive, index_t* out_x, index_t* out_y, int device, void* stream);

// As count_within_pair, for the rows of some query blocks only (queries=): blocks (n_blocks, device
// memory) lists distinct query blocks, block t being rows [t * kTileRows, (t + 1) * kTileRows) of n
// (the same runs as the boxes), in any order, each in [0, ceil(n / kTileRows)); the same list
// applies to every problem. Only the listed rows' counts are written, each equal to
// count_within_pair's (the radii of the other rows are not read). n_blocks == 0 launches nothing.
template <typename T>
void count_within_pair_blocks(const T* x, const T* box_lo_x, const T* box_hi_x, index_t dx, const T* y,
                              const T* box_lo_y, const T* box_hi_y, index_t dy, index_t batch, index_t n,
                              const T* radius_x, const T* radius_y, bool inclusive, const index_t* blocks,
                              index_t n_blocks, index_t* out_x, index_t* out_y, int device, void* stream);

}  // namespace cchmi::cuda
