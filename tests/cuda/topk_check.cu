// Host-side check of the CUDA kNN kernel's register top-k (csrc/cuda/topk.cuh) against a sort, on
// integer-valued data (many ties) and every k bucket the kernels use. Prints "ok" or the failures;
// exit status 1 on a failure. Built and run by tests/test_cuda_topk.py.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <utility>
#include <vector>

#include "cuda/topk.cuh"

using cchmi::index_t;
using cchmi::cuda::Best;

template <typename T, int K>
int check(int n, int d, int k, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> pick(0, 4);
  std::vector<T> x(static_cast<size_t>(n) * d);
  for (auto& v : x) v = static_cast<T>(pick(gen));
  int failures = 0;
  for (int q = 0; q < n; ++q) {
    Best<T, K> best;
    best.init(k);
    std::vector<std::pair<T, int>> all;
    for (int j = 0; j < n; ++j) {
      T dist = 0;
      for (int c = 0; c < d; ++c) dist = std::max(dist, std::fabs(x[j * d + c] - x[q * d + c]));
      if (j == q) continue;
      all.emplace_back(dist, j);
      if (best.beats_worst(dist, j)) best.insert(dist, j);
    }
    std::sort(all.begin(), all.end());
    std::vector<T> out_d(k);
    std::vector<index_t> out_i(k);
    best.store(out_d.data(), out_i.data(), k);
    for (int s = 0; s < k; ++s) {
      if (out_d[s] != all[s].first || out_i[s] != all[s].second) {
        if (failures++ < 5)
          std::printf("K=%d n=%d d=%d k=%d query %d slot %d: got (%g, %lld), want (%g, %d)\n", K, n, d, k, q, s,
                      static_cast<double>(out_d[s]), static_cast<long long>(out_i[s]),
                      static_cast<double>(all[s].first), all[s].second);
      }
    }
  }
  return failures;
}

int main() {
  int failures = 0;
  for (unsigned seed = 0; seed < 4; ++seed) {
    failures += check<float, 8>(2, 1, 1, seed);
    failures += check<float, 8>(9, 1, 8, seed);
    failures += check<float, 8>(41, 2, 1, seed);
    failures += check<float, 8>(41, 2, 5, seed);
    failures += check<double, 8>(41, 3, 7, seed);
    failures += check<float, 16>(53, 2, 9, seed);
    failures += check<float, 16>(53, 1, 16, seed);
    failures += check<double, 64>(65, 2, 64, seed);
    failures += check<float, 64>(100, 3, 33, seed);
  }
  if (failures) {
    std::printf("%d failures\n", failures);
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
