// OpenMP helpers: the compiled core also builds (single-threaded) without OpenMP.
#pragma once

#include <algorithm>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cchmi {

inline int thread_num() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// The most threads a kernel starts: 4 per processor. More only oversubscribes the machine, and
// asking libgomp for thousands (OMP_NUM_THREADS=5000) aborts the process when thread creation fails.
inline int thread_cap() {
#ifdef _OPENMP
  return 4 * omp_get_num_procs();
#else
  return 1;
#endif
}

// OpenMP's default team size (all cores, or OMP_NUM_THREADS), at most thread_cap().
inline int max_threads() {
#ifdef _OPENMP
  return std::min(omp_get_max_threads(), thread_cap());
#else
  return 1;
#endif
}

// n_threads <= 0 means OpenMP's default; any request is capped at thread_cap().
inline int resolve_threads(int n_threads) { return n_threads > 0 ? std::min(n_threads, thread_cap()) : max_threads(); }

inline bool built_with_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace cchmi
