"""The ``triton`` backend: the Triton kernels of cchmi._triton (knn.py, count.py), on any GPU
Triton supports, and on the CPU under TRITON_INTERPRET=1 (the tests)."""

from __future__ import annotations

from cchmi.ops.base import DeviceBackend


class TritonBackend(DeviceBackend):
    name = "triton"

    def __init__(self, device):
        super().__init__(device)
        from cchmi._triton import count, knn

        self._knn_kernel, self._count_kernel = knn, count
        self.max_k = knn.MAX_K
        self.tile_rows = knn.BLOCK_N

    def _launch_knn(self, sp, order, lo, hi, k, dist, idx):
        self._knn_kernel.launch(sp, order, lo, hi, k, dist, idx)

    def _launch_counts(self, x_space, y_space, inclusive, out_x, out_y):
        self._count_kernel.launch(x_space, y_space, inclusive, out_x, out_y)
