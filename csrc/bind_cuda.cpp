// pybind11 module cchmi._cuda. Importing it touches no GPU (cudart is linked statically and loads
// the driver lazily), so it imports on machines without a GPU; calls report "no device" instead.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "cuda/count_cuda.h"
#include "cuda/knn_cuda.h"
#include "cuda/smoke_cuda.h"

namespace py = pybind11;
using cchmi::index_t;

namespace {

// Device pointers arrive as integers (tensor.data_ptr()), the stream as its handle
// (torch.cuda.current_stream().cuda_stream). `double_precision` selects the float64 kernels.
template <typename T>
const T* in(std::uintptr_t p) {
  return reinterpret_cast<const T*>(p);
}
template <typename T>
T* out(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

// f(T{}) with T = double when double_precision, else float: the element type of one call.
template <typename F>
void by_precision(bool double_precision, F&& f) {
  if (double_precision)
    f(double{});
  else
    f(float{});
}

void knn(std::uintptr_t points, std::uintptr_t order, std::uintptr_t box_lo, std::uintptr_t box_hi, index_t batch,
         index_t n, index_t d, index_t k, std::uintptr_t out_dist, std::uintptr_t out_idx, bool double_precision,
         int device, std::uintptr_t stream) {
  py::gil_scoped_release release;
  by_precision(double_precision, [&](auto zero) {
    using T = decltype(zero);
    cchmi::cuda::knn<T>(in<T>(points), in<index_t>(order), in<T>(box_lo), in<T>(box_hi), batch, n, d, k,
                        out<T>(out_dist), out<index_t>(out_idx), device, reinterpret_cast<void*>(stream));
  });
}

void knn_blocks(std::uintptr_t points, std::uintptr_t order, std::uintptr_t box_lo, std::uintptr_t box_hi, index_t batch,
                index_t n, index_t d, index_t k, std::uintptr_t blocks, index_t n_blocks, std::uintptr_t out_dist,
                std::uintptr_t out_idx, bool double_precision, int device, std::uintptr_t stream) {
  py::gil_scoped_release release;
  by_precision(double_precision, [&](auto zero) {
    using T = decltype(zero);
    cchmi::cuda::knn_blocks<T>(in<T>(points), in<index_t>(order), in<T>(box_lo), in<T>(box_hi), batch, n, d, k,
                               in<index_t>(blocks), n_blocks, out<T>(out_dist), out<index_t>(out_idx), device,
                               reinterpret_cast<void*>(stream));
  });
}

void count_within_pair(std::uintptr_t x, std::uintptr_t lox, std::uintptr_t hix, index_t dx, std::uintptr_t y,
                       std::uintptr_t loy, std::uintptr_t hiy, index_t dy, index_t batch, index_t n,
                       std::uintptr_t radius_x, std::uintptr_t radius_y, bool inclusive, std::uintptr_t out_x,
                       std::uintptr_t out_y, bool double_precision, int device, std::uintptr_t stream) {
  py::gil_scoped_release release;
  by_precision(double_precision, [&](auto zero) {
    using T = decltype(zero);
    cchmi::cuda::count_within_pair<T>(in<T>(x), in<T>(lox), in<T>(hix), dx, in<T>(y), in<T>(loy), in<T>(hiy), dy,
                                      batch, n, in<T>(radius_x), in<T>(radius_y), inclusive, out<index_t>(out_x),
                                      out<index_t>(out_y), device, reinterpret_cast<void*>(stream));
  });
}

void count_within_pair_blocks(std::uintptr_t x, std::uintptr_t lox, std::uintptr_t hix, index_t dx, std::uintptr_t y,
                              std::uintptr_t loy, std::uintptr_t hiy, index_t dy, index_t batch, index_t n,
                              std::uintptr_t radius_x, std::uintptr_t radius_y, bool inclusive, std::uintptr_t blocks,
                              index_t n_blocks, std::uintptr_t out_x, std::uintptr_t out_y, bool double_precision,
                              int device, std::uintptr_t stream) {
  py::gil_scoped_release release;
  by_precision(double_precision, [&](auto zero) {
    using T = decltype(zero);
    cchmi::cuda::count_within_pair_blocks<T>(in<T>(x), in<T>(lox), in<T>(hix), dx, in<T>(y), in<T>(loy), in<T>(hiy),
                                             dy, batch, n, in<T>(radius_x), in<T>(radius_y), inclusive,
                                             in<index_t>(blocks), n_blocks, out<index_t>(out_x), out<index_t>(out_y),
                                             device, reinterpret_cast<void*>(stream));
  });
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "cchmi CUDA kernels (torch-free: raw pointers, sizes and the caller's stream)";
  m.def("device_count", &cchmi::cuda::device_count);
  m.def("device_name", &cchmi::cuda::device_name, py::arg("device") = 0);
  m.def("runtime_version", &cchmi::cuda::runtime_version);
  m.def("driver_version", &cchmi::cuda::driver_version);
  m.def(
      "iota_sum",
      [](std::int64_t n, std::uintptr_t stream) {
        py::gil_scoped_release release;
        return cchmi::cuda::iota_sum(n, reinterpret_cast<void*>(stream));
      },
      py::arg("n"), py::arg("stream") = 0,
      "Self-test: writes 0..n-1 on the current device and returns their sum (n(n-1)/2).");
  m.def("knn", &knn, py::arg("points"), py::arg("order"), py::arg("box_lo"), py::arg("box_hi"), py::arg("batch"),
        py::arg("n"), py::arg("d"), py::arg("k"), py::arg("out_dist"), py::arg("out_idx"), py::arg("double_precision"),
        py::arg("device"), py::arg("stream"),
        "knn(points, order, box_lo, box_hi, batch, n, d, k, out_dist, out_idx, double_precision, device, stream):\n"
        "device pointers of spatially sorted (batch, n, d) points, their original indices (batch, n) int64, the\n"
        "boxes of every run of tile_rows points (batch, tiles, d) and the (batch, n, k) outputs (idx int64,\n"
        "original indices, rows in sorted order); asynchronous on `stream`. k <= max_k.");
  m.def("knn_blocks", &knn_blocks, py::arg("points"), py::arg("order"), py::arg("box_lo"), py::arg("box_hi"),
        py::arg("batch"), py::arg("n"), py::arg("d"), py::arg("k"), py::arg("blocks"), py::arg("n_blocks"),
        py::arg("out_dist"), py::arg("out_idx"), py::arg("double_precision"), py::arg("device"), py::arg("stream"),
        "knn_blocks(points, order, box_lo, box_hi, batch, n, d, k, blocks, n_blocks, out_dist, out_idx,\n"
        "double_precision, device, stream): knn for the rows of the listed query blocks only (queries=): blocks,\n"
        "a device pointer to n_blocks distinct int64 block numbers t in [0, ceil(n / tile_rows)), block t being\n"
        "sorted rows [t * tile_rows, (t + 1) * tile_rows); only those rows of the outputs are written, equal to\n"
        "knn's. n_blocks = 0 launches nothing.");
  m.def("count_within_pair", &count_within_pair, py::arg("x"), py::arg("box_lo_x"), py::arg("box_hi_x"), py::arg("dx"),
        py::arg("y"), py::arg("box_lo_y"), py::arg("box_hi_y"), py::arg("dy"), py::arg("batch"), py::arg("n"),
        py::arg("radius_x"), py::arg("radius_y"), py::arg("inclusive"), py::arg("out_x"), py::arg("out_y"),
        py::arg("double_precision"), py::arg("device"), py::arg("stream"),
        "count_within_pair(x, box_lo_x, box_hi_x, dx, y, box_lo_y, box_hi_y, dy, batch, n, radius_x, radius_y,\n"
        "inclusive, out_x, out_y, double_precision, device, stream): per-point-radius counts in x and (dy > 0) y\n"
        "in one pass, with tile boxes for pruning; y = 0 with dy = 0 counts x only.");
  m.def("count_within_pair_blocks", &count_within_pair_blocks, py::arg("x"), py::arg("box_lo_x"), py::arg("box_hi_x"),
        py::arg("dx"), py::arg("y"), py::arg("box_lo_y"), py::arg("box_hi_y"), py::arg("dy"), py::arg("batch"),
        py::arg("n"), py::arg("radius_x"), py::arg("radius_y"), py::arg("inclusive"), py::arg("blocks"),
        py::arg("n_blocks"), py::arg("out_x"), py::arg("out_y"), py::arg("double_precision"), py::arg("device"),
        py::arg("stream"),
        "count_within_pair_blocks(x, box_lo_x, box_hi_x, dx, y, box_lo_y, box_hi_y, dy, batch, n, radius_x,\n"
        "radius_y, inclusive, blocks, n_blocks, out_x, out_y, double_precision, device, stream): count_within_pair\n"
        "for the rows of the listed query blocks only (blocks as in knn_blocks); only those rows' counts are\n"
        "written, equal to count_within_pair's. n_blocks = 0 launches nothing.");
  m.attr("tile_rows") = cchmi::cuda::kTileRows;
  m.attr("max_k") = cchmi::cuda::kMaxK;
  m.attr("arches") = CCHMI_CUDA_ARCHES;
  m.attr("compiler_version") = CCHMI_CUDA_COMPILER_VERSION;
}
