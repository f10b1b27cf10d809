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

void knn(std::uintptr_t points, index_t batch, index_t n, index_t d, index_t k, std::uintptr_t out_dist,
         std::uintptr_t out_idx, bool double_precision, int device, std::uintptr_t stream) {
  py::gil_scoped_release release;
  auto s = reinterpret_cast<void*>(stream);
  if (double_precision)
    cchmi::cuda::knn<double>(in<double>(points), batch, n, d, k, out<double>(out_dist), out<index_t>(out_idx), device, s);
  else
    cchmi::cuda::knn<float>(in<float>(points), batch, n, d, k, out<float>(out_dist), out<index_t>(out_idx), device, s);
}

void count_within_pair(std::uintptr_t x, index_t dx, std::uintptr_t y, index_t dy, index_t batch, index_t n,
                       std::uintptr_t radius_x, std::uintptr_t radius_y, bool inclusive, std::uintptr_t out_x,
                       std::uintptr_t out_y, bool double_precision, int device, std::uintptr_t stream) {
  py::gil_scoped_release release;
  auto s = reinterpret_cast<void*>(stream);
  if (double_precision)
    cchmi::cuda::count_within_pair<double>(in<double>(x), dx, in<double>(y), dy, batch, n, in<double>(radius_x),
                                           in<double>(radius_y), inclusive, out<index_t>(out_x), out<index_t>(out_y),
                                           device, s);
  else
    cchmi::cuda::count_within_pair<float>(in<float>(x), dx, in<float>(y), dy, batch, n, in<float>(radius_x),
                                          in<float>(radius_y), inclusive, out<index_t>(out_x), out<index_t>(out_y),
                                          device, s);
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
  m.def("knn", &knn, py::arg("points"), py::arg("batch"), py::arg("n"), py::arg("d"), py::arg("k"),
        py::arg("out_dist"), py::arg("out_idx"), py::arg("double_precision"), py::arg("device"), py::arg("stream"),
        "knn(points, batch, n, d, k, out_dist, out_idx, double_precision, device, stream): device pointers of a\n"
        "(batch, n, d) array and of (batch, n, k) outputs (idx int64); asynchronous on `stream`. k <= max_k.");
  m.def("count_within_pair", &count_within_pair, py::arg("x"), py::arg("dx"), py::arg("y"), py::arg("dy"),
        py::arg("batch"), py::arg("n"), py::arg("radius_x"), py::arg("radius_y"), py::arg("inclusive"),
        py::arg("out_x"), py::arg("out_y"), py::arg("double_precision"), py::arg("device"), py::arg("stream"),
        "count_within_pair(x, dx, y, dy, batch, n, radius_x, radius_y, inclusive, out_x, out_y, double_precision,\n"
        "device, stream): per-point-radius counts in x and (dy > 0) y in one pass; y = 0 with dy = 0 counts x only.");
  m.attr("max_k") = cchmi::cuda::kMaxK;
  m.attr("arches") = CCHMI_CUDA_ARCHES;
  m.attr("compiler_version") = CCHMI_CUDA_COMPILER_VERSION;
}
