"""The ``cuda`` backend: the CUDA C++ kernels of cchmi._cuda (csrc/cuda), launched on the current
torch stream of the tensors' device. The module takes raw pointers and sizes (it does not link
torch); this file is where tensors become pointers. A subset of queries (``queries=``) launches the
kernels over the query blocks (runs of ``tile_rows`` sorted rows, the candidate tiles) that hold
them only: ``knn_blocks`` and ``count_within_pair_blocks``."""

from __future__ import annotations

from cchmi.ops.base import DeviceBackend


class CudaBackend(DeviceBackend):
    name = "cuda"
    takes_queries = True  # the launchers take blocks= (a list of query blocks)

    def __init__(self, module, device):
        super().__init__(device)
        self._m = module
        self.max_k = int(module.max_k)
        self.tile_rows = int(module.tile_rows)
        self.query_block = self.tile_rows  # the kernels' query blocks are the candidate tiles

    def _launch_args(self, a):
        """(double precision, device index, stream handle) for a launch on `a`'s device. CPU tensors
        (the tests' emulated module) get device 0 and stream 0."""
        double = a.dtype == self._torch.float64
        if a.device.type != "cuda":
            return double, 0, 0
        return double, a.device.index, self._torch.cuda.current_stream(a.device).cuda_stream

    def _on_device(self):
        import contextlib

        return contextlib.nullcontext()  # the device index travels with every launch

    def _launch_knn(self, sp, order, lo, hi, k, dist, idx, blocks=None):
        """blocks: None (every row) or the distinct query block numbers (int64 on the device)."""
        batch, n, d = sp.shape
        inputs = (sp.data_ptr(), order.data_ptr(), lo.data_ptr(), hi.data_ptr(), batch, n, d, k)
        outputs = (dist.data_ptr(), idx.data_ptr(), *self._launch_args(sp))
        if blocks is None:
            self._m.knn(*inputs, *outputs)
        else:
            self._m.knn_blocks(*inputs, blocks.data_ptr(), blocks.numel(), *outputs)

    def _launch_counts(self, x_space, y_space, inclusive, out_x, out_y, blocks=None):
        """blocks: None (every row) or the distinct query block numbers (int64 on the device)."""
        xs, lox, hix, rxs = x_space
        batch, n, dx = xs.shape
        y_ptr = loy_ptr = hiy_ptr = ry_ptr = oy_ptr = dy = 0  # no y: the kernel counts in x only
        if y_space is not None:
            ys, loy, hiy, rys = y_space
            y_ptr, loy_ptr, hiy_ptr, ry_ptr, oy_ptr = (t.data_ptr() for t in (ys, loy, hiy, rys, out_y))
            dy = ys.shape[2]
        inputs = (xs.data_ptr(), lox.data_ptr(), hix.data_ptr(), dx, y_ptr, loy_ptr, hiy_ptr, dy, batch, n,
                  rxs.data_ptr(), ry_ptr, inclusive)
        outputs = (out_x.data_ptr(), oy_ptr, *self._launch_args(xs))
        if blocks is None:
            self._m.count_within_pair(*inputs, *outputs)
        else:
            self._m.count_within_pair_blocks(*inputs, blocks.data_ptr(), blocks.numel(), *outputs)
