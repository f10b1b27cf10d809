// The CUDA kNN and counting kernels (csrc/cuda/knn_cuda.cu, count_cuda.cu), run unchanged on the
// CPU by the emulator (emulate.h), against brute force: neighbour lists, distances and counts must
// be equal exactly, on data with ties, in spatial and in random order, for the dimension-specialised
// and the generic kernels, odd sizes, several k and batches; and the same kernels over a list of
// query blocks (knn_blocks, count_within_pair_blocks: the full call's rows, the others unwritten; an
// empty list writes nothing). Prints "ok" or the first failures; exit status 1 on a failure. Built
// and run by tests/test_cuda_emulated.py.
#define CCHMI_EMULATE_CUDA 1

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "cuda/count_cuda.cu"
#include "cuda/knn_cuda.cu"

using cchmi::index_t;
using cchmi::cuda::kTileRows;

namespace {

int failures = 0;

void fail(const char* what, int b, index_t i, int s) {
  if (failures++ < 10) std::printf("mismatch: %s, problem %d, point %lld, slot %d\n", what, b, (long long)i, s);
}

template <typename T>
T dist(const T* a, const T* b, index_t d) {
  T m = 0;
  for (index_t c = 0; c < d; ++c) m = std::max(m, std::fabs(a[c] - b[c]));
  return m;
}

template <typename T>
void boxes(const std::vector<T>& pts, int batch, index_t n, index_t d, std::vector<T>& lo, std::vector<T>& hi) {
  const index_t tiles = (n + kTileRows - 1) / kTileRows;
  lo.assign(batch * tiles * d, 0);
  hi.assign(batch * tiles * d, 0);
  for (int b = 0; b < batch; ++b)
    for (index_t t = 0; t < tiles; ++t)
      for (index_t c = 0; c < d; ++c) {
        T mn = INFINITY, mx = -INFINITY;
        for (index_t i = t * kTileRows; i < std::min(n, (t + 1) * kTileRows); ++i) {
          mn = std::min(mn, pts[(b * n + i) * d + c]);
          mx = std::max(mx, pts[(b * n + i) * d + c]);
        }
        lo[(b * tiles + t) * d + c] = mn;
        hi[(b * tiles + t) * d + c] = mx;
      }
}

// A list of distinct query blocks (of kTileRows sorted rows) in random order: about half of them,
// the last (partial) one always, or none when `none`.
std::vector<index_t> some_blocks(index_t n, bool none, std::mt19937& gen) {
  const index_t tiles = (n + kTileRows - 1) / kTileRows;
  std::vector<index_t> blocks;
  if (none) return blocks;
  for (index_t t = 0; t < tiles; ++t)
    if (t == tiles - 1 || gen() % 2) blocks.push_back(t);
  std::shuffle(blocks.begin(), blocks.end(), gen);
  return blocks;
}

// Rows of listed blocks must equal `full` (width values per row); the others keep `fill` (unwritten).
template <typename V>
void check_listed(const char* what, const std::vector<V>& got, const std::vector<V>& full, V fill, int batch,
                  index_t n, index_t width, const std::vector<index_t>& blocks) {
  std::vector<bool> listed(n, false);
  for (index_t t : blocks)
    for (index_t i = t * kTileRows; i < std::min(n, (t + 1) * kTileRows); ++i) listed[i] = true;
  for (int b = 0; b < batch; ++b)
    for (index_t i = 0; i < n; ++i)
      for (index_t s = 0; s < width; ++s) {
        const index_t at = (b * n + i) * width + s;
        if (listed[i] ? got[at] != full[at] : got[at] != fill) fail(what, b, i, static_cast<int>(s));
      }
}

// One case: `batch` problems of n points in d dims, values on a coarse grid (ties) or continuous,
// sorted by their first coordinate (spatial) or not; `order` maps sorted rows to original indices.
template <typename T>
void check(int batch, index_t n, index_t d, index_t k, bool grid, bool spatial, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal;
  std::uniform_int_distribution<int> coarse(-2, 2);
  std::vector<T> pts(batch * n * d);
  std::vector<index_t> order(batch * n);
  for (int b = 0; b < batch; ++b) {
    std::vector<std::vector<T>> rows(n, std::vector<T>(d));
    for (auto& row : rows)
      for (auto& v : row) v = grid ? static_cast<T>(coarse(gen)) : static_cast<T>(normal(gen));
    for (index_t i = 0; i < n; i += 7) rows[i] = rows[(i * 3 + 1) % n];  // duplicated rows
    std::vector<index_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0);
    if (spatial)
      std::stable_sort(perm.begin(), perm.end(), [&](index_t a, index_t c) { return rows[a][0] < rows[c][0]; });
    else
      std::shuffle(perm.begin(), perm.end(), gen);
    for (index_t i = 0; i < n; ++i) {
      order[b * n + i] = perm[i];
      for (index_t c = 0; c < d; ++c) pts[(b * n + i) * d + c] = rows[perm[i]][c];
    }
  }
  std::vector<T> lo, hi;
  boxes(pts, batch, n, d, lo, hi);
  std::vector<T> out_d(batch * n * k);
  std::vector<index_t> out_i(batch * n * k);
  cchmi::cuda::knn<T>(pts.data(), order.data(), lo.data(), hi.data(), batch, n, d, k, out_d.data(), out_i.data(), 0,
                      nullptr);
  // The rows of some query blocks (knn_blocks): those of the full call, the other rows unwritten.
  for (bool none : {false, true}) {
    const std::vector<index_t> blocks = some_blocks(n, none, gen);
    const T fill_d = static_cast<T>(-7);
    std::vector<T> sub_d(batch * n * k, fill_d);
    std::vector<index_t> sub_i(batch * n * k, -7);
    cchmi::cuda::knn_blocks<T>(pts.data(), order.data(), lo.data(), hi.data(), batch, n, d, k, blocks.data(),
                               static_cast<index_t>(blocks.size()), sub_d.data(), sub_i.data(), 0, nullptr);
    check_listed("knn_blocks distance", sub_d, out_d, fill_d, batch, n, k, blocks);
    check_listed("knn_blocks index", sub_i, out_i, index_t{-7}, batch, n, k, blocks);
  }
  std::vector<T> radius(batch * n);
  for (int b = 0; b < batch; ++b) {
    for (index_t i = 0; i < n; ++i) {
      std::vector<std::pair<T, index_t>> all;
      for (index_t j = 0; j < n; ++j)
        if (j != i) all.emplace_back(dist(&pts[(b * n + i) * d], &pts[(b * n + j) * d], d), order[b * n + j]);
      std::sort(all.begin(), all.end());
      for (index_t s = 0; s < k; ++s) {
        if (out_d[(b * n + i) * k + s] != all[s].first) fail("knn distance", b, i, static_cast<int>(s));
        if (out_i[(b * n + i) * k + s] != all[s].second) fail("knn index", b, i, static_cast<int>(s));
      }
      radius[b * n + i] = all[k - 1].first;  // on the boundary of some points: '<' and '<=' differ
    }
  }
  // Counts in x = the first dx columns and y = the rest, and in x alone, both comparisons.
  const index_t dx = (d + 1) / 2, dy = d - dx;
  std::vector<T> xs(batch * n * dx), ys(batch * n * (dy > 0 ? dy : 1));
  for (index_t r = 0; r < batch * n; ++r) {
    for (index_t c = 0; c < dx; ++c) xs[r * dx + c] = pts[r * d + c];
    for (index_t c = 0; c < dy; ++c) ys[r * dy + c] = pts[r * d + dx + c];
  }
  std::vector<T> lox, hix, loy, hiy;
  boxes(xs, batch, n, dx, lox, hix);
  if (dy > 0) boxes(ys, batch, n, dy, loy, hiy);
  for (bool inclusive : {false, true}) {
    std::vector<index_t> cx(batch * n), cy(batch * n), c1(batch * n);
    cchmi::cuda::count_within_pair<T>(xs.data(), lox.data(), hix.data(), dx, dy > 0 ? ys.data() : nullptr,
                                      dy > 0 ? loy.data() : nullptr, dy > 0 ? hiy.data() : nullptr, dy, batch, n,
                                      radius.data(), radius.data(), inclusive, cx.data(), cy.data(), 0, nullptr);
    cchmi::cuda::count_within_pair<T>(xs.data(), lox.data(), hix.data(), dx, nullptr, nullptr, nullptr, 0, batch, n,
                                      radius.data(), nullptr, inclusive, c1.data(), nullptr, 0, nullptr);
    // The rows of some query blocks (count_within_pair_blocks), in x and y and in x alone.
    for (bool none : {false, true}) {
      const std::vector<index_t> blocks = some_blocks(n, none, gen);
      const auto n_blocks = static_cast<index_t>(blocks.size());
      std::vector<index_t> bx(batch * n, -7), by(batch * n, -7), b1(batch * n, -7);
      cchmi::cuda::count_within_pair_blocks<T>(xs.data(), lox.data(), hix.data(), dx, dy > 0 ? ys.data() : nullptr,
                                               dy > 0 ? loy.data() : nullptr, dy > 0 ? hiy.data() : nullptr, dy,
                                               batch, n, radius.data(), radius.data(), inclusive, blocks.data(),
                                               n_blocks, bx.data(), by.data(), 0, nullptr);
      cchmi::cuda::count_within_pair_blocks<T>(xs.data(), lox.data(), hix.data(), dx, nullptr, nullptr, nullptr, 0,
                                               batch, n, radius.data(), nullptr, inclusive, blocks.data(), n_blocks,
                                               b1.data(), nullptr, 0, nullptr);
      check_listed("count_blocks x", bx, cx, index_t{-7}, batch, n, 1, blocks);
      check_listed("count_blocks x alone", b1, cx, index_t{-7}, batch, n, 1, blocks);
      if (dy > 0) check_listed("count_blocks y", by, cy, index_t{-7}, batch, n, 1, blocks);
    }
    for (int b = 0; b < batch; ++b) {
      for (index_t i = 0; i < n; ++i) {
        const T r = radius[b * n + i];
        index_t wx = 0, wy = 0;
        for (index_t j = 0; j < n; ++j) {
          if (j == i) continue;
          const T ex = dist(&xs[(b * n + i) * dx], &xs[(b * n + j) * dx], dx);
          wx += inclusive ? ex <= r : ex < r;
          if (dy > 0) {
            const T ey = dist(&ys[(b * n + i) * dy], &ys[(b * n + j) * dy], dy);
            wy += inclusive ? ey <= r : ey < r;
          }
        }
        if (cx[b * n + i] != wx) fail(inclusive ? "count x (<=)" : "count x (<)", b, i, 0);
        if (c1[b * n + i] != wx) fail(inclusive ? "count x alone (<=)" : "count x alone (<)", b, i, 0);
        if (dy > 0 && cy[b * n + i] != wy) fail(inclusive ? "count y (<=)" : "count y (<)", b, i, 0);
      }
    }
  }
}

}  // namespace

int main() {
  unsigned seed = 1;
  for (bool spatial : {true, false}) {
    for (bool grid : {false, true}) {
      // d: the float kernels' padded widths 4, 8, 16, 32 and 64, and the generic kernel (70).
      for (index_t d : {1, 3, 8, 13, 33, 70}) check<float>(2, 300, d, 5, grid, spatial, seed++);
      check<double>(1, 257, 6, 5, grid, spatial, seed++);
      check<double>(1, 130, 40, 3, grid, spatial, seed++);
      check<float>(1, 131, 2, 1, grid, spatial, seed++);
      check<float>(1, 200, 4, 12, grid, spatial, seed++);
      check<float>(1, 200, 4, 17, grid, spatial, seed++);
      check<float>(1, 65, 3, 64, grid, spatial, seed++);
    }
  }
  check<float>(1, 2, 1, 1, false, true, seed++);
  check<float>(3, 67, 2, 64, true, true, seed++);
  if (failures) {
    std::printf("%d failures\n", failures);
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
