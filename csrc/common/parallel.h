// OpenMP helpers: the compiled core also builds (single-threaded) without OpenMP.
#pragma once

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cchmi {

inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// n_threads <= 0 means "all" (OpenMP's default, which honours OMP_NUM_THREADS).
inline int resolve_threads(int n_threads) { return n_threads > 0 ? n_threads : max_threads(); }

inline bool built_with_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace cchmi
