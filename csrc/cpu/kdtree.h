// A k-d tree for exact max-norm queries in low dimension: the k nearest neighbours of a point, and
// the number of points within a radius.
//
// Exactness. A distance is max_d |fl(x_d - q_d)|: one rounding per coordinate, then exact abs/max.
// Rounding is monotone, so for every point x of a node's bounding box [lo, hi]
//   fl(lo_d - q_d) <= fl(x_d - q_d) <= fl(hi_d - q_d),
// which makes the box distances computed below exact lower / upper bounds of every computed
// distance inside the box. Pruning and whole-node counting therefore never change a result: the
// tree returns bit for bit what a brute-force scan in the same precision returns.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>
#include <vector>

#include "common/check.h"
#include "cpu/blocked.h"
#include "cpu/simd_target.h"

CCHMI_SIMD_BEGIN

// (dist, index) pairs ordered lexicographically: among equal distances the smaller index is nearer.
// This fixes the neighbour set under ties, so every backend returns the same neighbours.
template <typename T>
inline bool nearer(T da, index_t ia, T db, index_t ib) {
  return da < db || (da == db && ia < ib);
}

// The k best (distance, index) pairs seen so far, kept in caller-provided arrays of length k.
// Small k: a sorted list with insertion (the common case, k <= 16). Large k (up to n - 1): a binary
// max-heap, O(log k) per insertion, sorted once at the end. Either way the result is the k
// lexicographically smallest pairs, ascending.
template <typename T>
class KBest {
 public:
  static constexpr index_t kHeapAbove = 16;

  KBest(T* dist, index_t* idx, index_t k) : d_(dist), i_(idx), k_(k), heap_(k > kHeapAbove) {
    for (index_t t = 0; t < k; ++t) {
      d_[t] = std::numeric_limits<T>::infinity();
      i_[t] = std::numeric_limits<index_t>::max();
    }
  }
  // The entry a candidate must beat.
  T worst() const { return heap_ ? d_[0] : d_[k_ - 1]; }
  index_t worst_index() const { return heap_ ? i_[0] : i_[k_ - 1]; }
  // Whether (dist, j) enters the list.
  bool accepts(T dist, index_t j) const { return nearer(dist, j, worst(), worst_index()); }
  // Inserts (dist, j), dropping the current worst. The caller has checked accepts(dist, j).
  void push(T dist, index_t j) {
    if (!heap_) {
      index_t t = k_ - 1;
      while (t > 0 && nearer(dist, j, d_[t - 1], i_[t - 1])) {
        d_[t] = d_[t - 1];
        i_[t] = i_[t - 1];
        --t;
      }
      d_[t] = dist;
      i_[t] = j;
      return;
    }
    index_t t = 0;  // sift the new entry down from the root
    for (;;) {
      index_t c = 2 * t + 1;
      if (c >= k_) break;
      if (c + 1 < k_ && nearer(d_[c], i_[c], d_[c + 1], i_[c + 1])) ++c;  // the larger child
      if (!nearer(dist, j, d_[c], i_[c])) break;
      d_[t] = d_[c];
      i_[t] = i_[c];
      t = c;
    }
    d_[t] = dist;
    i_[t] = j;
  }
  // Leaves the arrays ascending.
  void finish() {
    if (!heap_) return;
    std::vector<std::pair<T, index_t>> tmp(static_cast<size_t>(k_));
    for (index_t t = 0; t < k_; ++t) tmp[t] = {d_[t], i_[t]};
    std::sort(tmp.begin(), tmp.end());  // pair order is the lexicographic (distance, index) order
    for (index_t t = 0; t < k_; ++t) {
      d_[t] = tmp[t].first;
      i_[t] = tmp[t].second;
    }
  }

 private:
  T* d_;
  index_t* i_;
  index_t k_;
  bool heap_;
};

// Leaf: points per leaf at most, one register tile: a leaf's distances are computed in one pass of
// vector instructions over its transposed copy (leaf_soa_). kNN queries favour small leaves (16:
// fewer candidates once the k-th distance is small); radius counts favour large ones (64: the
// boundary leaves are scanned wholesale, the interior counted by whole nodes).
template <typename T, int Leaf>
class KDTree {
 public:
  static constexpr int kLeaf = Leaf;

  // points: (n, d) row-major. The tree keeps a reordered copy, so `points` may be freed afterwards.
  // Nodes are numbered as in a binary heap (children of i: 2i+1, 2i+2); every leaf is at depth
  // `depth_`, where a range of at most kLeaf points remains after halving. Ranges split at the
  // median of the widest side, so the node ranges depend on n alone and subtrees build in parallel.
  KDTree(const T* points, index_t n, index_t d, int n_threads) : n_(n), d_(d) {
    CCHMI_CHECK(n >= 1 && d >= 1, "KDTree: need n >= 1, d >= 1");
    depth_ = 0;
    while (((n + (index_t{1} << depth_) - 1) >> depth_) > kLeaf) ++depth_;
    const index_t n_nodes = (index_t{2} << depth_) - 1;
    first_leaf_ = (index_t{1} << depth_) - 1;
    begin_.resize(static_cast<size_t>(n_nodes));
    end_.resize(static_cast<size_t>(n_nodes));
    box_.resize(static_cast<size_t>(n_nodes * 2 * d));
    pts_.assign(points, points + n * d);
    perm_.resize(static_cast<size_t>(n));
    std::iota(perm_.begin(), perm_.end(), index_t{0});
    // Scratch for the splits: a node over [b, e) uses entries [b, e) only, so concurrent subtree
    // builds never overlap. Freed after the build.
    scratch_keys_.resize(static_cast<size_t>(n));
    scratch_rows_.resize(static_cast<size_t>(n * d));
    scratch_ids_.resize(static_cast<size_t>(n));
#pragma omp parallel num_threads(n_threads)
#pragma omp single
    build(0, 0, n);
    scratch_keys_ = {};
    scratch_rows_ = {};
    scratch_ids_ = {};
    // Transposed leaves, padded with +inf (a padding lane's distance is +inf).
    leaf_soa_.assign(static_cast<size_t>(n_leaves() * d * kLeaf), std::numeric_limits<T>::infinity());
#pragma omp parallel for schedule(static) num_threads(n_threads)
    for (index_t l = 0; l < n_leaves(); ++l) {
      const index_t b = begin_[first_leaf_ + l], e = end_[first_leaf_ + l];
      T* tile = leaf_soa_.data() + l * d * kLeaf;
      for (index_t p = b; p < e; ++p)
        for (index_t c = 0; c < d; ++c) tile[c * kLeaf + (p - b)] = pts_[p * d + c];
    }
  }

  index_t size() const { return n_; }
  index_t dim() const { return d_; }
  // Reordered position -> original index. Queries are best issued in this order (locality).
  index_t original_index(index_t p) const { return perm_[p]; }
  const T* point(index_t p) const { return pts_.data() + p * d_; }

  index_t n_leaves() const { return first_leaf_ + 1; }

  // The k nearest other points of every point of leaf number `leaf` (0 <= leaf < n_leaves()),
  // written to out_dist / out_idx at each point's original row (k entries per row), ascending by
  // (distance, index). The leaf's queries share one traversal: a node is skipped when its box is
  // farther from the leaf's box than the worst current k-th distance of the group.
  template <int D>
  void knn_leaf(index_t leaf, index_t k, T* out_dist, index_t* out_idx,
                std::vector<std::pair<index_t, T>>& stack, std::vector<KBest<T>>& best) const {
    const index_t d = D > 0 ? D : d_;
    const index_t self_id = first_leaf_ + leaf;
    const index_t b = begin_[self_id], nq = end_[self_id] - b;
    best.clear();
    for (index_t q = 0; q < nq; ++q) {
      const index_t i = perm_[b + q];
      best.emplace_back(out_dist + i * k, out_idx + i * k, k);
    }
    auto scan = [&](index_t id) {
      const index_t cb = begin_[id], size = end_[id] - cb;
      for (index_t q = 0; q < nq; ++q) {
        const T* qp = pts_.data() + (b + q) * d;
        KBest<T>& kb = best[q];
        if (min_dist<D>(id, qp) > kb.worst()) continue;
        T dist[kLeaf];
        leaf_distances<D>(id, qp, dist);
        const index_t self = perm_[b + q];
        for (index_t w = 0; w < size; ++w) {
          const index_t j = perm_[cb + w];
          if (j != self && kb.accepts(dist[w], j)) kb.push(dist[w], j);
        }
      }
    };
    auto group_worst = [&] {
      T worst = 0;
      for (const auto& kb : best) worst = kb.worst() > worst ? kb.worst() : worst;
      return worst;
    };
    scan(self_id);  // the own leaf first: finite bounds early
    T bound = group_worst();
    stack.clear();
    stack.emplace_back(0, T(0));
    while (!stack.empty()) {
      const auto [id, md] = stack.back();
      stack.pop_back();
      if (md > bound) continue;
      if (is_leaf(id)) {
        if (id != self_id) {
          scan(id);
          bound = group_worst();
        }
        continue;
      }
      push_children(stack, id, box_gap<D>(2 * id + 1, self_id), box_gap<D>(2 * id + 2, self_id), bound);
    }
    for (auto& kb : best) kb.finish();
  }

  // The k nearest neighbours of q among all points except the one with original index `self`
  // (pass -1 to exclude none), by lexicographic (distance, index). Writes ascending lists.
  // `stack` is scratch space reused across calls.
  template <int D>
  void knn(const T* q, index_t self, index_t k, T* bd, index_t* bi,
           std::vector<std::pair<index_t, T>>& stack) const {
    KBest<T> best(bd, bi, k);
    stack.clear();
    stack.emplace_back(0, T(0));
    while (!stack.empty()) {
      const auto [id, md] = stack.back();
      stack.pop_back();
      if (md > best.worst()) continue;  // '>' not '>=': an equal distance with a smaller index may enter
      if (is_leaf(id)) {
        T dist[kLeaf];
        leaf_distances<D>(id, q, dist);
        const index_t b = begin_[id], size = end_[id] - b;
        for (index_t w = 0; w < size; ++w) {
          const index_t j = perm_[b + w];
          if (j != self && best.accepts(dist[w], j)) best.push(dist[w], j);
        }
      } else {
        push_children(stack, id, min_dist<D>(2 * id + 1, q), min_dist<D>(2 * id + 2, q), best.worst());
      }
    }
    best.finish();
  }

  // Number of points x (the query itself included if it is in the tree) with dist(x, q) < r, or
  // <= r when `inclusive`. Nodes entirely inside the ball are counted without visiting them.
  template <int D>
  index_t count(const T* q, T r, bool inclusive, std::vector<index_t>& stack) const {
    index_t total = 0;
    stack.clear();
    // Each node is classified once, by its parent: outside the ball (skipped), inside it
    // (counted whole), or straddling its boundary (pushed, or scanned if a leaf).
    auto visit = [&](index_t id) {
      T md, Md;
      box_distances<D>(id, q, md, Md);
      if (inclusive ? md > r : md >= r) return;
      if (inclusive ? Md <= r : Md < r) {
        total += end_[id] - begin_[id];
        return;
      }
      if (!is_leaf(id)) {
        stack.push_back(id);
        return;
      }
      T dist[kLeaf];
      leaf_distances<D>(id, q, dist);
      int inside = 0;  // padding lanes hold +inf and never pass
      if (inclusive) {
        for (int w = 0; w < kLeaf; ++w) inside += dist[w] <= r;
      } else {
        for (int w = 0; w < kLeaf; ++w) inside += dist[w] < r;
      }
      total += inside;
    };
    visit(0);
    while (!stack.empty()) {
      const index_t id = stack.back();
      stack.pop_back();
      visit(2 * id + 1);
      visit(2 * id + 2);
    }
    return total;
  }

 private:
  // Lower bound of the distance between any point of node `a` and any point of node `b`: for x in
  // a and q in b, fl(x_c - q_c) >= fl(lo_a - hi_b) by monotonicity of the rounded difference.
  template <int D>
  T box_gap(index_t a, index_t b) const {
    const index_t d = D > 0 ? D : d_;
    const T* alo = box_.data() + a * 2 * d;
    const T* ahi = alo + d;
    const T* blo = box_.data() + b * 2 * d;
    const T* bhi = blo + d;
    T gap = 0;
    for (index_t c = 0; c < d; ++c) {
      const T g1 = alo[c] - bhi[c], g2 = blo[c] - ahi[c];
      const T g = g1 > g2 ? g1 : g2;
      gap = g > gap ? g : gap;
    }
    return gap;
  }

  // md: lower bound, Md: upper bound of the distance from q to any point of node `id`.
  template <int D>
  void box_distances(index_t id, const T* q, T& md, T& Md) const {
    const index_t d = D > 0 ? D : d_;
    const T* lo = box_.data() + id * 2 * d;
    const T* hi = lo + d;
    md = 0;
    Md = 0;
    for (index_t c = 0; c < d; ++c) {
      const T below = lo[c] - q[c];  // > 0 when q is below the box
      const T above = q[c] - hi[c];  // > 0 when q is above the box
      const T gap = below > above ? below : above;
      md = gap > md ? gap : md;
      const T to_hi = std::fabs(hi[c] - q[c]), to_lo = std::fabs(lo[c] - q[c]);
      const T far = to_hi > to_lo ? to_hi : to_lo;
      Md = far > Md ? far : Md;
    }
  }

  // out[w] = distance from q to lane w of leaf `id` (+inf for padding lanes), vectorised over lanes.
  template <int D>
  void leaf_distances(index_t id, const T* q, T (&out)[kLeaf]) const {
    const index_t d = D > 0 ? D : d_;
    lane_distances<T, kLeaf>(leaf_soa_.data() + (id - first_leaf_) * d * kLeaf, q, d, out);
  }

  // Lower bound of the distance from q to any point of node `id` (0 if q is inside its box).
  template <int D>
  T min_dist(index_t id, const T* q) const {
    const index_t d = D > 0 ? D : d_;
    const T* lo = box_.data() + id * 2 * d;
    const T* hi = lo + d;
    T md = 0;
    for (index_t c = 0; c < d; ++c) {
      const T below = lo[c] - q[c];
      const T above = q[c] - hi[c];
      const T gap = below > above ? below : above;
      md = gap > md ? gap : md;
    }
    return md;
  }

  bool is_leaf(index_t id) const { return id >= first_leaf_; }

  // Pushes the children of `id` whose lower bounds dl (left) and dr (right) do not exceed `bound`,
  // the farther first so that the nearer one is searched first (depth-first, stack order).
  static void push_children(std::vector<std::pair<index_t, T>>& stack, index_t id, T dl, T dr, T bound) {
    const index_t left = 2 * id + 1, right = 2 * id + 2;
    if (dl <= dr) {
      if (dr <= bound) stack.emplace_back(right, dr);
      if (dl <= bound) stack.emplace_back(left, dl);
    } else {
      if (dl <= bound) stack.emplace_back(left, dl);
      if (dr <= bound) stack.emplace_back(right, dr);
    }
  }

  // Tight bounding box of the reordered points [b, e).
  void bounds(index_t b, index_t e, T* lo, T* hi) const {
    std::copy_n(pts_.data() + b * d_, d_, lo);
    std::copy_n(pts_.data() + b * d_, d_, hi);
    for (index_t p = b + 1; p < e; ++p) {
      const T* x = pts_.data() + p * d_;
      for (index_t c = 0; c < d_; ++c) {
        lo[c] = x[c] < lo[c] ? x[c] : lo[c];
        hi[c] = x[c] > hi[c] ? x[c] : hi[c];
      }
    }
  }

  // Builds node `id` over [b, e): its tight box, then (unless a leaf) a split at the median of the
  // box's widest side, the rows reordered so that each child holds a contiguous range.
  void build(index_t id, index_t b, index_t e) {
    begin_[id] = b;
    end_[id] = e;
    const T* lo = box_.data() + id * 2 * d_;
    const T* hi = lo + d_;
    bounds(b, e, box_.data() + id * 2 * d_, box_.data() + id * 2 * d_ + d_);
    if (is_leaf(id)) return;
    index_t split = 0;
    for (index_t c = 1; c < d_; ++c)
      if (hi[c] - lo[c] > hi[split] - lo[split]) split = c;
    const index_t mid = b + (e - b) / 2;
    {
      // Median by value on contiguous (key, position) pairs, then the rows follow.
      const auto keys = scratch_keys_.begin() + b;
      for (index_t p = b; p < e; ++p) keys[p - b] = {pts_[p * d_ + split], p};
      std::nth_element(keys, keys + (mid - b), keys + (e - b));
      T* rows = scratch_rows_.data() + b * d_;
      index_t* ids = scratch_ids_.data() + b;
      for (index_t p = 0; p < e - b; ++p) {
        std::copy_n(pts_.data() + keys[p].second * d_, d_, rows + p * d_);
        ids[p] = perm_[keys[p].second];
      }
      std::copy_n(rows, (e - b) * d_, pts_.begin() + b * d_);
      std::copy_n(ids, e - b, perm_.begin() + b);
    }
    if (e - b > 4096) {  // large subtrees in parallel: disjoint ranges, disjoint node ids
#pragma omp task default(shared) firstprivate(id, b, mid)
      build(2 * id + 1, b, mid);
#pragma omp task default(shared) firstprivate(id, mid, e)
      build(2 * id + 2, mid, e);
#pragma omp taskwait
    } else {
      build(2 * id + 1, b, mid);
      build(2 * id + 2, mid, e);
    }
  }

  index_t n_, d_, depth_, first_leaf_;
  std::vector<T> pts_;
  std::vector<index_t> perm_;
  std::vector<index_t> begin_, end_;
  std::vector<T> box_;       // per node: lo[d] then hi[d]
  std::vector<T> leaf_soa_;  // per leaf: d columns of kLeaf lanes
  std::vector<std::pair<T, index_t>> scratch_keys_;
  std::vector<T> scratch_rows_;
  std::vector<index_t> scratch_ids_;
};

CCHMI_SIMD_END
