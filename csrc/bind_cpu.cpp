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

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__linux__)
#include <dirent.h>
#include <dlfcn.h>
#include <unistd.h>
#endif

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

// Whether a call asking for OpenMP's default team (n_threads = 0) adapts it to the machine's load.
// cchmi._loader turns it on when the OpenMP runtime was loaded before this module (by torch, say) and
// the user chose no wait policy: the runtime's threads then spin at every barrier instead of sleeping
// (cchmi's passive setting came too late), and spinning threads on cores that other processes also
// want slow a kernel down several times over. libgomp spins only briefly (100 rounds) while it
// manages more threads than processors, so on a busy machine such a call runs one thread more than
// processors: with a CPU hog per core, cch took 0.3-1.2x as long as in a process without torch (one
// thread: 2.4x; one thread per core: 4-16x; bench/bench_torch_omp.py). On an idle machine spinning
// costs nothing: the default stands.
std::atomic<bool> threads_follow_load{false};

#if defined(__linux__)
// Runnable threads on this machine that belong to other processes, scaled to the CPUs this process
// may run on; -1 where /proc cannot tell. /proc/loadavg's fourth field counts the runnable threads
// of the whole machine (this one included); /proc/self/task/*/stat says which of them are ours.
long other_runnable_threads(int procs) {
  std::ifstream loadavg("/proc/loadavg");
  double avg1, avg5, avg15;
  long running = -1;
  char slash;
  if (!(loadavg >> avg1 >> avg5 >> avg15 >> running >> slash) || slash != '/') return -1;
  long own = 0;
  if (DIR* tasks = opendir("/proc/self/task")) {
    while (const dirent* entry = readdir(tasks)) {
      if (entry->d_name[0] == '.') continue;
      std::ifstream stat(std::string("/proc/self/task/") + entry->d_name + "/stat");
      std::string line;
      std::getline(stat, line);
      const auto end_of_name = line.rfind(')');  // the state follows the command name, which may hold spaces
      if (end_of_name != std::string::npos && end_of_name + 2 < line.size() && line[end_of_name + 2] == 'R') ++own;
    }
    closedir(tasks);
  }
  const long others = std::max(running - own, 0L);
  const long online = sysconf(_SC_NPROCESSORS_ONLN);  // more than procs in a container pinned to some CPUs
  return online > procs ? (others * procs + online / 2) / online : others;
}
#endif

// The team of a call that asked for OpenMP's default: that default, or, when threads_follow_load is
// on and other processes' threads are runnable, one thread more than processors. OMP_NUM_THREADS in
// the environment is the user's choice and stands; torch's own omp_set_num_threads (one thread per
// physical core) does not, as a team no larger than the processor count spins.
int default_threads() {
  const int wanted = cchmi::max_threads();
#if defined(__linux__) && defined(_OPENMP)
  if (threads_follow_load.load(std::memory_order_relaxed) && std::getenv("OMP_NUM_THREADS") == nullptr) {
    const int procs = omp_get_num_procs();
    if (other_runnable_threads(procs) > 0) return procs + 1;
  }
#endif
  return wanted;
}

// The path of the OpenMP runtime library the kernels call, or "" when unknown (or no OpenMP).
std::string openmp_runtime() {
#if defined(__linux__) && defined(_OPENMP)
  Dl_info where;
  if (dladdr(reinterpret_cast<void*>(&omp_get_num_procs), &where) != 0 && where.dli_fname != nullptr)
    return where.dli_fname;
#endif
  return "";
}

// 0 (OpenMP's default, see default_threads) or 1..thread_cap(). Taken as 64-bit so that a huge value is
// a ValueError naming the argument rather than a pybind11 TypeError about the signature.
int checked_threads(std::int64_t n_threads) {
  const int cap = cchmi::thread_cap();
  CCHMI_CHECK(n_threads >= 0 && n_threads <= cap,
              "n_threads must be 0 (OpenMP's default) or between 1 and " + std::to_string(cap) +
                  " (4 per processor), got " + std::to_string(n_threads));
  return n_threads == 0 ? default_threads() : static_cast<int>(n_threads);
}

// The query rows of a call: every point (None) or the given rows (1-D int64, each in [0, n)).
using OptionalRows = std::optional<carray<index_t>>;

cchmi::cpu::QueryRows query_rows(const OptionalRows& queries, index_t n, const char* what) {
  if (!queries) return {nullptr, n};
  CCHMI_CHECK(queries->ndim() == 1, std::string(what) + ": queries must be 1-D");
  const index_t m = queries->shape(0);
  const index_t* ids = queries->data();
  for (index_t t = 0; t < m; ++t)
    CCHMI_CHECK(ids[t] >= 0 && ids[t] < n, std::string(what) + ": queries must be rows of the points, in [0, " +
                                               std::to_string(n) + "), got " + std::to_string(ids[t]));
  return {ids, m};
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
py::tuple knn(const carray<T>& points, index_t k, int method, std::int64_t n_threads, const OptionalRows& queries) {
  CCHMI_CHECK(points.ndim() == 2, "knn: points must be 2-D (n, d)");
  const index_t n = points.shape(0), d = points.shape(1);
  CCHMI_CHECK(k >= 1 && k <= n - 1, "knn: need 1 <= k <= n - 1, got k=" + std::to_string(k) +
                                        " with n=" + std::to_string(n));
  const auto m = cchmi::cpu::checked_method(method);
  const int threads = checked_threads(n_threads);
  const auto rows = query_rows(queries, n, "knn");
  carray<T> dist({rows.m, k});
  carray<index_t> idx({rows.m, k});
  const auto used = run_interruptible([&](cchmi::Interrupt& interrupt) {
    return cchmi::cpu::knn<T>(points.data(), n, d, k, rows, dist.mutable_data(), idx.mutable_data(), m, threads,
                              interrupt);
  });
  return py::make_tuple(dist, idx, cchmi::cpu::method_name(used));
}

template <typename T>
py::tuple count_within(const carray<T>& points, const carray<T>& radius, bool inclusive, int method,
                       std::int64_t n_threads, const OptionalRows& queries) {
  CCHMI_CHECK(points.ndim() == 2, "count_within: points must be 2-D (n, d)");
  const index_t n = points.shape(0), d = points.shape(1);
  const auto rows = query_rows(queries, n, "count_within");
  CCHMI_CHECK(radius.ndim() == 1 && radius.shape(0) == rows.m,
              "count_within: radius must have one entry per query (shape (n,), or (len(queries),))");
  const auto m = cchmi::cpu::checked_method(method);
  const int threads = checked_threads(n_threads);
  carray<index_t> counts(rows.m);
  const auto used = run_interruptible([&](cchmi::Interrupt& interrupt) {
    return cchmi::cpu::count_within<T>(points.data(), n, d, rows, radius.data(), inclusive, counts.mutable_data(), m,
                                       threads, interrupt);
  });
  return py::make_tuple(counts, cchmi::cpu::method_name(used));
}

template <typename T>
py::tuple count_within_pair(const carray<T>& x, const carray<T>& y, const carray<T>& radius_x,
                            const carray<T>& radius_y, bool inclusive, int method, std::int64_t n_threads,
                            const OptionalRows& queries) {
  CCHMI_CHECK(x.ndim() == 2 && y.ndim() == 2, "count_within_pair: x and y must be 2-D (n, d)");
  const index_t n = x.shape(0);
  CCHMI_CHECK(y.shape(0) == n, "count_within_pair: x and y need the same number of rows");
  const auto rows = query_rows(queries, n, "count_within_pair");
  CCHMI_CHECK(radius_x.ndim() == 1 && radius_x.shape(0) == rows.m && radius_y.ndim() == 1 &&
                  radius_y.shape(0) == rows.m,
              "count_within_pair: radii must have one entry per query (shape (n,), or (len(queries),))");
  const auto m = cchmi::cpu::checked_method(method);
  CCHMI_CHECK(m != cchmi::cpu::Method::Sort || (x.shape(1) == 1 && y.shape(1) == 1),
              "count_within_pair: method 'sort' needs one-dimensional x and y");
  const int threads = checked_threads(n_threads);
  carray<index_t> cx(rows.m), cy(rows.m);
  const auto used = run_interruptible([&](cchmi::Interrupt& interrupt) {
    return cchmi::cpu::count_within_pair<T>(x.data(), x.shape(1), y.data(), y.shape(1), n, rows, radius_x.data(),
                                            radius_y.data(), inclusive, cx.mutable_data(), cy.mutable_data(), m,
                                            threads, interrupt);
  });
  return py::make_tuple(cx, cy, cchmi::cpu::method_name(used));
}

}  // namespace

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "cchmi CPU kernels (C++17/OpenMP): exact max-norm kNN and radius counts";

  m.def("knn", &knn<float>, py::arg("points"), py::arg("k"), py::arg("method") = 0, py::arg("n_threads") = 0,
        py::arg("queries") = py::none());
  m.def("knn", &knn<double>, py::arg("points"), py::arg("k"), py::arg("method") = 0, py::arg("n_threads") = 0,
        py::arg("queries") = py::none(),
        "knn(points (n, d) float32|float64 C-contiguous, k, method=0 auto|1 tree|2 brute, n_threads=0 all,\n"
        "queries=None all | (m,) int64 rows) -> (dist (m, k), idx (m, k) int64, method name). Self excluded;\n"
        "ties broken by smaller index. Row t answers point queries[t] (any order, repeats allowed).");
  m.def("count_within", &count_within<float>, py::arg("points"), py::arg("radius"), py::arg("inclusive"),
        py::arg("method") = 0, py::arg("n_threads") = 0,
        py::arg("queries") = py::none());
  m.def("count_within", &count_within<double>, py::arg("points"), py::arg("radius"), py::arg("inclusive"),
        py::arg("method") = 0, py::arg("n_threads") = 0,
        py::arg("queries") = py::none(),
        "count_within(points (n, d), radius (m,), inclusive, method=0 auto|1 tree|2 brute|3 sort, n_threads=0,\n"
        "queries=None | (m,) int64 rows) -> (counts (m,) int64, method name): for the point i of each query,\n"
        "#{j != i : dist(i, j) < radius} (<= when inclusive).");

  m.def("count_within_pair", &count_within_pair<float>, py::arg("x"), py::arg("y"), py::arg("radius_x"),
        py::arg("radius_y"), py::arg("inclusive"), py::arg("method") = 0, py::arg("n_threads") = 0,
        py::arg("queries") = py::none());
  m.def("count_within_pair", &count_within_pair<double>, py::arg("x"), py::arg("y"), py::arg("radius_x"),
        py::arg("radius_y"), py::arg("inclusive"), py::arg("method") = 0, py::arg("n_threads") = 0,
        py::arg("queries") = py::none(),
        "count_within_pair(x (n, dx), y (n, dy), radius_x (m,), radius_y (m,), inclusive, method=0, n_threads=0,\n"
        "queries=None | (m,) int64 rows)\n"
        "-> (counts_x, counts_y, method name): both marginal counts of a KSG estimate; brute force visits each\n"
        "pair once for both points and both spaces.");

  m.def(
      "set_threads_follow_load", [](bool on) { threads_follow_load.store(on); }, py::arg("on"),
      "Whether calls with n_threads=0 adapt the team to the load (cchmi._loader sets it; see bind_cpu.cpp).");

  m.def("build_info", [] {
    py::dict info;
    info["version"] = CCHMI_VERSION;
    info["openmp"] = cchmi::built_with_openmp();
    info["max_threads"] = cchmi::max_threads();
    const std::string runtime = openmp_runtime();
    info["openmp_runtime"] = runtime.empty() ? py::object(py::none()) : py::object(py::str(runtime));
    info["threads_follow_load"] = threads_follow_load.load();
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
