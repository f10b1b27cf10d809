// Radius counts in max-norm on the CPU: the marginal counts of the KSG family.
#pragma once

#include "common/check.h"
#include "common/interrupt.h"
#include "cpu/method.h"
#include "cpu/simd.h"

namespace cchmi::cpu {

// For every point i of `points` ((n, d) row-major, finite), the number of other points j != i with
//   dist(i, j) <  radius[i]   (inclusive == false: KSG-1, Frenzel-Pompe, Ross), or
//   dist(i, j) <= radius[i]   (inclusive == true: KSG-2 extents, Gao et al.),
// where dist = max_c |fl(x_jc - x_ic)|, for the query rows t (point i = queries(t); every point when
// queries.all()): radius (m) finite values >= 0, out_count (m), row t for point queries(t).
// method: Tree, Brute, Sort (d == 1 only) or Auto. Returns the method that ran. When `interrupt`
// stops the kernel (interrupt.stopped()), the counts are unspecified.
template <typename T>
Method count_within(const T* points, index_t n, index_t d, QueryRows queries, const T* radius, bool inclusive,
                    index_t* out_count, Method method, int n_threads, Interrupt& interrupt);

// The two marginal counts of a KSG estimate at once, for the same points i in two spaces:
//   out_x[i] = #{j != i : dist_x(i, j) < radius_x[i]},  out_y[i] likewise in y  (<= when inclusive).
// x: (n, dx), y: (n, dy), row-major. With the brute-force method each pair (i, j) is visited once
// for both points and both spaces (half the work of two count_within calls); the other methods
// call count_within twice, as does a subset of queries (radii and outputs then have m rows, as in
// count_within). Returns the method that ran.
template <typename T>
Method count_within_pair(const T* x, index_t dx, const T* y, index_t dy, index_t n, QueryRows queries,
                         const T* radius_x, const T* radius_y, bool inclusive, index_t* out_x, index_t* out_y,
                         Method method, int n_threads, Interrupt& interrupt);

// Both run the implementation of the SIMD level in use (simd_level()); all levels agree bit for bit.

}  // namespace cchmi::cpu

// The implementations of each SIMD level (count_cpu.cpp, compiled once per level).
#define CCHMI_DECLARE_COUNT(level)                                                                        \
  namespace cchmi::cpu::level {                                                                           \
  template <typename T>                                                                                   \
  Method count_within(const T* points, index_t n, index_t d, QueryRows queries, const T* radius, bool inclusive, \
                      index_t* out_count, Method method, int n_threads, Interrupt& interrupt);            \
  template <typename T>                                                                                   \
  Method count_within_pair(const T* x, index_t dx, const T* y, index_t dy, index_t n, QueryRows queries,  \
                           const T* radius_x,                                                             \
                           const T* radius_y, bool inclusive, index_t* out_x, index_t* out_y, Method method, \
                           int n_threads, Interrupt& interrupt);                                          \
  }
CCHMI_SIMD_NAMESPACES(CCHMI_DECLARE_COUNT)
#undef CCHMI_DECLARE_COUNT
