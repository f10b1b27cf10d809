// Fused exact max-norm kNN on the GPU (see knn_cuda.h).
//
// Tiled kernel (d <= 64): a block of kThreads threads owns kThreads * Q queries, Q per thread, with
// their coordinates in registers (zero-padded to DP, a compile-time width). Candidate rows stream
// through shared memory kTile at a time; every thread reads the same candidate (a broadcast), so a
// pair-dimension costs one subtraction and one max with an |x| operand. The k best candidates of a
// query are a sorted register array of K >= k slots (distance, index); a candidate enters only when
// it beats the k-th (one comparison per pair otherwise). Candidates are visited in increasing index
// order and compared lexicographically, so ties go to the smaller index.
// Generic kernel (d > 64): one query per thread, coordinates read from global memory (cached).
#include "cuda/knn_cuda.h"

#include <cuda_runtime.h>

#include <cmath>

#include "cuda/common_cuda.cuh"
#include "cuda/topk.cuh"

namespace cchmi::cuda {
namespace {

// Queries per thread: enough to reuse each shared-memory read, few enough to stay in registers.
constexpr int queries_per_thread(int dp, int k) { return dp + 2 * k <= 24 ? 4 : (dp + 2 * k <= 48 ? 2 : 1); }

template <typename T, int DP, int K>
__global__ void __launch_bounds__(kThreads) knn_tiled(const T* __restrict__ points, index_t n, int d, int k,
                                                      T* __restrict__ out_d, index_t* __restrict__ out_i) {
  constexpr int Q = queries_per_thread(DP, K);
  // At most 32 KiB of shared memory: 128 rows, fewer for wide double rows.
  constexpr int Rows = kTile * DP * static_cast<int>(sizeof(T)) <= 32768 ? kTile : 32768 / (DP * static_cast<int>(sizeof(T)));
  __shared__ T tile[Rows * DP];
  const index_t problem = blockIdx.y;
  points += problem * n * d;
  out_d += problem * n * k;
  out_i += problem * n * k;

  T q[Q][DP];
  index_t qi[Q];
  Best<T, K> best[Q];
#pragma unroll
  for (int r = 0; r < Q; ++r) {
    qi[r] = static_cast<index_t>(blockIdx.x) * (kThreads * Q) + r * kThreads + threadIdx.x;
    const bool live = qi[r] < n;
#pragma unroll
    for (int c = 0; c < DP; ++c) q[r][c] = (live && c < d) ? points[qi[r] * d + c] : static_cast<T>(0);
    best[r].init(k);
  }
  // Padding columns [d, DP) of the tile stay zero: only columns < d are written below.
  for (int e = threadIdx.x; e < Rows * DP; e += kThreads) tile[e] = static_cast<T>(0);

  for (index_t start = 0; start < n; start += Rows) {
    const int rows = static_cast<int>(n - start < Rows ? n - start : Rows);
    __syncthreads();  // the previous tile is consumed (and the zero fill done)
    const T* src = points + start * d;
    for (int e = threadIdx.x; e < rows * d; e += kThreads) {
      const int r = e / d;
      tile[r * DP + (e - r * d)] = src[e];
    }
    __syncthreads();
    for (int r = 0; r < rows; ++r) {
      const T* cand = tile + r * DP;
      const int j = static_cast<int>(start + r);
#pragma unroll
      for (int s = 0; s < Q; ++s) {
        T dist = absdiff(cand[0], q[s][0]);
#pragma unroll
        for (int c = 1; c < DP; ++c) dist = maxof(dist, absdiff(cand[c], q[s][c]));
        if (best[s].beats_worst(dist, j) && j != qi[s]) best[s].insert(dist, j);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < Q; ++r)
    if (qi[r] < n) best[r].store(out_d + qi[r] * k, out_i + qi[r] * k, k);
}

template <typename T, int K>
__global__ void __launch_bounds__(kThreads) knn_generic(const T* __restrict__ points, index_t n, index_t d, int k,
                                                        T* __restrict__ out_d, index_t* __restrict__ out_i) {
  const index_t problem = blockIdx.y;
  points += problem * n * d;
  out_d += problem * n * k;
  out_i += problem * n * k;
  const index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n) return;
  const T* qrow = points + i * d;
  Best<T, K> best;
  best.init(k);
  for (index_t j = 0; j < n; ++j) {
    const T* crow = points + j * d;
    T dist = static_cast<T>(0);
    for (index_t c = 0; c < d; ++c) dist = maxof(dist, absdiff(crow[c], qrow[c]));
    if (best.beats_worst(dist, static_cast<int>(j)) && j != i) best.insert(dist, static_cast<int>(j));
  }
  best.store(out_d + i * k, out_i + i * k, k);
}

template <typename T, int K>
void launch_k(const T* points, index_t batch, index_t n, index_t d, int k, T* out_d, index_t* out_i,
              cudaStream_t s) {
  const int dp = padded_dim(d);
  for (index_t b0 = 0; b0 < batch; b0 += kMaxGridY) {
    const index_t nb = batch - b0 < kMaxGridY ? batch - b0 : kMaxGridY;
    const T* p = points + b0 * n * d;
    T* od = out_d + b0 * n * k;
    index_t* oi = out_i + b0 * n * k;
    auto tiled = [&](auto dpc) {
      constexpr int DP = decltype(dpc)::value;
      constexpr int Q = queries_per_thread(DP, K);
      dim3 grid(blocks_for(n, kThreads * Q), static_cast<unsigned>(nb));
      knn_tiled<T, DP, K><<<grid, kThreads, 0, s>>>(p, n, static_cast<int>(d), k, od, oi);
    };
    switch (dp) {
      case 4: tiled(std::integral_constant<int, 4>{}); break;
      case 8: tiled(std::integral_constant<int, 8>{}); break;
      case 16: tiled(std::integral_constant<int, 16>{}); break;
      case 32: tiled(std::integral_constant<int, 32>{}); break;
      case 64: tiled(std::integral_constant<int, 64>{}); break;
      default: {
        dim3 grid(blocks_for(n, kThreads), static_cast<unsigned>(nb));
        knn_generic<T, K><<<grid, kThreads, 0, s>>>(p, n, d, k, od, oi);
      }
    }
    throw_on_error(cudaGetLastError(), "knn kernel launch");
  }
}

}  // namespace

template <typename T>
void knn(const T* points, index_t batch, index_t n, index_t d, index_t k, T* out_dist, index_t* out_idx, int device,
         void* stream) {
  CCHMI_CHECK(batch >= 1 && d >= 1, "knn: need batch >= 1 and d >= 1");
  CCHMI_CHECK(n >= 2 && n <= INT_MAX, "knn: need 2 <= n < 2^31 points per problem");
  CCHMI_CHECK(k >= 1 && k <= n - 1, "knn: need 1 <= k <= n - 1");
  CCHMI_CHECK(k <= kMaxK, "knn: the cuda backend keeps at most 64 neighbours (k <= 64) in registers");
  set_device(device);
  auto s = static_cast<cudaStream_t>(stream);
  const int kk = static_cast<int>(k);
  if (k <= 8)
    launch_k<T, 8>(points, batch, n, d, kk, out_dist, out_idx, s);
  else if (k <= 16)
    launch_k<T, 16>(points, batch, n, d, kk, out_dist, out_idx, s);
  else
    launch_k<T, 64>(points, batch, n, d, kk, out_dist, out_idx, s);
}

template void knn<float>(const float*, index_t, index_t, index_t, index_t, float*, index_t*, int, void*);
template void knn<double>(const double*, index_t, index_t, index_t, index_t, double*, index_t*, int, void*);

}  // namespace cchmi::cuda
