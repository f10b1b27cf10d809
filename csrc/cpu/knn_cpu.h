// Exact k nearest neighbours in max-norm on the CPU.
#pragma once

#include "common/check.h"
#include "common/interrupt.h"
#include "cpu/method.h"
#include "cpu/simd.h"

namespace cchmi::cpu {

// For every query row t (point i = queries(t) of `points`, (n, d) row-major, finite; every point when
// queries.all()), the k nearest other points:
//   out_dist (m, k): their distances max_c |fl(x_jc - x_ic)|, ascending;
//   out_idx  (m, k): their indices; among equal distances the smaller index comes first.
// A subset of queries gives, row for row, the rows of the call on all points (bit for bit).
// Requires 1 <= k <= n - 1. method: Tree, Brute or Auto (Sort is for counts only).
// n_threads <= 0 uses OpenMP's default. Returns the method that ran. When `interrupt` stops the
// kernel (interrupt.stopped()), the outputs are unspecified.
// Runs the implementation of the SIMD level in use (simd_level()); all levels agree bit for bit.
template <typename T>
Method knn(const T* points, index_t n, index_t d, index_t k, QueryRows queries, T* out_dist, index_t* out_idx,
           Method method, int n_threads, Interrupt& interrupt);

}  // namespace cchmi::cpu

// The implementation of each SIMD level (knn_cpu.cpp, compiled once per level).
#define CCHMI_DECLARE_KNN(level)                                                                      \
  namespace cchmi::cpu::level {                                                                       \
  template <typename T>                                                                               \
  Method knn(const T* points, index_t n, index_t d, index_t k, QueryRows queries, T* out_dist, index_t* out_idx, \
             Method method, int n_threads, Interrupt& interrupt);                                     \
  }
CCHMI_SIMD_NAMESPACES(CCHMI_DECLARE_KNN)
#undef CCHMI_DECLARE_KNN
