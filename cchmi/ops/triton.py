"""The ``triton`` backend: the Triton kernels of cchmi._triton (knn.py, count.py), on any GPU
Triton supports, and on the CPU under TRITON_INTERPRET=1 (the tests). A subset of queries
(``queries=``) launches the kernels over the query blocks that hold them only."""

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
        self.query_block = knn.BLOCK_M

    takes_queries = True  # the launchers take blocks= (a list of query blocks)

    def _launch_knn(self, sp, order, lo, hi, k, dist, idx, blocks=None):
        self._knn_kernel.launch(sp, order, lo, hi, k, dist, idx, blocks)

    def _launch_counts(self, x_space, y_space, inclusive, out_x, out_y, blocks=None):
        self._count_kernel.launch(x_space, y_space, inclusive, out_x, out_y, blocks)
