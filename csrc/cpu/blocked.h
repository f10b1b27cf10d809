// Blocked brute force for max-norm distances in high dimension.
//
// Candidates are stored transposed in blocks of W points (W = one 64-byte vector: 16 floats or
// 8 doubles): block b holds coordinate c of points bW..bW+W-1 contiguously. A tile of QB queries
// against one block keeps QB x W running maxima in registers; the compiler vectorises over the W
// lanes (sub, abs, max per pair and dimension, the minimum for max-norm). Padding lanes hold +inf,
// so their distance is +inf and never passes a '<' or '<=' test against a finite radius.
//
// Distances are computed exactly as in the tree and the reference: max_c |fl(x_c - q_c)|. At the
// avx512 level the distance loops use explicit intrinsics; the baseline and avx2 levels compile the
// same portable loops for their vector width (cpu/simd_target.h).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/check.h"
#include "cpu/simd_target.h"

#define CCHMI_HAVE_RANGE (CCHMI_SIMD_LEVEL == 2)
#if CCHMI_HAVE_RANGE
#include <immintrin.h>
#endif

CCHMI_SIMD_BEGIN

#if CCHMI_HAVE_RANGE
// AVX-512DQ: VRANGEPS/PD with imm 0b1011 returns max(|a|, |b|) with the sign cleared, so each pair
// and dimension costs two instructions (subtract, range) instead of three (subtract, abs, max).
// Bit for bit the same value: the max of exact absolute values of the same rounded differences.
template <typename T>
struct Lanes;

template <>
struct Lanes<float> {
  using vec = __m512;
  static constexpr int n = 16;
  static vec zero() { return _mm512_setzero_ps(); }
  static vec load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, vec v) { _mm512_storeu_ps(p, v); }
  static vec max_abs_diff(vec acc, vec col, float q) {
    return _mm512_range_ps(acc, _mm512_sub_ps(col, _mm512_set1_ps(q)), 0x0B);
  }
};

template <>
struct Lanes<double> {
  using vec = __m512d;
  static constexpr int n = 8;
  static vec zero() { return _mm512_setzero_pd(); }
  static vec load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, vec v) { _mm512_storeu_pd(p, v); }
  static vec max_abs_diff(vec acc, vec col, double q) {
    return _mm512_range_pd(acc, _mm512_sub_pd(col, _mm512_set1_pd(q)), 0x0B);
  }
};
#endif

template <typename T>
struct Blocked {
  static constexpr int W = 64 / static_cast<int>(sizeof(T));
  index_t n = 0, d = 0, nb = 0;
  std::vector<T> data;  // nb * d * W

  Blocked(const T* points, index_t n_, index_t d_) : n(n_), d(d_), nb((n_ + W - 1) / W) {
    data.assign(static_cast<size_t>(nb * d * W), std::numeric_limits<T>::infinity());
    for (index_t i = 0; i < n; ++i) {
      const index_t b = i / W, w = i % W;
      for (index_t c = 0; c < d; ++c) data[static_cast<size_t>((b * d + c) * W + w)] = points[i * d + c];
    }
  }
  const T* block(index_t b) const { return data.data() + b * d * W; }
};

// Queries per register tile: QB x W running maxima must stay in registers (32 vector registers
// with AVX-512, 16 without).
constexpr int kQueryTile = CCHMI_HAVE_RANGE ? 8 : 4;

// acc[q][w] = max-norm distance between query q (row pointers qs[q], d coordinates) and lane w of
// the block.
template <typename T>
inline void distance_tile(const T* const* qs, const T* blk, index_t d, T (&acc)[kQueryTile][Blocked<T>::W]) {
  constexpr int W = Blocked<T>::W;
#if CCHMI_HAVE_RANGE
  static_assert(W == Lanes<T>::n, "one vector per block");
  typename Lanes<T>::vec a[kQueryTile];
  for (int q = 0; q < kQueryTile; ++q) a[q] = Lanes<T>::zero();
  for (index_t c = 0; c < d; ++c) {
    const auto col = Lanes<T>::load(blk + c * W);
    for (int q = 0; q < kQueryTile; ++q) a[q] = Lanes<T>::max_abs_diff(a[q], col, qs[q][c]);
  }
  for (int q = 0; q < kQueryTile; ++q) Lanes<T>::store(acc[q], a[q]);
#else
  for (int q = 0; q < kQueryTile; ++q)
    for (int w = 0; w < W; ++w) acc[q][w] = T(0);
  for (index_t c = 0; c < d; ++c) {
    const T* col = blk + c * W;
    for (int q = 0; q < kQueryTile; ++q) {
      const T qv = qs[q][c];
#pragma omp simd
      for (int w = 0; w < W; ++w) {
        const T diff = std::fabs(col[w] - qv);
        acc[q][w] = diff > acc[q][w] ? diff : acc[q][w];
      }
    }
  }
#endif
}

// out[w] = max-norm distance between q and lane w of a transposed tile of L lanes (d columns of L
// values each), for L a multiple of the vector width. Used for the k-d tree's leaves.
template <typename T, int L>
inline void lane_distances(const T* tile, const T* q, index_t d, T (&out)[L]) {
#if CCHMI_HAVE_RANGE
  static_assert(L % Lanes<T>::n == 0, "whole vectors per tile");
  constexpr int V = L / Lanes<T>::n;
  typename Lanes<T>::vec a[V];
  for (int v = 0; v < V; ++v) a[v] = Lanes<T>::zero();
  for (index_t c = 0; c < d; ++c)
    for (int v = 0; v < V; ++v) a[v] = Lanes<T>::max_abs_diff(a[v], Lanes<T>::load(tile + c * L + v * Lanes<T>::n), q[c]);
  for (int v = 0; v < V; ++v) Lanes<T>::store(out + v * Lanes<T>::n, a[v]);
#else
  for (int w = 0; w < L; ++w) out[w] = T(0);
  for (index_t c = 0; c < d; ++c) {
    const T qc = q[c];
    const T* col = tile + c * L;
#pragma omp simd
    for (int w = 0; w < L; ++w) {
      const T diff = std::fabs(col[w] - qc);
      out[w] = diff > out[w] ? diff : out[w];
    }
  }
#endif
}

// Candidate blocks are visited in chunks small enough to stay in the L2 cache while a group of
// query tiles reuses them. Returns the number of blocks per chunk.
template <typename T>
inline index_t blocks_per_chunk(index_t d) {
  const index_t bytes = 192 * 1024;
  const index_t per_block = d * Blocked<T>::W * static_cast<index_t>(sizeof(T));
  return std::max<index_t>(1, bytes / per_block);
}

CCHMI_SIMD_END
