// Compiled once per SIMD level (cpu/simd_target.h); cpu/simd.cpp calls the level in use.
#include "cpu/count_cpu.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "common/dispatch.h"
#include "common/interrupt.h"
#include "common/parallel.h"
#include "cpu/blocked.h"
#include "cpu/kdtree.h"
#include "cpu/simd_target.h"

CCHMI_SIMD_BEGIN
namespace {

// Points per work item of the per-point loops (the unit of scheduling and of interrupt polling).
constexpr index_t kSortPointsPerItem = 4096;
constexpr index_t kTreePointsPerItem = 256;

// Whether the query itself passes its own test (distance 0): then it is counted and taken off.
template <typename T>
inline bool self_counted(T r, bool inclusive) {
  return inclusive ? T(0) <= r : T(0) < r;
}

// Sorts v with OpenMP tasks: halves sorted in parallel, then merged.
template <typename It>
void parallel_sort(It first, It last) {
  const auto size = last - first;
  if (size < 65536) {
    std::sort(first, last);
    return;
  }
  const It mid = first + size / 2;
#pragma omp task default(shared) firstprivate(first, mid)
  parallel_sort(first, mid);
#pragma omp task default(shared) firstprivate(mid, last)
  parallel_sort(mid, last);
#pragma omp taskwait
  std::inplace_merge(first, mid, last);
}

// d == 1: sort once, then for each point gallop outwards from its own rank. fl(s - v) is
// non-decreasing in s, so the points passing the test form one run around the query in sorted
// order, and its two ends are found with O(log count) comparisons, each the exact test.
template <typename T>
void count_sort(const T* x, index_t n, QueryRows queries, const T* radius, bool inclusive, index_t* out,
                int n_threads, Interrupt& interrupt) {
  std::vector<std::pair<T, index_t>> sorted(static_cast<size_t>(n));
  for (index_t i = 0; i < n; ++i) sorted[i] = {x[i], i};
#pragma omp parallel num_threads(n_threads)
#pragma omp single
  parallel_sort(sorted.begin(), sorted.end());
  std::vector<T> s(static_cast<size_t>(n));
  std::vector<index_t> order(static_cast<size_t>(n));
  for (index_t p = 0; p < n; ++p) {
    s[p] = sorted[p].first;
    order[p] = sorted[p].second;
  }
  sorted = {};
  // All points: query p is the p-th in sorted order (row order[p]); a subset: query row u is the
  // point queries(u), at sorted position rank[queries(u)].
  std::vector<index_t> rank;
  if (!queries.all()) {
    rank.resize(static_cast<size_t>(n));
    for (index_t p = 0; p < n; ++p) rank[order[p]] = p;
  }

  const index_t m = queries.m;
  const index_t n_items = (m + kSortPointsPerItem - 1) / kSortPointsPerItem;
#pragma omp parallel for schedule(static, 1) num_threads(n_threads)
  for (index_t item = 0; item < n_items; ++item) {
    if (interrupt.stop()) continue;
    const index_t u_end = std::min(m, (item + 1) * kSortPointsPerItem);
    for (index_t u = item * kSortPointsPerItem; u < u_end; ++u) {
      const index_t p = queries.all() ? u : rank[queries(u)];
      const index_t row = queries.all() ? order[p] : u;
      const T v = s[p], r = radius[row];
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
      out[row] = hi - lo - 2;
    }
  }
}

template <typename T>
void count_tree(const T* points, index_t n, index_t d, QueryRows queries, const T* radius, bool inclusive,
                index_t* out, int n_threads, Interrupt& interrupt) {
  const KDTree<T, 64> tree(points, n, d, n_threads);
  dispatch_dim(d, [&](auto dim) {
    constexpr int D = decltype(dim)::value;
#pragma omp parallel num_threads(n_threads)
    {
      std::vector<index_t> stack;
      // All points: in tree order (locality), row = original index; a subset: in the order given.
      const index_t m = queries.m;
      const index_t n_items = (m + kTreePointsPerItem - 1) / kTreePointsPerItem;
#pragma omp for schedule(dynamic, 1)
      for (index_t item = 0; item < n_items; ++item) {
        if (interrupt.stop()) continue;
        const index_t u_end = std::min(m, (item + 1) * kTreePointsPerItem);
        for (index_t u = item * kTreePointsPerItem; u < u_end; ++u) {
          const index_t row = queries.all() ? tree.original_index(u) : u;
          const T* q = queries.all() ? tree.point(u) : points + queries(u) * d;
          const T r = radius[row];
          out[row] = tree.template count<D>(q, r, inclusive, stack) - self_counted(r, inclusive);
        }
      }
    }
  });
}

template <typename T>
void count_brute(const T* points, index_t n, index_t d, QueryRows queries, const T* radius, bool inclusive,
                 index_t* out, int n_threads, Interrupt& interrupt) {
  constexpr int W = Blocked<T>::W;
  constexpr int QB = kQueryTile;
  constexpr index_t kTilesPerGroup = 16;
  const Blocked<T> cand(points, n, d);
  const index_t chunk = blocks_per_chunk<T>(d);
  const index_t m = queries.m;  // rows i below are query rows; queries(i) is the point
  const index_t n_tiles = (m + QB - 1) / QB;
  const index_t n_groups = (n_tiles + kTilesPerGroup - 1) / kTilesPerGroup;

#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
  for (index_t g = 0; g < n_groups; ++g) {
    if (interrupt.stop()) continue;
    const index_t t_begin = g * kTilesPerGroup, t_end = std::min(n_tiles, t_begin + kTilesPerGroup);
    for (index_t i = t_begin * QB; i < std::min(m, t_end * QB); ++i) out[i] = 0;
    for (index_t b0 = 0; b0 < cand.nb; b0 += chunk) {
      const index_t b1 = std::min(cand.nb, b0 + chunk);
      for (index_t t = t_begin; t < t_end; ++t) {
        const index_t i0 = t * QB;
        const index_t nq = std::min<index_t>(QB, m - i0);
        const T* qs[QB];
        T r[QB];
        for (int q = 0; q < QB; ++q) {
          const index_t i = i0 + std::min<index_t>(q, nq - 1);
          qs[q] = points + queries(i) * d;
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
    for (index_t i = t_begin * QB; i < std::min(m, t_end * QB); ++i) out[i] -= self_counted(radius[i], inclusive);
  }
}

// Each pair once: query rows are grouped by candidate block; a group scans only the blocks from
// its own on, and every pair (i, j), j > i, updates the counts of both points in both spaces.
// Counts of the candidate side go to thread-private arrays, summed at the end.
template <typename T>
void count_pair_brute(const T* x, index_t dx, const T* y, index_t dy, index_t n, const T* rx, const T* ry,
                      bool inclusive, index_t* out_x, index_t* out_y, int n_threads, Interrupt& interrupt) {
  constexpr int W = Blocked<T>::W;
  constexpr int QB = kQueryTile;
  constexpr index_t kBlocksPerGroup = 4;
  const Blocked<T> bx(x, n, dx), by(y, n, dy);
  const index_t nb = bx.nb;
  // Candidate radii per lane; padding lanes get -1, which no distance passes.
  std::vector<T> crx(static_cast<size_t>(nb * W), T(-1)), cry(static_cast<size_t>(nb * W), T(-1));
  std::copy_n(rx, n, crx.begin());
  std::copy_n(ry, n, cry.begin());
  const index_t chunk = blocks_per_chunk<T>(dx + dy);
  const index_t n_groups = (nb + kBlocksPerGroup - 1) / kBlocksPerGroup;
  std::vector<std::vector<index_t>> part_x(static_cast<size_t>(n_threads)), part_y(static_cast<size_t>(n_threads));

#pragma omp parallel num_threads(n_threads)
  {
    const int tid = thread_num();
    std::vector<index_t>& my_x = part_x[tid];
    std::vector<index_t>& my_y = part_y[tid];
    my_x.assign(static_cast<size_t>(nb * W), 0);
    my_y.assign(static_cast<size_t>(nb * W), 0);
#pragma omp for schedule(dynamic, 1)
    for (index_t g = 0; g < n_groups; ++g) {
      if (interrupt.stop()) continue;
      const index_t blk_begin = g * kBlocksPerGroup;
      const index_t i_begin = blk_begin * W, i_end = std::min(n, (blk_begin + kBlocksPerGroup) * W);
      for (index_t b0 = blk_begin; b0 < nb; b0 += chunk) {
        const index_t b1 = std::min(nb, b0 + chunk);
        for (index_t i0 = i_begin; i0 < i_end; i0 += QB) {
          const index_t nq = std::min<index_t>(QB, i_end - i0);
          const T *qx[QB], *qy[QB];
          T rqx[QB], rqy[QB];
          for (int q = 0; q < QB; ++q) {
            const index_t i = i0 + std::min<index_t>(q, nq - 1);
            qx[q] = x + i * dx;
            qy[q] = y + i * dy;
            rqx[q] = rx[i];
            rqy[q] = ry[i];
          }
          for (index_t b = std::max(b0, i0 / W); b < b1; ++b) {
            T ax[QB][W], ay[QB][W];
            distance_tile<T>(qx, bx.block(b), dx, ax);
            distance_tile<T>(qy, by.block(b), dy, ay);
            const T* cbx = crx.data() + b * W;
            const T* cby = cry.data() + b * W;
            index_t col_x[W] = {}, col_y[W] = {};
            for (index_t q = 0; q < nq; ++q) {
              const index_t i = i0 + q;
              // Lanes holding j > i: all of them past the query's own block.
              const index_t first = std::max<index_t>(0, std::min<index_t>(W, i + 1 - b * W));
              index_t row_x = 0, row_y = 0;
              for (int w = static_cast<int>(first); w < W; ++w) {
                const bool px = inclusive ? ax[q][w] <= rqx[q] : ax[q][w] < rqx[q];
                const bool py = inclusive ? ay[q][w] <= rqy[q] : ay[q][w] < rqy[q];
                const bool cx = inclusive ? ax[q][w] <= cbx[w] : ax[q][w] < cbx[w];
                const bool cy = inclusive ? ay[q][w] <= cby[w] : ay[q][w] < cby[w];
                row_x += px;
                row_y += py;
                col_x[w] += cx;
                col_y[w] += cy;
              }
              my_x[i] += row_x;
              my_y[i] += row_y;
            }
            for (int w = 0; w < W; ++w) {
              my_x[b * W + w] += col_x[w];
              my_y[b * W + w] += col_y[w];
            }
          }
        }
      }
    }
  }
  for (index_t i = 0; i < n; ++i) {
    index_t cx = 0, cy = 0;
    for (int t = 0; t < n_threads; ++t) {
      if (part_x[t].empty()) continue;  // a thread that got no group never sized its arrays
      cx += part_x[t][i];
      cy += part_y[t][i];
    }
    out_x[i] = cx;
    out_y[i] = cy;
  }
}

void check_queries(QueryRows queries, index_t n, const char* what) {
  CCHMI_CHECK(queries.all() ? queries.m == n : queries.m >= 0, std::string(what) + ": bad number of queries");
  for (index_t t = 0; !queries.all() && t < queries.m; ++t)
    CCHMI_CHECK(queries(t) >= 0 && queries(t) < n, std::string(what) + ": queries must be rows of points (0 <= q < n)");
}

template <typename T>
void check_radii(const T* radius, index_t n, const char* what) {
  for (index_t i = 0; i < n; ++i)
    CCHMI_CHECK(std::isfinite(radius[i]) && radius[i] >= 0, std::string(what) + ": radii must be finite and >= 0");
}

// count_within on checked arguments: resolves `auto` and runs the method.
template <typename T>
Method count_checked(const T* points, index_t n, index_t d, QueryRows queries, const T* radius, bool inclusive,
                     index_t* out, Method method, int n_threads, Interrupt& interrupt) {
  CCHMI_CHECK(method != Method::Sort || d == 1, "count_within: method 'sort' needs d == 1");
  if (method == Method::Auto) method = choose_method(n, d, /*counting=*/true);
  if (queries.m == 0) return method;
  switch (method) {
    case Method::Sort: count_sort(points, n, queries, radius, inclusive, out, n_threads, interrupt); break;
    case Method::Tree: count_tree(points, n, d, queries, radius, inclusive, out, n_threads, interrupt); break;
    default: count_brute(points, n, d, queries, radius, inclusive, out, n_threads, interrupt); break;
  }
  return method;
}

}  // namespace

template <typename T>
Method count_within_pair(const T* x, index_t dx, const T* y, index_t dy, index_t n, QueryRows queries,
                         const T* radius_x, const T* radius_y, bool inclusive, index_t* out_x, index_t* out_y,
                         Method method, int n_threads, Interrupt& interrupt) {
  CCHMI_CHECK(n >= 1 && dx >= 1 && dy >= 1, "count_within_pair: need n >= 1 and dimensions >= 1");
  check_queries(queries, n, "count_within_pair");
  check_radii(radius_x, queries.m, "count_within_pair");
  check_radii(radius_y, queries.m, "count_within_pair");
  n_threads = resolve_threads(n_threads);
  if (queries.all() && method == Method::Auto) {
    // The pair kernel when both spaces would be scanned by brute force, and its per-thread
    // candidate arrays stay small (n * threads entries of 2 x 8 bytes: at most 256 MiB).
    const bool brute = choose_method(n, dx, true) == Method::Brute && choose_method(n, dy, true) == Method::Brute;
    method = brute && n * n_threads <= (index_t{1} << 24) ? Method::Brute : Method::Auto;
  }
  if (queries.all() && method == Method::Brute) {
    count_pair_brute(x, dx, y, dy, n, radius_x, radius_y, inclusive, out_x, out_y, n_threads, interrupt);
    return method;
  }
  const Method mx = count_checked(x, n, dx, queries, radius_x, inclusive, out_x, method, n_threads, interrupt);
  if (interrupt.stopped()) return mx;
  const Method my = count_checked(y, n, dy, queries, radius_y, inclusive, out_y, method, n_threads, interrupt);
  return mx == my ? mx : Method::Auto;  // "auto": the two spaces took different methods
}

template <typename T>
Method count_within(const T* points, index_t n, index_t d, QueryRows queries, const T* radius, bool inclusive,
                    index_t* out, Method method, int n_threads, Interrupt& interrupt) {
  CCHMI_CHECK(n >= 1, "count_within: need at least 1 point");
  CCHMI_CHECK(d >= 1, "count_within: need at least 1 dimension");
  check_queries(queries, n, "count_within");
  check_radii(radius, queries.m, "count_within");
  return count_checked(points, n, d, queries, radius, inclusive, out, method, resolve_threads(n_threads), interrupt);
}

template Method count_within_pair<float>(const float*, index_t, const float*, index_t, index_t, QueryRows,
                                        const float*, const float*, bool, index_t*, index_t*, Method, int, Interrupt&);
template Method count_within_pair<double>(const double*, index_t, const double*, index_t, index_t, QueryRows,
                                         const double*, const double*, bool, index_t*, index_t*, Method, int,
                                         Interrupt&);
template Method count_within<float>(const float*, index_t, index_t, QueryRows, const float*, bool, index_t*,
                                    Method, int, Interrupt&);
template Method count_within<double>(const double*, index_t, index_t, QueryRows, const double*, bool, index_t*,
                                     Method, int, Interrupt&);

CCHMI_SIMD_END
