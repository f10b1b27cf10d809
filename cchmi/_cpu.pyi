"""Type stub of the compiled module cchmi._cpu (csrc/bind_cpu.cpp)."""

import numpy as np
import numpy.typing as npt

def knn(
    points: npt.NDArray[np.floating], k: int, method: int = 0, n_threads: int = 0
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.int64], str]: ...
def count_within(
    points: npt.NDArray[np.floating],
    radius: npt.NDArray[np.floating],
    inclusive: bool,
    method: int = 0,
    n_threads: int = 0,
) -> tuple[npt.NDArray[np.int64], str]: ...
def count_within_pair(
    x: npt.NDArray[np.floating],
    y: npt.NDArray[np.floating],
    radius_x: npt.NDArray[np.floating],
    radius_y: npt.NDArray[np.floating],
    inclusive: bool,
    method: int = 0,
    n_threads: int = 0,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], str]: ...
def build_info() -> dict[str, object]: ...
