// pybind11 module cchmi._cuda. Importing it touches no GPU (cudart is linked statically and loads
// the driver lazily), so it imports on machines without a GPU; calls report "no device" instead.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "cuda/smoke_cuda.h"

namespace py = pybind11;

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
  m.attr("arches") = CCHMI_CUDA_ARCHES;
  m.attr("compiler_version") = CCHMI_CUDA_COMPILER_VERSION;
}
