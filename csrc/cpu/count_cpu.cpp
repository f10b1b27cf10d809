#include "cpu/count_cpu.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "common/dispatch.h"
#include "common/parallel.h"
#include "cpu/blocked.h"
#include "cpu/kdtree.h"

namespace cchmi::cpu {
namespace {

constexpr index_t kLeafSize = 16;

// Whether the query itself passes its own test (distance 0): then it is counted and taken off.
template <typename T>
inline bool self_counted(T r, bool inclusive) {
  return inclusive ? T(0) <= r : T(0) < r;
}

// d == 1: sort once, then for each point gallop outwards from its own rank. fl(s - v) is
// non-decreasing in s, so the points passing the test form one run around the query in sorted
// order, and its two ends are found with O(log count) comparisons, each the exact test.
template <typename T>
void count_sort(const T* x, index_t n, const T* radius, bool inclusive, index_t* out, int n_threads) {
  std::vector<std::pair<T, index_t>> sorted(static_cast<size_t>(n));
  for (index_t i = 0; i < n; ++i) sorted[i] = {x[i], i};
  std::sort(sorted.begin(), sorted.end());
  std::vector<T> s(static_cast<size_t>(n));
  std::vector<index_t> order(static_cast<size_t>(n));
  for (index_t p = 0; p < n; ++p) {
    s[p] = sorted[p].first;
    order[p] = sorted[p].second;
  }
  sorted = {};

#pragma omp parallel for schedule(static, 4096) num_threads(n_threads)
  for (index_t p = 0; p < n; ++p) {
    const T v = s[p], r = radius[order[p]];
    auto pass = [&](T diff) { return inclusive ? diff <= r : diff < r; };
    // Upward: first index hi > p with !pass(s[hi] - v).
    index_t step = 1, good = p;  // `good` passes (or is p itself)
    while (p + step < n && pass(s[p + step] - v)) {
      good = p + step;
      step *= 2;
    }
    index_t bad = std::min(n, p + step);  // fails, or n
    while (bad - good > 1) {
      const index_t mid = good + (bad - good) / 2;
      (pass(s[mid] - v) ? good : bad) = mid;
    }
    const index_t hi = bad;
    // Downward: last index lo < p with !pass(v - s[lo]).
    step = 1;
    good = p;
    while (p - step >= 0 && pass(v - s[p - step])) {
      good = p - step;
      step *= 2;
    }
    bad = std::max<index_t>(-1, p - step);
    while (good - bad > 1) {
      const index_t mid = bad + (good - bad) / 2;
      (pass(v - s[mid]) ? good : bad) = mid;
    }
    const index_t lo = bad;
    // (lo, hi) holds the passing points and p; p is excluded whether or not it passes.
    out[order[p]] = hi - lo - 2;
  }
}

template <typename T>
void count_tree(const T* points, index_t n, index_t d, const T* radius, bool inclusive, index_t* out,
                int n_threads) {
  const KDTree<T> tree(points, n, d, kLeafSize, n_threads);
  dispatch_dim(d, [&](auto dim) {
    constexpr int D = decltype(dim)::value;
#pragma omp parallel num_threads(n_threads)
    {
      std::vector<index_t> stack;
#pragma omp for schedule(dynamic, 256)
      for (index_t p = 0; p < n; ++p) {
        const index_t i = tree.original_index(p);
        const T r = radius[i];
        out[i] = tree.template count<D>(tree.point(p), r, inclusive, stack) - self_counted(r, inclusive);
      }
    }
  });
}

template <typename T>
void count_brute(const T* points, index_t n, index_t d, const T* radius, bool inclusive, index_t* out,
                 int n_threads) {
  constexpr int W = Blocked<T>::W;
  constexpr int QB = kQueryTile;
  constexpr index_t kTilesPerGroup = 16;
  const Blocked<T> cand(points, n, d);
  const index_t chunk = blocks_per_chunk<T>(d);
  const index_t n_tiles = (n + QB - 1) / QB;
  const index_t n_groups = (n_tiles + kTilesPerGroup - 1) / kTilesPerGroup;

#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
  for (index_t g = 0; g < n_groups; ++g) {
    const index_t t_begin = g * kTilesPerGroup, t_end = std::min(n_tiles, t_begin + kTilesPerGroup);
    for (index_t i = t_begin * QB; i < std::min(n, t_end * QB); ++i) out[i] = 0;
    for (index_t b0 = 0; b0 < cand.nb; b0 += chunk) {
      const index_t b1 = std::min(cand.nb, b0 + chunk);
      for (index_t t = t_begin; t < t_end; ++t) {
        const index_t i0 = t * QB;
        const index_t nq = std::min<index_t>(QB, n - i0);
        const T* qs[QB];
        T r[QB];
        for (int q = 0; q < QB; ++q) {
          const index_t i = i0 + std::min<index_t>(q, nq - 1);
          qs[q] = points + i * d;
          r[q] = radius[i];
        }
        index_t tile_count[QB] = {};
        for (index_t b = b0; b < b1; ++b) {
          T acc[QB][W];
          distance_tile<T>(qs, cand.block(b), d, acc);
          for (int q = 0; q < QB; ++q) {
            int c = 0;
            if (inclusive) {
              for (int w = 0; w < W; ++w) c += acc[q][w] <= r[q];
            } else {
              for (int w = 0; w < W; ++w) c += acc[q][w] < r[q];
            }
            tile_count[q] += c;
          }
        }
        for (index_t q = 0; q < nq; ++q) out[i0 + q] += tile_count[q];
      }
    }
    for (index_t i = t_begin * QB; i < std::min(n, t_end * QB); ++i) out[i] -= self_counted(radius[i], inclusive);
  }
}

}  // namespace

template <typename T>
Method count_within(const T* points, index_t n, index_t d, const T* radius, bool inclusive, index_t* out,
                    Method method, int n_threads) {
  CCHMI_CHECK(n >= 1, "count_within: need at least 1 point");
  CCHMI_CHECK(d >= 1, "count_within: need at least 1 dimension");
  for (index_t i = 0; i < n; ++i)
    CCHMI_CHECK(std::isfinite(radius[i]) && radius[i] >= 0, "count_within: radii must be finite and >= 0");
  CCHMI_CHECK(method != Method::Sort || d == 1, "count_within: method 'sort' needs d == 1");
  if (method == Method::Auto) method = choose_method(n, d, /*counting=*/true);
  n_threads = resolve_threads(n_threads);
  switch (method) {
    case Method::Sort: count_sort(points, n, radius, inclusive, out, n_threads); break;
    case Method::Tree: count_tree(points, n, d, radius, inclusive, out, n_threads); break;
    default: count_brute(points, n, d, radius, inclusive, out, n_threads); break;
  }
  return method;
}

template Method count_within<float>(const float*, index_t, index_t, const float*, bool, index_t*, Method, int);
template Method count_within<double>(const double*, index_t, index_t, const double*, bool, index_t*, Method,
                                     int);

}  // namespace cchmi::cpu
