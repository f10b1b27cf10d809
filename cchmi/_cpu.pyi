"""Type stub of the compiled module cchmi._cpu (csrc/bind_cpu.cpp).

n_threads: 0 (OpenMP's default) or 1..4 x the processor count, else ValueError. The kernels release
the GIL and honour Ctrl-C (KeyboardInterrupt) between work items. The SIMD level in use is chosen
at first use (CCHMI_SIMD forces one); a level this CPU or build lacks makes every kernel raise
RuntimeError, and build_info() reports it under "simd_error".

queries: None (every point) or a 1-D int64 array of rows in [0, n) (any order, repeats allowed):
the results of those points only (row t for point queries[t]), searched among all n points, equal
bit for bit to those rows of the full call; radii then have one entry per query.
"""

import numpy as np
import numpy.typing as npt

def knn(
    points: npt.NDArray[np.floating],
    k: int,
    method: int = 0,
    n_threads: int = 0,
    queries: npt.NDArray[np.int64] | None = None,
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.int64], str]: ...
def count_within(
    points: npt.NDArray[np.floating],
    radius: npt.NDArray[np.floating],
    inclusive: bool,
    method: int = 0,
    n_threads: int = 0,
    queries: npt.NDArray[np.int64] | None = None,
) -> tuple[npt.NDArray[np.int64], str]: ...
def count_within_pair(
    x: npt.NDArray[np.floating],
    y: npt.NDArray[np.floating],
    radius_x: npt.NDArray[np.floating],
    radius_y: npt.NDArray[np.floating],
    inclusive: bool,
    method: int = 0,
    n_threads: int = 0,
    queries: npt.NDArray[np.int64] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], str]: ...
def set_threads_follow_load(on: bool) -> None:
    """Whether calls with n_threads=0 adapt the team to the load (set by cchmi._loader when the OpenMP
    runtime was loaded before this module and the user chose no wait policy; csrc/bind_cpu.cpp)."""
def build_info() -> dict[str, object]:
    """version, openmp, max_threads, openmp_runtime (the path of the OpenMP library in use, or None),
    threads_follow_load, march_native, simd (level in use, or None), simd_error (None, or why
    CCHMI_SIMD is unusable), simd_levels (compiled and supported here), compiler."""
