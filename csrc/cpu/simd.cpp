// The SIMD level in use, and the kernels' entry points that call that level's implementation.
// Compiled for the baseline target only. CMake defines CCHMI_SIMD_AVX2 / CCHMI_SIMD_AVX512 when it
// compiles those levels (x86 with GCC or Clang).
#include "cpu/simd.h"

#include <cctype>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "cpu/count_cpu.h"
#include "cpu/knn_cpu.h"

namespace cchmi::cpu {
namespace {

constexpr Simd kAllLevels[] = {Simd::Baseline, Simd::Avx2, Simd::Avx512};

bool compiled(Simd level) {
  switch (level) {
    case Simd::Baseline: return true;
#ifdef CCHMI_SIMD_AVX2
    case Simd::Avx2: return true;
#endif
#ifdef CCHMI_SIMD_AVX512
    case Simd::Avx512: return true;
#endif
    default: return false;
  }
}

// __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0).
bool cpu_supports(Simd level) {
#if defined(CCHMI_SIMD_AVX2) || defined(CCHMI_SIMD_AVX512)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  switch (level) {
    case Simd::Baseline: return true;
    case Simd::Avx2: return avx2;
    case Simd::Avx512:
      return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  }
  return false;
#else
  return level == Simd::Baseline;
#endif
}

std::string names(const std::vector<Simd>& levels) {
  std::string out;
  for (Simd l : levels) out += (out.empty() ? "" : ", ") + std::string(simd_name(l));
  return out;
}

// The best supported level, or the one CCHMI_SIMD names; `error` is set instead when that is not
// possible.
struct Choice {
  Simd level = Simd::Baseline;
  std::string error;
};

Choice choose() {
  const std::vector<Simd> usable = simd_levels();
  const char* env = std::getenv("CCHMI_SIMD");
  if (env == nullptr || *env == '\0') return {usable.back(), {}};
  std::string want(env);
  for (char& c : want) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (Simd l : kAllLevels) {
    if (want != simd_name(l)) continue;
    for (Simd u : usable)
      if (u == l) return {l, {}};
    return {Simd::Baseline, "cchmi: CCHMI_SIMD=" + std::string(env) + " is not usable here (" +
                                (compiled(l) ? "this CPU lacks it" : "not compiled into this build") +
                                "); levels supported here: " + names(usable) + " (unset CCHMI_SIMD to pick the best)"};
  }
  return {Simd::Baseline, "cchmi: CCHMI_SIMD=" + std::string(env) +
                              " is not a SIMD level; use one of baseline, avx2, avx512 (supported here: " +
                              names(usable) + ")"};
}

}  // namespace

const char* simd_name(Simd level) {
  switch (level) {
    case Simd::Baseline: return "baseline";
    case Simd::Avx2: return "avx2";
    case Simd::Avx512: return "avx512";
  }
  return "?";
}

std::vector<Simd> simd_levels() {
  std::vector<Simd> out;
  for (Simd l : kAllLevels)
    if (compiled(l) && cpu_supports(l)) out.push_back(l);
  return out;
}

Simd simd_level() {
  static const Choice choice = choose();
  if (!choice.error.empty()) throw std::runtime_error(choice.error);
  return choice.level;
}

// Calls ns::fn(args...) for the namespace ns of the level in use.
#if defined(CCHMI_SIMD_AVX512)
#define CCHMI_CASE_AVX512(call) \
  case Simd::Avx512: return avx512::call;
#else
#define CCHMI_CASE_AVX512(call)
#endif
#if defined(CCHMI_SIMD_AVX2)
#define CCHMI_CASE_AVX2(call) \
  case Simd::Avx2: return avx2::call;
#else
#define CCHMI_CASE_AVX2(call)
#endif
#define CCHMI_SIMD_CALL(call)  \
  switch (simd_level()) {      \
    CCHMI_CASE_AVX512(call)    \
    CCHMI_CASE_AVX2(call)      \
    default: return baseline::call; \
  }

template <typename T>
Method knn(const T* points, index_t n, index_t d, index_t k, QueryRows queries, T* out_dist, index_t* out_idx,
           Method method, int n_threads, Interrupt& interrupt) {
  CCHMI_SIMD_CALL(knn<T>(points, n, d, k, queries, out_dist, out_idx, method, n_threads, interrupt))
}

template <typename T>
Method count_within(const T* points, index_t n, index_t d, QueryRows queries, const T* radius, bool inclusive,
                    index_t* out, Method method, int n_threads, Interrupt& interrupt) {
  CCHMI_SIMD_CALL(count_within<T>(points, n, d, queries, radius, inclusive, out, method, n_threads, interrupt))
}

template <typename T>
Method count_within_pair(const T* x, index_t dx, const T* y, index_t dy, index_t n, QueryRows queries,
                         const T* radius_x, const T* radius_y, bool inclusive, index_t* out_x, index_t* out_y,
                         Method method, int n_threads, Interrupt& interrupt) {
  CCHMI_SIMD_CALL(count_within_pair<T>(x, dx, y, dy, n, queries, radius_x, radius_y, inclusive, out_x, out_y, method,
                                       n_threads, interrupt))
}

template Method knn<float>(const float*, index_t, index_t, index_t, QueryRows, float*, index_t*, Method, int,
                           Interrupt&);
template Method knn<double>(const double*, index_t, index_t, index_t, QueryRows, double*, index_t*, Method, int,
                            Interrupt&);
template Method count_within<float>(const float*, index_t, index_t, QueryRows, const float*, bool, index_t*,
                                    Method, int, Interrupt&);
template Method count_within<double>(const double*, index_t, index_t, QueryRows, const double*, bool, index_t*,
                                     Method, int, Interrupt&);
template Method count_within_pair<float>(const float*, index_t, const float*, index_t, index_t, QueryRows,
                                        const float*, const float*, bool, index_t*, index_t*, Method, int, Interrupt&);
template Method count_within_pair<double>(const double*, index_t, const double*, index_t, index_t, QueryRows,
                                         const double*, const double*, bool, index_t*, index_t*, Method, int,
                                         Interrupt&);

}  // namespace cchmi::cpu
