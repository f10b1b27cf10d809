"""Exact kNN estimators beyond one device: shards over torch.distributed, or devices in one process.

Two ways in:

* ``cchmi.ksg_mi(x, y, devices=[0, 1, 2, 3])`` (and ``mixed_mi``, ``entropy``, ``cmi``,
  ``ksg_mi_batch``): one process, the data on the host; the kNN and counting ops run in replicate
  mode on the listed devices, one thread each (:mod:`cchmi.distributed.local`). ``ksg_mi_batch``
  with ``devices`` spreads independent problems over the devices instead, with no communication.
* :func:`ksg_mi`, :func:`mixed_mi`, :func:`entropy`, :func:`cmi` of this package inside a process
  group started by torchrun or srun (``torch.distributed.init_process_group``): each rank passes
  its rows; ``mode="replicate"`` gathers every point on every rank, ``mode="ring"`` keeps
  O(N/P (d + k)) per rank and passes reference blocks around the ring (batch_isend_irecv, double
  buffered, a running top-k per query, then the same ring for the counts); ``"auto"`` replicates
  when the data fits (:mod:`cchmi.distributed.estimators`). :func:`knn` and :func:`count_pair` are
  the sharded ops on arrays used as given.

Decisions:

* **Exactness.** Max-norm distances have one rounding, so the block ops (:mod:`cchmi.ops.blocks`,
  torch) give the compiled kernels' k-th distances, neighbours (ties by (distance, global index))
  and counts bit for bit; the top-k merge is associative, counts are integer sums, and the estimate
  is one float64 all-reduce of the formulas' row sums (the formulas are the estimators' own:
  ``ksg_sums``/``ksg_from_sums`` and the like), equal to one process's up to that sum's order.
* **Preparation** equals the one-process preparation: global min/max by all-reduce, means and
  standard deviations as sums in global row order (a scan along the ranks), the jitter of row i
  drawn from the one-process stream (:mod:`cchmi.distributed.prepare` says where bits may differ).
* **Kernels.** In replicate mode (process groups and ``devices=``), a compiled backend answers
  each worker's interleaved query tiles (``ops.knn(be, points, k, queries=rows)`` and the counting
  ops with ``queries=``: the pruned kernels over all points, for those rows only): the cpu backend
  on the CPU, triton on a GPU (its kernels launched over the query blocks holding the rows); one
  device alone runs the plain call (cuda first on a GPU).
  :func:`cchmi.distributed.local.kernel_backend` says which backend a device gets. Elsewhere the
  block ops (brute force in torch, no tile pruning) do the work: on a GPU without triton when
  several workers share the queries (the cuda kernels do not take ``queries=`` yet), in ring mode
  (query block x reference block searches, which no kernel offers), and for the same-label
  searches of ``mixed_mi``. Ring
  mode runs over the shards as given: the range partitioning by global Morton code (sample sort +
  all_to_all), which would let blocks be pruned, is not built, since brute-force blocks would not
  use it.
"""

from cchmi._extras import require

require("torch", "torch", "cchmi.distributed")

from cchmi.distributed.estimators import MODES, cmi, entropy, ksg_mi, mixed_mi  # noqa: E402
from cchmi.distributed.knn import count_pair, knn  # noqa: E402

__all__ = ["ksg_mi", "mixed_mi", "entropy", "cmi", "knn", "count_pair", "MODES"]
