// pybind11 module cchmi._cpu: thin wrappers around csrc/cpu on NumPy buffers.
//
// The Python layer (cchmi/_backend.py) passes C-contiguous float32 or float64 arrays it has
// validated; the wrappers check shapes and thread counts once more (a caller bypassing Python gets
// a ValueError, never an abort) and release the GIL while the kernels run. The kernels poll for
// Ctrl-C between work items: the calling thread briefly takes the GIL back and runs Python's signal
// handlers; a KeyboardInterrupt (or any exception a handler raises) stops the kernel and propagates.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/interrupt.h"
#include "common/parallel.h"
#include "cpu/count_cpu.h"
#include "cpu/knn_cpu.h"
#include "cpu/simd.h"

namespace py = pybind11;
using cchmi::index_t;

namespace {

template <typename T>
using carray = py::array_t<T, py::array::c_style>;

// 0 (OpenMP's default) or 1..thread_cap(). Taken as 64-bit so that a huge value is a ValueError
// naming the argument rather than a pybind11 TypeError about the signature.
int checked_threads(std::int64_t n_threads) {
  const int cap = cchmi::thread_cap();
  CCHMI_CHECK(n_threads >= 0 && n_threads <= cap,
              "n_threads must be 0 (OpenMP's default) or between 1 and " + std::to_string(cap) +
                  " (4 per processor), got " + std::to_string(n_threads));
  return static_cast<int>(n_threads);
}

bool python_signal_pending(void*) {
  py::gil_scoped_acquire gil;
  return PyErr_CheckSignals() != 0;
}

// Runs kernel() without the GIL, interruptible from Python; rethrows what a signal handler raised.
template <typename F>
auto run_interruptible(F&& kernel) {
  cchmi::Interrupt interrupt(&python_signal_pending, nullptr);
  decltype(kernel(interrupt)) result;
  {
    py::gil_scoped_release release;
    result = kernel(interrupt);
  }
  if (interrupt.stopped()) throw py::error_already_set();
  return result;
}

template <typename T>
py::tuple knn(const carray<T>& points, index_t k, int method, std::int64_t n_threads) {
  CCHMI_CHECK(points.ndim() == 2, "knn: points must be 2-D (n, d)");
  const index_t n = points.shape(0), d = points.shape(1);
  CCHMI_CHECK(k >= 1 && k <= n - 1, "knn: need 1 <= k <= n - 1, got k=" + std::to_string(k) +
                                        " with n=" + std::to_string(n));
  const auto m = cchmi::cpu::checked_method(method);
  const int threads = checked_threads(n_threads);
  carray<T> dist({n, k});
  carray<index_t> idx({n, k});
  const auto used = run_interruptible([&](cchmi::Interrupt& interrupt) {
    return cchmi::cpu::knn<T>(points.data(), n, d, k, dist.mutable_data(), idx.mutable_data(), m, threads,
                              interrupt);
  });
  return py::make_tuple(dist, idx, cchmi::cpu::method_name(used));
}

template <typename T>
py::tuple count_within(const carray<T>& points, const carray<T>& radius, bool inclusive, int method,
                       std::int64_t n_threads) {
  CCHMI_CHECK(points.ndim() == 2, "count_within: points must be 2-D (n, d)");
  const index_t n = points.shape(0), d = points.shape(1);
  CCHMI_CHECK(radius.ndim() == 1 && radius.shape(0) == n, "count_within: radius must have shape (n,)");
  const auto m = cchmi::cpu::checked_method(method);
  const int threads = checked_threads(n_threads);
  carray<index_t> counts(n);
  const auto used = run_interruptible([&](cchmi::Interrupt& interrupt) {
    return cchmi::cpu::count_within<T>(points.data(), n, d, radius.data(), inclusive, counts.mutable_data(), m,
                                       threads, interrupt);
  });
  return py::make_tuple(counts, cchmi::cpu::method_name(used));
}

template <typename T>
py::tuple count_within_pair(const carray<T>& x, const carray<T>& y, const carray<T>& radius_x,
                            const carray<T>& radius_y, bool inclusive, int method, std::int64_t n_threads) {
  CCHMI_CHECK(x.ndim() == 2 && y.ndim() == 2, "count_within_pair: x and y must be 2-D (n, d)");
  const index_t n = x.shape(0);
  CCHMI_CHECK(y.shape(0) == n, "count_within_pair: x and y need the same number of rows");
  CCHMI_CHECK(radius_x.ndim() == 1 && radius_x.shape(0) == n && radius_y.ndim() == 1 && radius_y.shape(0) == n,
              "count_within_pair: radii must have shape (n,)");
  const auto m = cchmi::cpu::checked_method(method);
  CCHMI_CHECK(m != cchmi::cpu::Method::Sort || (x.shape(1) == 1 && y.shape(1) == 1),
              "count_within_pair: method 'sort' needs one-dimensional x and y");
  const int threads = checked_threads(n_threads);
  carray<index_t> cx(n), cy(n);
  const auto used = run_interruptible([&](cchmi::Interrupt& interrupt) {
    return cchmi::cpu::count_within_pair<T>(x.data(), x.shape(1), y.data(), y.shape(1), n, radius_x.data(),
                                            radius_y.data(), inclusive, cx.mutable_data(), cy.mutable_data(), m,
                                            threads, interrupt);
  });
  return py::make_tuple(cx, cy, cchmi::cpu::method_name(used));
}

}  // namespace

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "cchmi CPU kernels (C++17/OpenMP): exact max-norm kNN and radius counts";

  m.def("knn", &knn<float>, py::arg("points"), py::arg("k"), py::arg("method") = 0, py::arg("n_threads") = 0);
  m.def("knn", &knn<double>, py::arg("points"), py::arg("k"), py::arg("method") = 0, py::arg("n_threads") = 0,
        "knn(points (n, d) float32|float64 C-contiguous, k, method=0 auto|1 tree|2 brute, n_threads=0 all)\n"
        "-> (dist (n, k), idx (n, k) int64, method name). Self excluded; ties broken by smaller index.");
  m.def("count_within", &count_within<float>, py::arg("points"), py::arg("radius"), py::arg("inclusive"),
        py::arg("method") = 0, py::arg("n_threads") = 0);
  m.def("count_within", &count_within<double>, py::arg("points"), py::arg("radius"), py::arg("inclusive"),
        py::arg("method") = 0, py::arg("n_threads") = 0,
        "count_within(points (n, d), radius (n,), inclusive, method=0 auto|1 tree|2 brute|3 sort, n_threads=0)\n"
        "-> (counts (n,) int64, method name): #{j != i : dist(i, j) < radius[i]} (<= when inclusive).");

  m.def("count_within_pair", &count_within_pair<float>, py::arg("x"), py::arg("y"), py::arg("radius_x"),
        py::arg("radius_y"), py::arg("inclusive"), py::arg("method") = 0, py::arg("n_threads") = 0);
  m.def("count_within_pair", &count_within_pair<double>, py::arg("x"), py::arg("y"), py::arg("radius_x"),
        py::arg("radius_y"), py::arg("inclusive"), py::arg("method") = 0, py::arg("n_threads") = 0,
        "count_within_pair(x (n, dx), y (n, dy), radius_x (n,), radius_y (n,), inclusive, method=0, n_threads=0)\n"
        "-> (counts_x, counts_y, method name): both marginal counts of a KSG estimate; brute force visits each\n"
        "pair once for both points and both spaces.");

  m.def("build_info", [] {
    py::dict info;
    info["version"] = CCHMI_VERSION;
    info["openmp"] = cchmi::built_with_openmp();
    info["max_threads"] = cchmi::max_threads();
    info["march_native"] = static_cast<bool>(CCHMI_NATIVE_FLAG);
    // The level in use; None, with the reason in simd_error, when CCHMI_SIMD names an unusable level
    // (the kernels then raise that error).
    try {
      info["simd"] = cchmi::cpu::simd_name(cchmi::cpu::simd_level());
      info["simd_error"] = py::none();
    } catch (const std::runtime_error& e) {
      info["simd"] = py::none();
      info["simd_error"] = e.what();
    }
    std::vector<std::string> levels;
    for (auto l : cchmi::cpu::simd_levels()) levels.emplace_back(cchmi::cpu::simd_name(l));
    info["simd_levels"] = levels;
#if defined(__clang__)
    info["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    info["compiler"] = std::string("gcc ") + __VERSION__;
#else
    info["compiler"] = "unknown";
#endif
    return info;
  });
}
