// Compiled once per SIMD level (cpu/simd_target.h); cpu/simd.cpp calls the level in use.
#include "cpu/knn_cpu.h"

#include <algorithm>
#include <limits>
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

// In one to three dimensions the queries of a leaf share one traversal (KDTree::knn_leaf): the
// group's bound is nearly as tight as each query's own. Beyond that the group bound gets loose and
// every query traverses the tree on its own, in tree order for locality.
constexpr index_t kMaxBatchedDim = 3;
// Queries per work item when each query traverses the tree on its own.
constexpr index_t kQueriesPerItem = 256;

template <typename T>
void knn_tree(const T* points, index_t n, index_t d, index_t k, QueryRows queries, T* out_dist, index_t* out_idx,
              int n_threads, Interrupt& interrupt) {
  const KDTree<T, 16> tree(points, n, d, n_threads);
  dispatch_dim(d, [&](auto dim) {
    constexpr int D = decltype(dim)::value;
#pragma omp parallel num_threads(n_threads)
    {
      std::vector<std::pair<index_t, T>> stack;
      if (!queries.all()) {
        // A subset: each query traverses on its own (the leaf groups hold other points too), in
        // the order given (a caller passing spatially sorted tiles keeps the locality).
        const index_t n_items = (queries.m + kQueriesPerItem - 1) / kQueriesPerItem;
#pragma omp for schedule(dynamic, 1)
        for (index_t item = 0; item < n_items; ++item) {
          if (interrupt.stop()) continue;
          const index_t t_end = std::min(queries.m, (item + 1) * kQueriesPerItem);
          for (index_t t = item * kQueriesPerItem; t < t_end; ++t) {
            const index_t i = queries(t);
            tree.template knn<D>(points + i * d, i, k, out_dist + t * k, out_idx + t * k, stack);
          }
        }
      } else if (d <= kMaxBatchedDim) {
        std::vector<KBest<T>> best;
#pragma omp for schedule(dynamic, 16)
        for (index_t leaf = 0; leaf < tree.n_leaves(); ++leaf) {
          if (interrupt.stop()) continue;
          tree.template knn_leaf<D>(leaf, k, out_dist, out_idx, stack, best);
        }
      } else {
        const index_t n_items = (n + kQueriesPerItem - 1) / kQueriesPerItem;
#pragma omp for schedule(dynamic, 1)
        for (index_t item = 0; item < n_items; ++item) {
          if (interrupt.stop()) continue;
          const index_t p_end = std::min(n, (item + 1) * kQueriesPerItem);
          for (index_t p = item * kQueriesPerItem; p < p_end; ++p) {
            const index_t i = tree.original_index(p);
            tree.template knn<D>(tree.point(p), i, k, out_dist + i * k, out_idx + i * k, stack);
          }
        }
      }
    }
  });
}

template <typename T>
void knn_brute(const T* points, index_t n, index_t d, index_t k, QueryRows queries, T* out_dist, index_t* out_idx,
               int n_threads, Interrupt& interrupt) {
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
    const index_t i_begin = g * kTilesPerGroup * QB;
    const index_t i_end = std::min(m, i_begin + kTilesPerGroup * QB);
    // The lists live in the output rows; padding queries of the last tile write nowhere.
    std::vector<KBest<T>> best;
    best.reserve(static_cast<size_t>(i_end - i_begin));
    for (index_t i = i_begin; i < i_end; ++i) best.emplace_back(out_dist + i * k, out_idx + i * k, k);
    for (index_t b0 = 0; b0 < cand.nb; b0 += chunk) {
      const index_t b1 = std::min(cand.nb, b0 + chunk);
      for (index_t i0 = i_begin; i0 < i_end; i0 += QB) {
        const index_t nq = std::min<index_t>(QB, m - i0);
        const T* qs[QB];
        index_t self[QB];
        for (int q = 0; q < QB; ++q) {
          self[q] = queries(i0 + std::min<index_t>(q, nq - 1));
          qs[q] = points + self[q] * d;
        }
        for (index_t b = b0; b < b1; ++b) {
          T acc[QB][W];
          distance_tile<T>(qs, cand.block(b), d, acc);
          for (index_t q = 0; q < nq; ++q) {
            KBest<T>& kb = best[i0 - i_begin + q];
            const T worst = kb.worst();
            bool any = false;
            for (int w = 0; w < W; ++w) any |= acc[q][w] < worst;
            if (!any) continue;
            // Candidates arrive in increasing index order, so an equal distance never displaces
            // an entry (the lexicographic rule): '<' is exact here.
            for (int w = 0; w < W; ++w) {
              const index_t j = b * W + w;
              if (acc[q][w] < kb.worst() && j != self[q]) kb.push(acc[q][w], j);
            }
          }
        }
      }
    }
    for (auto& kb : best) kb.finish();
  }
}

}  // namespace

template <typename T>
Method knn(const T* points, index_t n, index_t d, index_t k, QueryRows queries, T* out_dist, index_t* out_idx,
           Method method, int n_threads, Interrupt& interrupt) {
  CCHMI_CHECK(n >= 2, "knn: need at least 2 points");
  CCHMI_CHECK(d >= 1, "knn: need at least 1 dimension");
  CCHMI_CHECK(k >= 1 && k <= n - 1, "knn: need 1 <= k <= n - 1");
  CCHMI_CHECK(method != Method::Sort, "knn: method 'sort' is for radius counts only");
  CCHMI_CHECK(queries.all() ? queries.m == n : queries.m >= 0, "knn: bad number of queries");
  for (index_t t = 0; !queries.all() && t < queries.m; ++t)
    CCHMI_CHECK(queries(t) >= 0 && queries(t) < n, "knn: queries must be rows of points (0 <= q < n)");
  if (method == Method::Auto) method = choose_method(n, d, /*counting=*/false);
  if (queries.m == 0) return method;
  n_threads = resolve_threads(n_threads);
  if (method == Method::Tree)
    knn_tree(points, n, d, k, queries, out_dist, out_idx, n_threads, interrupt);
  else
    knn_brute(points, n, d, k, queries, out_dist, out_idx, n_threads, interrupt);
  return method;
}

template Method knn<float>(const float*, index_t, index_t, index_t, QueryRows, float*, index_t*, Method, int,
                           Interrupt&);
template Method knn<double>(const double*, index_t, index_t, index_t, QueryRows, double*, index_t*, Method, int,
                            Interrupt&);

CCHMI_SIMD_END
