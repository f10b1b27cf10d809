// Radius counts in max-norm on the CPU: the marginal counts of the KSG family.
#pragma once

#include "common/check.h"
#include "cpu/method.h"

namespace cchmi::cpu {

// For every point i of `points` ((n, d) row-major, finite), the number of other points j != i with
//   dist(i, j) <  radius[i]   (inclusive == false: KSG-1, Frenzel-Pompe, Ross), or
//   dist(i, j) <= radius[i]   (inclusive == true: KSG-2 extents, Gao et al.),
// where dist = max_c |fl(x_jc - x_ic)|. radius: n finite values >= 0. Writes out_count (n).
// method: Tree, Brute, Sort (d == 1 only) or Auto. Returns the method that ran.
template <typename T>
Method count_within(const T* points, index_t n, index_t d, const T* radius, bool inclusive,
                    index_t* out_count, Method method, int n_threads);

}  // namespace cchmi::cpu
