// Per-point-radius max-norm counts on the GPU, both marginals in one pass (see count_cuda.h).
//
// Tiled kernel (float, dx <= 32 and dy <= 32): Q consecutive queries per thread with their x and y
// coordinates in registers (zero-padded to DPX and DPY). For every candidate tile a query first
// bounds its distances to the tile's box in each space: a box beyond its radius adds nothing, a box
// within it adds the whole tile (minus the query itself), without looking at the points; the bounds
// are exact (cchmi/_spatial.py). Tiles that some query of the block must scan stream x and y rows
// through one shared-memory tile side by side, so each pair is loaded once and counted in both
// spaces, for the queries (and spaces) that need it.
// Generic kernel (double, or wider inputs): one query per thread, coordinates from global memory.
// Comparisons are strict (KSG-1) or inclusive (KSG-2 extents, Gao et al.); the point itself is
// never counted. Counts are accumulated in 32-bit registers (n < 2^31) and stored as int64.
// Both kernels answer every row (EveryRow) or the rows of a list of query blocks (ListedRows,
// queries=: common_cuda.cuh); a query's counts do not depend on which others share its block.
#include "cuda/count_cuda.h"

#include "cuda/common_cuda.cuh"

namespace cchmi::cuda {
namespace {

constexpr int count_queries_per_thread(int width) { return width <= 16 ? 4 : (width <= 32 ? 2 : 1); }

template <typename T>
__device__ __forceinline__ bool inside(T dist, T radius, bool inclusive) {
  return dist < radius || (inclusive && dist == radius);
}

// How one query stands against one tile's box in one space: whole tile inside (adds `rows`, less
// itself), whole tile outside (adds nothing), or its points must be looked at (returns true).
template <typename T, int DP>
__device__ __forceinline__ bool settle(const T (&q)[DP], const T* lo, const T* hi, int d, T radius, bool inclusive,
                                       int tile_size, int& count) {
  if (!inside(box_near<T, DP>(q, lo, hi, d), radius, inclusive)) return false;  // none inside
  if (inside(box_far<T, DP>(q, lo, hi, d), radius, inclusive)) {
    count += tile_size;  // all inside
    return false;
  }
  return true;
}

// DPY == 0: no y (counts in x only).
template <typename T, int DPX, int DPY, typename Rows>
__global__ void __launch_bounds__(kThreads) count_tiled(const T* __restrict__ x, const T* __restrict__ lox,
                                                        const T* __restrict__ hix, const T* __restrict__ y,
                                                        const T* __restrict__ loy, const T* __restrict__ hiy,
                                                        index_t n, int dx, int dy, const T* __restrict__ rx,
                                                        const T* __restrict__ ry, bool inclusive,
                                                        index_t* __restrict__ out_x, index_t* __restrict__ out_y,
                                                        Rows rows_of) {
  constexpr int W = DPX + DPY;
  constexpr int Q = count_queries_per_thread(W);
  constexpr int YP = DPY > 0 ? DPY : 1;
  __shared__ T tile[kTileRows * W];
  const index_t problem = blockIdx.y;
  const index_t n_tiles = (n + kTileRows - 1) / kTileRows;
  x += problem * n * dx;
  lox += problem * n_tiles * dx;
  hix += problem * n_tiles * dx;
  rx += problem * n;
  out_x += problem * n;
  if (DPY > 0) {
    y += problem * n * dy;
    loy += problem * n_tiles * dy;
    hiy += problem * n_tiles * dy;
    ry += problem * n;
    out_y += problem * n;
  }

  T qx[Q][DPX];
  T qy[Q][YP];
  T rqx[Q], rqy[Q];
  int cx[Q], cy[Q];
  index_t qi[Q];
#pragma unroll
  for (int r = 0; r < Q; ++r) {
    qi[r] = rows_of.row(static_cast<index_t>(threadIdx.x) * Q + r, kThreads * Q, n);
    const bool live = qi[r] < n;
#pragma unroll
    for (int c = 0; c < DPX; ++c) qx[r][c] = (live && c < dx) ? x[qi[r] * dx + c] : static_cast<T>(0);
    rqx[r] = live ? rx[qi[r]] : static_cast<T>(0);
#pragma unroll
    for (int c = 0; c < YP; ++c) qy[r][c] = (DPY > 0 && live && c < dy) ? y[qi[r] * dy + c] : static_cast<T>(0);
    rqy[r] = (DPY > 0 && live) ? ry[qi[r]] : static_cast<T>(0);
    cx[r] = 0;
    cy[r] = 0;
  }
  for (int e = threadIdx.x; e < kTileRows * W; e += kThreads) tile[e] = static_cast<T>(0);

  for (index_t t = 0; t < n_tiles; ++t) {
    const index_t start = t * kTileRows;
    const int rows = static_cast<int>(n - start < kTileRows ? n - start : kTileRows);
    bool scan_x[Q], scan_y[Q];
    bool need = false;
#pragma unroll
    for (int s = 0; s < Q; ++s) {
      const int size = rows - ((qi[s] >= start && qi[s] < start + rows) ? 1 : 0);
      scan_x[s] = qi[s] < n && settle<T, DPX>(qx[s], lox + t * dx, hix + t * dx, dx, rqx[s], inclusive, size, cx[s]);
      scan_y[s] = false;
      if (DPY > 0)
        scan_y[s] = qi[s] < n && settle<T, YP>(qy[s], loy + t * dy, hiy + t * dy, dy, rqy[s], inclusive, size, cy[s]);
      need |= scan_x[s] || scan_y[s];
    }
    // Also the barrier between the previous tile's reads and this tile's writes.
    if (!__syncthreads_or(need)) continue;
    for (int e = threadIdx.x; e < rows * dx; e += kThreads) {
      const int r = e / dx;
      tile[r * W + (e - r * dx)] = x[start * dx + e];
    }
    if (DPY > 0) {
      for (int e = threadIdx.x; e < rows * dy; e += kThreads) {
        const int r = e / dy;
        tile[r * W + DPX + (e - r * dy)] = y[start * dy + e];
      }
    }
    __syncthreads();
    if (!need) continue;
    for (int r = 0; r < rows; ++r) {
      const T* cand = tile + r * W;
      const index_t j = start + r;
#pragma unroll
      for (int s = 0; s < Q; ++s) {
        const bool other = j != qi[s];
        T dist = absdiff(cand[0], qx[s][0]);
#pragma unroll
        for (int c = 1; c < DPX; ++c) dist = maxof(dist, absdiff(cand[c], qx[s][c]));
        cx[s] += (scan_x[s] && other && inside(dist, rqx[s], inclusive)) ? 1 : 0;
        if (DPY > 0) {
          T dist_y = absdiff(cand[DPX], qy[s][0]);
#pragma unroll
          for (int c = 1; c < YP; ++c) dist_y = maxof(dist_y, absdiff(cand[DPX + c], qy[s][c]));
          cy[s] += (scan_y[s] && other && inside(dist_y, rqy[s], inclusive)) ? 1 : 0;
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < Q; ++r) {
    if (qi[r] < n) {
      out_x[qi[r]] = cx[r];
      if (DPY > 0) out_y[qi[r]] = cy[r];
    }
  }
}

template <typename T, typename Rows>
__global__ void __launch_bounds__(kThreads) count_generic(const T* __restrict__ x, const T* __restrict__ y,
                                                          index_t n, index_t dx, index_t dy,
                                                          const T* __restrict__ rx, const T* __restrict__ ry,
                                                          bool inclusive, index_t* __restrict__ out_x,
                                                          index_t* __restrict__ out_y, Rows rows_of) {
  const index_t problem = blockIdx.y;
  const index_t i = rows_of.row(threadIdx.x, kThreads, n);
  if (i >= n) return;
  x += problem * n * dx;
  const T* qx = x + i * dx;
  const T rqx = rx[problem * n + i];
  int cx = 0, cy = 0;
  const T* qy = nullptr;
  T rqy = static_cast<T>(0);
  if (dy > 0) {
    y += problem * n * dy;
    qy = y + i * dy;
    rqy = ry[problem * n + i];
  }
  for (index_t j = 0; j < n; ++j) {
    if (j == i) continue;
    const T* px = x + j * dx;
    T dist = static_cast<T>(0);
    for (index_t c = 0; c < dx; ++c) dist = maxof(dist, absdiff(px[c], qx[c]));
    cx += inside(dist, rqx, inclusive) ? 1 : 0;
    if (dy > 0) {
      const T* py = y + j * dy;
      T dist_y = static_cast<T>(0);
      for (index_t c = 0; c < dy; ++c) dist_y = maxof(dist_y, absdiff(py[c], qy[c]));
      cy += inside(dist_y, rqy, inclusive) ? 1 : 0;
    }
  }
  out_x[problem * n + i] = cx;
  if (dy > 0) out_y[problem * n + i] = cy;
}

// The arguments of one launch over a chunk of problems.
template <typename T>
struct Launch {
  const T *x, *lox, *hix, *y, *loy, *hiy, *rx, *ry;
  index_t nb, n, dx, dy;
  bool inclusive;
  index_t *ox, *oy;
  cudaStream_t s;
};

// Widths specialised for float: {4, 8, 16, 32} for x, {0 (none), 4, 8, 16, 32} for y.
template <int DPX, typename Rows>
bool launch_tiled_y(int dpy, const Launch<float>& a, Rows rows) {
  auto go = [&](auto dpyc) {
    constexpr int DPY = decltype(dpyc)::value;
    constexpr int Q = count_queries_per_thread(DPX + DPY);
    dim3 grid(grid_for(rows, a.n, kThreads * Q), static_cast<unsigned>(a.nb));
    auto kernel = count_tiled<float, DPX, DPY, Rows>;
    CCHMI_LAUNCH(kernel, grid, kThreads, a.s, a.x, a.lox, a.hix, a.y, a.loy, a.hiy, a.n, static_cast<int>(a.dx),
                 static_cast<int>(a.dy), a.rx, a.ry, a.inclusive, a.ox, a.oy, rows);
    return true;
  };
  switch (dpy) {
    case 0: return go(std::integral_constant<int, 0>{});
    case 4: return go(std::integral_constant<int, 4>{});
    case 8: return go(std::integral_constant<int, 8>{});
    case 16: return go(std::integral_constant<int, 16>{});
    case 32: return go(std::integral_constant<int, 32>{});
    default: return false;
  }
}

template <typename Rows>
bool launch_tiled(const Launch<float>& a, Rows rows) {
  if (a.dy > 32) return false;
  const int dpy = a.dy == 0 ? 0 : padded_dim(a.dy);
  switch (padded_dim(a.dx)) {
    case 4: return launch_tiled_y<4>(dpy, a, rows);
    case 8: return launch_tiled_y<8>(dpy, a, rows);
    case 16: return launch_tiled_y<16>(dpy, a, rows);
    case 32: return launch_tiled_y<32>(dpy, a, rows);
    default: return false;
  }
}

template <typename Rows>
bool launch_tiled(const Launch<double>&, Rows) {
  return false;  // double uses the generic kernel (fewer instantiations; the tiled path is for float32)
}

void check_count_sizes(index_t batch, index_t n, index_t dx, bool has_y, index_t dy) {
  CCHMI_CHECK(batch >= 1 && dx >= 1 && dy >= 0, "count_within_pair: need batch >= 1, dx >= 1, dy >= 0");
  CCHMI_CHECK((dy == 0) == !has_y, "count_within_pair: pass y with dy >= 1, or no y with dy == 0");
  CCHMI_CHECK(n >= 1 && n <= INT_MAX, "count_within_pair: need 1 <= n < 2^31 points per problem");
}

template <typename T, typename Rows>
void launch_counts(const T* x, const T* box_lo_x, const T* box_hi_x, index_t dx, const T* y, const T* box_lo_y,
                   const T* box_hi_y, index_t dy, index_t batch, index_t n, const T* radius_x, const T* radius_y,
                   bool inclusive, index_t* out_x, index_t* out_y, Rows rows, int device, void* stream) {
  set_device(device);
  const index_t n_tiles = (n + kTileRows - 1) / kTileRows;
  for (index_t b0 = 0; b0 < batch; b0 += kMaxGridY) {
    Launch<T> a{};
    a.nb = batch - b0 < kMaxGridY ? batch - b0 : kMaxGridY;
    a.n = n;
    a.dx = dx;
    a.dy = dy;
    a.inclusive = inclusive;
    a.s = static_cast<cudaStream_t>(stream);
    a.x = x + b0 * n * dx;
    a.lox = box_lo_x + b0 * n_tiles * dx;
    a.hix = box_hi_x + b0 * n_tiles * dx;
    a.rx = radius_x + b0 * n;
    a.ox = out_x + b0 * n;
    if (dy > 0) {
      a.y = y + b0 * n * dy;
      a.loy = box_lo_y + b0 * n_tiles * dy;
      a.hiy = box_hi_y + b0 * n_tiles * dy;
      a.ry = radius_y + b0 * n;
      a.oy = out_y + b0 * n;
    }
    if (!launch_tiled(a, rows)) {
      dim3 grid(grid_for(rows, n, kThreads), static_cast<unsigned>(a.nb));
      auto kernel = count_generic<T, Rows>;
      CCHMI_LAUNCH(kernel, grid, kThreads, a.s, a.x, a.y, n, dx, dy, a.rx, a.ry, inclusive, a.ox, a.oy, rows);
    }
    throw_on_error(cudaGetLastError(), "count kernel launch");
  }
}

}  // namespace

template <typename T>
void count_within_pair(const T* x, const T* box_lo_x, const T* box_hi_x, index_t dx, const T* y, const T* box_lo_y,
                       const T* box_hi_y, index_t dy, index_t batch, index_t n, const T* radius_x, const T* radius_y,
                       bool inclusive, index_t* out_x, index_t* out_y, int device, void* stream) {
  check_count_sizes(batch, n, dx, y != nullptr, dy);
  launch_counts(x, box_lo_x, box_hi_x, dx, y, box_lo_y, box_hi_y, dy, batch, n, radius_x, radius_y, inclusive, out_x,
                out_y, EveryRow{}, device, stream);
}

template <typename T>
void count_within_pair_blocks(const T* x, const T* box_lo_x, const T* box_hi_x, index_t dx, const T* y,
                              const T* box_lo_y, const T* box_hi_y, index_t dy, index_t batch, index_t n,
                              const T* radius_x, const T* radius_y, bool inclusive, const index_t* blocks,
                              index_t n_blocks, index_t* out_x, index_t* out_y, int device, void* stream) {
  check_count_sizes(batch, n, dx, y != nullptr, dy);
  CCHMI_CHECK(n_blocks >= 0 && n_blocks <= (n + kTileRows - 1) / kTileRows,
              "count_within_pair_blocks: need 0 <= n_blocks <= ceil(n / tile_rows) (distinct query blocks)");
  if (n_blocks == 0) return;  // nothing to answer (a grid of no blocks is no valid launch)
  launch_counts(x, box_lo_x, box_hi_x, dx, y, box_lo_y, box_hi_y, dy, batch, n, radius_x, radius_y, inclusive, out_x,
                out_y, ListedRows{blocks, n_blocks}, device, stream);
}

template void count_within_pair<float>(const float*, const float*, const float*, index_t, const float*, const float*,
                                       const float*, index_t, index_t, index_t, const float*, const float*, bool,
                                       index_t*, index_t*, int, void*);
template void count_within_pair<double>(const double*, const double*, const double*, index_t, const double*,
                                        const double*, const double*, index_t, index_t, index_t, const double*,
                                        const double*, bool, index_t*, index_t*, int, void*);
template void count_within_pair_blocks<float>(const float*, const float*, const float*, index_t, const float*,
                                              const float*, const float*, index_t, index_t, index_t, const float*,
                                              const float*, bool, const index_t*, index_t, index_t*, index_t*, int,
                                              void*);
template void count_within_pair_blocks<double>(const double*, const double*, const double*, index_t, const double*,
                                               const double*, const double*, index_t, index_t, index_t,
                                               const double*, const double*, bool, const index_t*, index_t, index_t*,
                                               index_t*, int, void*);

}  // namespace cchmi::cuda
