// Per-point-radius max-norm counts on the GPU, both marginals in one pass (see count_cuda.h).
//
// Tiled kernel (float, dx <= 32 and dy <= 32): Q queries per thread with their x and y coordinates
// in registers (zero-padded to DPX and DPY); candidate rows of x and y stream through one
// shared-memory tile side by side, so each pair is loaded once and counted in both spaces.
// Generic kernel (double, or wider inputs): one query per thread, coordinates from global memory.
// Comparisons are strict (KSG-1) or inclusive (KSG-2 extents, Gao et al.); the point itself is
// never counted. Counts are accumulated in 32-bit registers (n < 2^31) and stored as int64.
#include "cuda/count_cuda.h"

#include <cuda_runtime.h>

#include "cuda/common_cuda.cuh"

namespace cchmi::cuda {
namespace {

constexpr int count_queries_per_thread(int width) { return width <= 16 ? 4 : (width <= 32 ? 2 : 1); }

template <typename T>
__device__ __forceinline__ bool inside(T dist, T radius, bool inclusive) {
  return dist < radius || (inclusive && dist == radius);
}

// DPY == 0: no y (counts in x only).
template <typename T, int DPX, int DPY>
__global__ void __launch_bounds__(kThreads) count_tiled(const T* __restrict__ x, const T* __restrict__ y,
                                                        index_t n, int dx, int dy, const T* __restrict__ rx,
                                                        const T* __restrict__ ry, bool inclusive,
                                                        index_t* __restrict__ out_x, index_t* __restrict__ out_y) {
  constexpr int W = DPX + DPY;
  constexpr int Q = count_queries_per_thread(W);
  __shared__ T tile[kTile * W];
  const index_t problem = blockIdx.y;
  x += problem * n * dx;
  rx += problem * n;
  out_x += problem * n;
  if (DPY > 0) {
    y += problem * n * dy;
    ry += problem * n;
    out_y += problem * n;
  }

  T qx[Q][DPX];
  T qy[Q][DPY > 0 ? DPY : 1];
  T rqx[Q], rqy[Q];
  int cx[Q], cy[Q];
  index_t qi[Q];
#pragma unroll
  for (int r = 0; r < Q; ++r) {
    qi[r] = static_cast<index_t>(blockIdx.x) * (kThreads * Q) + r * kThreads + threadIdx.x;
    const bool live = qi[r] < n;
#pragma unroll
    for (int c = 0; c < DPX; ++c) qx[r][c] = (live && c < dx) ? x[qi[r] * dx + c] : static_cast<T>(0);
    rqx[r] = live ? rx[qi[r]] : static_cast<T>(0);
    if (DPY > 0) {
#pragma unroll
      for (int c = 0; c < DPY; ++c) qy[r][c] = (live && c < dy) ? y[qi[r] * dy + c] : static_cast<T>(0);
      rqy[r] = live ? ry[qi[r]] : static_cast<T>(0);
    }
    cx[r] = 0;
    cy[r] = 0;
  }
  for (int e = threadIdx.x; e < kTile * W; e += kThreads) tile[e] = static_cast<T>(0);

  for (index_t start = 0; start < n; start += kTile) {
    const int rows = static_cast<int>(n - start < kTile ? n - start : kTile);
    __syncthreads();
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
    for (int r = 0; r < rows; ++r) {
      const T* cand = tile + r * W;
      const index_t j = start + r;
#pragma unroll
      for (int s = 0; s < Q; ++s) {
        const bool other = j != qi[s];
        T dist = absdiff(cand[0], qx[s][0]);
#pragma unroll
        for (int c = 1; c < DPX; ++c) dist = maxof(dist, absdiff(cand[c], qx[s][c]));
        cx[s] += (other && inside(dist, rqx[s], inclusive)) ? 1 : 0;
        if (DPY > 0) {
          T dist_y = absdiff(cand[DPX], qy[s][0]);
#pragma unroll
          for (int c = 1; c < DPY; ++c) dist_y = maxof(dist_y, absdiff(cand[DPX + c], qy[s][c]));
          cy[s] += (other && inside(dist_y, rqy[s], inclusive)) ? 1 : 0;
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

template <typename T>
__global__ void __launch_bounds__(kThreads) count_generic(const T* __restrict__ x, const T* __restrict__ y,
                                                          index_t n, index_t dx, index_t dy,
                                                          const T* __restrict__ rx, const T* __restrict__ ry,
                                                          bool inclusive, index_t* __restrict__ out_x,
                                                          index_t* __restrict__ out_y) {
  const index_t problem = blockIdx.y;
  const index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x;
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

// Widths specialised for float: {4, 8, 16, 32} for x, {0 (none), 4, 8, 16, 32} for y.
template <int DPX>
bool launch_tiled_y(int dpy, const float* x, const float* y, index_t nb, index_t n, int dx, int dy, const float* rx,
                    const float* ry, bool inclusive, index_t* ox, index_t* oy, cudaStream_t s) {
  auto go = [&](auto dpyc) {
    constexpr int DPY = decltype(dpyc)::value;
    constexpr int Q = count_queries_per_thread(DPX + DPY);
    dim3 grid(blocks_for(n, kThreads * Q), static_cast<unsigned>(nb));
    count_tiled<float, DPX, DPY><<<grid, kThreads, 0, s>>>(x, y, n, dx, dy, rx, ry, inclusive, ox, oy);
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

bool launch_tiled(const float* x, const float* y, index_t nb, index_t n, index_t dx, index_t dy, const float* rx,
                  const float* ry, bool inclusive, index_t* ox, index_t* oy, cudaStream_t s) {
  const int dpy = dy == 0 ? 0 : padded_dim(dy);
  if (dy > 32) return false;
  const int ix = static_cast<int>(dx), iy = static_cast<int>(dy);
  switch (padded_dim(dx)) {
    case 4: return launch_tiled_y<4>(dpy, x, y, nb, n, ix, iy, rx, ry, inclusive, ox, oy, s);
    case 8: return launch_tiled_y<8>(dpy, x, y, nb, n, ix, iy, rx, ry, inclusive, ox, oy, s);
    case 16: return launch_tiled_y<16>(dpy, x, y, nb, n, ix, iy, rx, ry, inclusive, ox, oy, s);
    case 32: return launch_tiled_y<32>(dpy, x, y, nb, n, ix, iy, rx, ry, inclusive, ox, oy, s);
    default: return false;
  }
}

bool launch_tiled(const double*, const double*, index_t, index_t, index_t, index_t, const double*, const double*,
                  bool, index_t*, index_t*, cudaStream_t) {
  return false;  // double uses the generic kernel (fewer instantiations; the tiled path is for float32)
}

}  // namespace

template <typename T>
void count_within_pair(const T* x, index_t dx, const T* y, index_t dy, index_t batch, index_t n, const T* radius_x,
                       const T* radius_y, bool inclusive, index_t* out_x, index_t* out_y, int device, void* stream) {
  CCHMI_CHECK(batch >= 1 && dx >= 1 && dy >= 0, "count_within_pair: need batch >= 1, dx >= 1, dy >= 0");
  CCHMI_CHECK((dy == 0) == (y == nullptr), "count_within_pair: pass y with dy >= 1, or no y with dy == 0");
  CCHMI_CHECK(n >= 1 && n <= INT_MAX, "count_within_pair: need 1 <= n < 2^31 points per problem");
  set_device(device);
  auto s = static_cast<cudaStream_t>(stream);
  for (index_t b0 = 0; b0 < batch; b0 += kMaxGridY) {
    const index_t nb = batch - b0 < kMaxGridY ? batch - b0 : kMaxGridY;
    const T* xb = x + b0 * n * dx;
    const T* yb = dy > 0 ? y + b0 * n * dy : nullptr;
    const T* rxb = radius_x + b0 * n;
    const T* ryb = dy > 0 ? radius_y + b0 * n : nullptr;
    index_t* oxb = out_x + b0 * n;
    index_t* oyb = dy > 0 ? out_y + b0 * n : nullptr;
    if (!launch_tiled(xb, yb, nb, n, dx, dy, rxb, ryb, inclusive, oxb, oyb, s)) {
      dim3 grid(blocks_for(n, kThreads), static_cast<unsigned>(nb));
      count_generic<T><<<grid, kThreads, 0, s>>>(xb, yb, n, dx, dy, rxb, ryb, inclusive, oxb, oyb);
    }
    throw_on_error(cudaGetLastError(), "count kernel launch");
  }
}

template void count_within_pair<float>(const float*, index_t, const float*, index_t, index_t, index_t, const float*,
                                       const float*, bool, index_t*, index_t*, int, void*);
template void count_within_pair<double>(const double*, index_t, const double*, index_t, index_t, index_t,
                                        const double*, const double*, bool, index_t*, index_t*, int, void*);

}  // namespace cchmi::cuda
