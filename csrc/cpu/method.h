// The search algorithms of the CPU kernels, and how `Auto` picks one from the problem's size.
#pragma once

#include "common/check.h"

namespace cchmi::cpu {

enum class Method : int {
  Auto = 0,   // pick by n and d (choose_method)
  Tree = 1,   // k-d tree (kdtree.h): low dimension
  Brute = 2,  // blocked brute force (blocked.h): high dimension, or few points
  Sort = 3,   // sort + binary search: radius counts in one dimension only
};

inline const char* method_name(Method m) {
  switch (m) {
    case Method::Auto: return "auto";
    case Method::Tree: return "tree";
    case Method::Brute: return "brute";
    case Method::Sort: return "sort";
  }
  return "?";
}

// The queries of a kernel call: every point (ids == nullptr, m == n: row t is point t) or a subset
// (row t of the outputs is point ids[t]; any order, repeats allowed). Per-query inputs (radii) and
// outputs have m rows, in this order.
struct QueryRows {
  const index_t* ids;
  index_t m;
  index_t operator()(index_t t) const { return ids ? ids[t] : t; }
  bool all() const { return ids == nullptr; }
};

inline Method checked_method(int m) {
  CCHMI_CHECK(m >= 0 && m <= 3, "method must be 0 (auto), 1 (tree), 2 (brute) or 3 (sort)");
  return static_cast<Method>(m);
}

// A k-d tree prunes well while n is large against 2^d; past that every query visits most leaves
// and the blocked scan, which vectorises, is faster. The thresholds come from bench/bench_knn.py on
// a 2-core AVX-512 machine (kNN, k = 3: n = 1e5, d = 12: tree 2.9 s, brute 4.9 s; n = 2e4, d = 12:
// tree 0.28 s, brute 0.20 s; n = 1e4, d = 16: tree 0.22 s, brute 0.057 s).
inline Method choose_method(index_t n, index_t d, bool counting) {
  if (n < 256) return Method::Brute;
  if (counting && d == 1) return Method::Sort;
  if (d > 12) return Method::Brute;
  return n >= (index_t{8} << d) ? Method::Tree : Method::Brute;
}

}  // namespace cchmi::cpu
