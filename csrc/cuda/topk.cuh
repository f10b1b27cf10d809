// The register top-k of the CUDA kNN kernel (host-callable too: the kernels are tested on the CPU
// by tests/test_cuda_emulated.py).
#pragma once

#include <climits>
#include <cmath>

#include "common/check.h"

#if defined(__CUDACC__)
#define CCHMI_HD __host__ __device__ __forceinline__
#else
#define CCHMI_HD inline
#endif

namespace cchmi::cuda {

// The k best candidates seen, as K >= k register slots sorted from the worst down: slot 0 holds
// the k-th nearest (the bar a candidate must beat), slots k..K-1 hold (-inf, -1) and never move.
// Every index into the arrays is a compile-time constant after unrolling, so they stay in registers
// (a data-dependent index, e.g. d[k - 1], would put them in local memory).
template <typename T, int K>
struct Best {
  T d[K];
  int i[K];

  CCHMI_HD void init(int k) {
#pragma unroll
    for (int s = 0; s < K; ++s) {
      d[s] = s < k ? static_cast<T>(INFINITY) : static_cast<T>(-INFINITY);
      i[s] = s < k ? INT_MAX : -1;
    }
  }

  // (dist, j) comes before (other_d, other_j): nearer, or as near with a smaller index.
  static CCHMI_HD bool before(T dist, int j, T other_d, int other_j) {
    return dist < other_d || (dist == other_d && j < other_j);
  }

  CCHMI_HD bool beats_worst(T dist, int j) const { return before(dist, j, d[0], i[0]); }

  // Drops slot 0 and inserts (dist, j) where it belongs (call only when it beats the worst).
  CCHMI_HD void insert(T dist, int j) {
    bool placed = false;
#pragma unroll
    for (int s = 0; s < K; ++s) {
      const int next = s + 1 < K ? s + 1 : s;  // a constant after unrolling; only read when s + 1 < K
      if (!placed) {
        if (s + 1 < K && before(dist, j, d[next], i[next])) {
          d[s] = d[next];
          i[s] = i[next];
        } else {
          d[s] = dist;
          i[s] = j;
          placed = true;
        }
      }
    }
  }

  // Writes the k neighbours nearest first: slot s (s < k) is the (k - s)-th nearest.
  CCHMI_HD void store(T* out_d, index_t* out_i, int k) const {
#pragma unroll
    for (int s = 0; s < K; ++s) {
      if (s < k) {
        out_d[k - 1 - s] = d[s];
        out_i[k - 1 - s] = i[s];
      }
    }
  }
};

}  // namespace cchmi::cuda
