"""Exact kNN estimators beyond one device: shards over torch.distributed, or devices in one process.

Two ways in:

* ``cchmi.ksg_mi(x, y, devices=[0, 1, 2, 3])`` (and ``mixed_mi``, ``entropy``, ``cmi``,
  ``ksg_mi_batch``): one process, the data on the host; the kNN and counting ops run in replicate
  mode on the listed devices, one thread each (:mod:`cchmi.distributed.local`). ``ksg_mi_batch``
  with ``devices`` spreads independent problems over the devices instead, with no communication.
* :func:`ksg_mi`, :func:`mixed_mi`, :func:`entropy`, :func:`cmi` of this package inside a process
  group started by torchrun or srun (``torch.distributed.init_process_group``): each rank passes
  its rows; ``mode="replicate"`` gathers every point on every rank; ``mode="ring"`` (data that does
  not fit one device) range-partitions the rows by global Morton code (sample sort, one
  all_to_all; :mod:`cchmi.distributed.partition`), so that each rank answers a compact region of
  space, and passes the regions around the ring (batch_isend_irecv, double buffered, a running
  top-k per query, then the same ring for the counts): O(N/P (d + k)) memory per rank, no rank
  holding N x d or a block of N x N; ``"auto"`` replicates when the data fits
  (:mod:`cchmi.distributed.estimators`). :func:`knn` and :func:`count_pair` are the sharded ops on
  arrays used as given; their per-row results come back to the rows' owners in both modes.

Decisions:

* **Exactness.** Max-norm distances have one rounding, so the block ops (:mod:`cchmi.ops.blocks`,
  torch) and the compiled kernels give the same k-th distances, neighbours (ties by (distance,
  global index)) and counts bit for bit; the top-k merge is associative, counts are integer sums,
  and the estimate is one float64 all-reduce of the formulas' row sums (the formulas are the
  estimators' own: ``ksg_sums``/``ksg_from_sums`` and the like), equal to one process's up to that
  sum's order.
* **Preparation** equals the one-process preparation: global min/max by all-reduce, means and
  standard deviations as sums in global row order (a scan along the ranks), the jitter of row i
  drawn from the one-process stream (:mod:`cchmi.distributed.prepare` says where bits may differ).
  Ring mode partitions the prepared rows.
* **Kernels.** Where the device has a compiled backend that answers a subset of queries
  (:func:`cchmi.distributed.local.kernel_backend`: cpu on the CPU, cuda, else triton, on a GPU),
  it does the
  work in both modes. Replicate mode (process groups and ``devices=``) calls it on each worker's
  interleaved query tiles over all the points (``ops.knn(be, points, k, queries=rows)`` and the
  counting ops with ``queries=``); one device alone runs the plain call.
  Ring mode calls it once per ring step on the rank's rows and the visiting block, in global index
  order, with ``queries=`` the rank's rows: the step's top-k merged into the running top-k with
  repeated points dropped, the step's counts those of the union minus the rank's own
  (:mod:`cchmi.distributed.passes`). The block ops (brute force in torch) remain for the same-label
  searches of ``mixed_mi``, a k above the backend's limit, and devices without such a backend.
  The ring steps hand the kernels host arrays (a device backend copies them to its device per
  step).
* **Pruning (ring mode).** A query skips a visiting block whose bounding box is farther (exact
  max-norm box bound, the kernels' strict and inclusive conventions) than its current k-th
  distance, or at or beyond its counting radius; a block no query needs costs no work. It still
  travels the ring (the ranks after need it). The Morton ranges make the boxes compact, but a box
  spans its range's extent in every column, so subspaces the code does not split (e.g. y when the
  ranges split x) prune little (bench/bench_distributed.py reports the steps and rows skipped).
"""

from cchmi._extras import require

require("torch", "torch", "cchmi.distributed")

from cchmi.distributed.estimators import MODES, cmi, entropy, ksg_mi, mixed_mi  # noqa: E402
from cchmi.distributed.knn import count_pair, knn  # noqa: E402

__all__ = ["ksg_mi", "mixed_mi", "entropy", "cmi", "knn", "count_pair", "MODES"]
