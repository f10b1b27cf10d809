// Exact k nearest neighbours in max-norm on the CPU.
#pragma once

#include "common/check.h"
#include "cpu/method.h"

namespace cchmi::cpu {

// For every point i of `points` ((n, d) row-major, finite), the k nearest other points:
//   out_dist (n, k): their distances max_c |fl(x_jc - x_ic)|, ascending;
//   out_idx  (n, k): their indices; among equal distances the smaller index comes first.
// Requires 1 <= k <= n - 1. method: Tree, Brute or Auto (Sort is for counts only).
// n_threads <= 0 uses OpenMP's default. Returns the method that ran.
template <typename T>
Method knn(const T* points, index_t n, index_t d, index_t k, T* out_dist, index_t* out_idx,
           Method method, int n_threads);

}  // namespace cchmi::cpu
