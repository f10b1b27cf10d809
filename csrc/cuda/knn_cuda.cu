// Fused exact max-norm kNN on the GPU (see knn_cuda.h).
//
// The points arrive sorted along a Morton curve, with the bounding box of every run of kTileRows
// sorted points (cchmi/_spatial.py); `order` maps sorted positions to original indices.
// Tiled kernel (d <= 64): a block of kThreads threads owns kThreads * Q consecutive queries, Q per
// thread, with their coordinates in registers (zero-padded to DP, a compile-time width). A
// candidate tile is skipped when its box is farther from every query of the block than that
// query's k-th distance so far (one bound per query and tile, exact: see _spatial.py); the others
// stream through shared memory, where every thread reads the same candidate (a broadcast), so a
// pair-dimension costs one subtraction and one max with an |x| operand. The k best candidates of a
// query are register slots (topk.cuh); a candidate enters only when it beats the k-th (one
// comparison per pair otherwise), compared by (distance, original index), so ties go to the
// smaller original index whatever the visiting order.
// Generic kernel (d > 64): one query per thread, coordinates read from global memory (cached).
// Both kernels answer every sorted row (EveryRow) or the rows of a list of query blocks (ListedRows,
// queries=: common_cuda.cuh); a query's result does not depend on which others share its block.
#include "cuda/knn_cuda.h"

#include <cmath>

#include "cuda/common_cuda.cuh"
#include "cuda/topk.cuh"

namespace cchmi::cuda {
namespace {

// Queries per thread: enough to reuse each shared-memory read, few enough to stay in registers.
constexpr int queries_per_thread(int dp, int k) { return dp + 2 * k <= 24 ? 4 : (dp + 2 * k <= 48 ? 2 : 1); }

template <typename T, int DP, int K, typename Rows>
__global__ void __launch_bounds__(kThreads) knn_tiled(const T* __restrict__ points, const index_t* __restrict__ order,
                                                      const T* __restrict__ box_lo, const T* __restrict__ box_hi,
                                                      index_t n, int d, int k, T* __restrict__ out_d,
                                                      index_t* __restrict__ out_i, Rows rows_of) {
  constexpr int Q = queries_per_thread(DP, K);
  __shared__ T tile[kTileRows * DP];
  __shared__ int tile_idx[kTileRows];
  const index_t problem = blockIdx.y;
  const index_t n_tiles = (n + kTileRows - 1) / kTileRows;
  points += problem * n * d;
  order += problem * n;
  box_lo += problem * n_tiles * d;
  box_hi += problem * n_tiles * d;
  out_d += problem * n * k;
  out_i += problem * n * k;

  // A thread's queries are consecutive in the spatial order (Q divides kTileRows), so a warp's are
  // close together and its pruning decisions agree.
  const index_t first = rows_of.first(kThreads * Q, n);
  T q[Q][DP];
  index_t qi[Q];
  Best<T, K> best[Q];
#pragma unroll
  for (int r = 0; r < Q; ++r) {
    qi[r] = rows_of.row(static_cast<index_t>(threadIdx.x) * Q + r, kThreads * Q, n);
    const bool live = qi[r] < n;
#pragma unroll
    for (int c = 0; c < DP; ++c) q[r][c] = (live && c < d) ? points[qi[r] * d + c] : static_cast<T>(0);
    best[r].init(k);
  }
  // Padding columns [d, DP) of the tile stay zero: only columns < d are written below.
  for (int e = threadIdx.x; e < kTileRows * DP; e += kThreads) tile[e] = static_cast<T>(0);

  // Candidate tiles from the block's own one onwards: near candidates first tighten the bars early.
  const index_t t0 = first / kTileRows;
  for (index_t step = 0; step < n_tiles; ++step) {
    const index_t t = t0 + step < n_tiles ? t0 + step : t0 + step - n_tiles;
    const T* lo = box_lo + t * d;
    const T* hi = box_hi + t * d;
    bool need = false;
#pragma unroll
    for (int s = 0; s < Q; ++s)  // at equal distance a smaller index may still enter: prune on > only
      need |= qi[s] < n && !(box_near<T, DP>(q[s], lo, hi, d) > best[s].d[0]);
    // Also the barrier between the previous tile's reads and this tile's writes.
    if (!__syncthreads_or(need)) continue;
    const index_t start = t * kTileRows;
    const int rows = static_cast<int>(n - start < kTileRows ? n - start : kTileRows);
    const T* src = points + start * d;
    for (int e = threadIdx.x; e < rows * d; e += kThreads) {
      const int r = e / d;
      tile[r * DP + (e - r * d)] = src[e];
    }
    for (int r = threadIdx.x; r < rows; r += kThreads) tile_idx[r] = static_cast<int>(order[start + r]);
    __syncthreads();
    if (!need) continue;
    for (int r = 0; r < rows; ++r) {
      const T* cand = tile + r * DP;
      const int j = tile_idx[r];  // original index: ties go to the smaller one
      const index_t pos = start + r;
#pragma unroll
      for (int s = 0; s < Q; ++s) {
        T dist = absdiff(cand[0], q[s][0]);
#pragma unroll
        for (int c = 1; c < DP; ++c) dist = maxof(dist, absdiff(cand[c], q[s][c]));
        if (best[s].beats_worst(dist, j) && pos != qi[s]) best[s].insert(dist, j);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < Q; ++r)
    if (qi[r] < n) best[r].store(out_d + qi[r] * k, out_i + qi[r] * k, k);
}

template <typename T, int K, typename Rows>
__global__ void __launch_bounds__(kThreads) knn_generic(const T* __restrict__ points, const index_t* __restrict__ order,
                                                        index_t n, index_t d, int k, T* __restrict__ out_d,
                                                        index_t* __restrict__ out_i, Rows rows_of) {
  const index_t problem = blockIdx.y;
  points += problem * n * d;
  order += problem * n;
  out_d += problem * n * k;
  out_i += problem * n * k;
  const index_t i = rows_of.row(threadIdx.x, kThreads, n);
  if (i >= n) return;
  const T* qrow = points + i * d;
  Best<T, K> best;
  best.init(k);
  for (index_t j = 0; j < n; ++j) {
    const T* crow = points + j * d;
    T dist = static_cast<T>(0);
    for (index_t c = 0; c < d; ++c) dist = maxof(dist, absdiff(crow[c], qrow[c]));
    const int orig = static_cast<int>(order[j]);
    if (best.beats_worst(dist, orig) && j != i) best.insert(dist, orig);
  }
  best.store(out_d + i * k, out_i + i * k, k);
}

template <typename T, int K, typename Rows>
void launch_k(const T* points, const index_t* order, const T* box_lo, const T* box_hi, index_t batch, index_t n,
              index_t d, int k, T* out_d, index_t* out_i, Rows rows, cudaStream_t s) {
  const int dp = padded_dim(d);
  const index_t n_tiles = (n + kTileRows - 1) / kTileRows;
  for (index_t b0 = 0; b0 < batch; b0 += kMaxGridY) {
    const index_t nb = batch - b0 < kMaxGridY ? batch - b0 : kMaxGridY;
    const T* p = points + b0 * n * d;
    const index_t* o = order + b0 * n;
    const T* lo = box_lo + b0 * n_tiles * d;
    const T* hi = box_hi + b0 * n_tiles * d;
    T* od = out_d + b0 * n * k;
    index_t* oi = out_i + b0 * n * k;
    auto tiled = [&](auto dpc) {
      constexpr int DP = decltype(dpc)::value;
      constexpr int Q = queries_per_thread(DP, K);
      dim3 grid(grid_for(rows, n, kThreads * Q), static_cast<unsigned>(nb));
      auto kernel = knn_tiled<T, DP, K, Rows>;
      CCHMI_LAUNCH(kernel, grid, kThreads, s, p, o, lo, hi, n, static_cast<int>(d), k, od, oi, rows);
    };
    switch (dp) {
      case 4: tiled(std::integral_constant<int, 4>{}); break;
      case 8: tiled(std::integral_constant<int, 8>{}); break;
      case 16: tiled(std::integral_constant<int, 16>{}); break;
      case 32: tiled(std::integral_constant<int, 32>{}); break;
      case 64: tiled(std::integral_constant<int, 64>{}); break;
      default: {
        dim3 grid(grid_for(rows, n, kThreads), static_cast<unsigned>(nb));
        auto kernel = knn_generic<T, K, Rows>;
        CCHMI_LAUNCH(kernel, grid, kThreads, s, p, o, n, d, k, od, oi, rows);
      }
    }
    throw_on_error(cudaGetLastError(), "knn kernel launch");
  }
}

void check_knn_sizes(index_t batch, index_t n, index_t d, index_t k) {
  CCHMI_CHECK(batch >= 1 && d >= 1, "knn: need batch >= 1 and d >= 1");
  CCHMI_CHECK(n >= 2 && n <= INT_MAX, "knn: need 2 <= n < 2^31 points per problem");
  CCHMI_CHECK(k >= 1 && k <= n - 1, "knn: need 1 <= k <= n - 1");
  CCHMI_CHECK(k <= kMaxK, "knn: the cuda backend keeps at most 64 neighbours (k <= 64) in registers");
}

template <typename T, typename Rows>
void launch_knn(const T* points, const index_t* order, const T* box_lo, const T* box_hi, index_t batch, index_t n,
            index_t d, index_t k, T* out_dist, index_t* out_idx, Rows rows, int device, void* stream) {
  set_device(device);
  auto s = static_cast<cudaStream_t>(stream);
  const int kk = static_cast<int>(k);
  if (k <= 8)
    launch_k<T, 8>(points, order, box_lo, box_hi, batch, n, d, kk, out_dist, out_idx, rows, s);
  else if (k <= 16)
    launch_k<T, 16>(points, order, box_lo, box_hi, batch, n, d, kk, out_dist, out_idx, rows, s);
  else
    launch_k<T, 64>(points, order, box_lo, box_hi, batch, n, d, kk, out_dist, out_idx, rows, s);
}

}  // namespace

template <typename T>
void knn(const T* points, const index_t* order, const T* box_lo, const T* box_hi, index_t batch, index_t n, index_t d,
         index_t k, T* out_dist, index_t* out_idx, int device, void* stream) {
  check_knn_sizes(batch, n, d, k);
  launch_knn(points, order, box_lo, box_hi, batch, n, d, k, out_dist, out_idx, EveryRow{}, device, stream);
}

template <typename T>
void knn_blocks(const T* points, const index_t* order, const T* box_lo, const T* box_hi, index_t batch, index_t n,
                index_t d, index_t k, const index_t* blocks, index_t n_blocks, T* out_dist, index_t* out_idx,
                int device, void* stream) {
  check_knn_sizes(batch, n, d, k);
  CCHMI_CHECK(n_blocks >= 0 && n_blocks <= (n + kTileRows - 1) / kTileRows,
              "knn_blocks: need 0 <= n_blocks <= ceil(n / tile_rows) (distinct query blocks)");
  if (n_blocks == 0) return;  // nothing to answer (a grid of no blocks is no valid launch)
  launch_knn(points, order, box_lo, box_hi, batch, n, d, k, out_dist, out_idx, ListedRows{blocks, n_blocks}, device,
         stream);
}

template void knn<float>(const float*, const index_t*, const float*, const float*, index_t, index_t, index_t, index_t,
                         float*, index_t*, int, void*);
template void knn<double>(const double*, const index_t*, const double*, const double*, index_t, index_t, index_t,
                          index_t, double*, index_t*, int, void*);
template void knn_blocks<float>(const float*, const index_t*, const float*, const float*, index_t, index_t, index_t,
                                index_t, const index_t*, index_t, float*, index_t*, int, void*);
template void knn_blocks<double>(const double*, const index_t*, const double*, const double*, index_t, index_t,
                                 index_t, index_t, const index_t*, index_t, double*, index_t*, int, void*);

}  // namespace cchmi::cuda
