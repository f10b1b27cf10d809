"""Query-block x reference-block kNN and counting in torch: the local work of sharded execution.

Sharded execution (:mod:`cchmi.distributed`) splits a problem's queries over devices or processes
and lets every query see every reference point, one block at a time. Two updates do the work:

* :func:`knn_update`: a running top-k per query, merged with one more reference block;
* :func:`count_update`: per-query counts of the reference points of one more block within a
  radius, in one or several subspaces at once.

Points carry their *global* row index (their row in the unsharded problem), so the result does
not depend on how the points were split: a point never counts itself (equal global index), and
the k nearest are ordered by (distance, global index), the kernels' order (:mod:`cchmi.ops`).

Exactness: distances are max-norm in the points' dtype, ``max_c |q_c - r_c|``: one rounding (the
subtraction), then exact operations (abs, max). Any correct code computes the same bits on the
same prepared arrays, so k-th neighbour distances, neighbour indices (ties by global index) and
counts here equal those of the compiled kernels bit for bit (tests/test_distributed.py checks it
against :func:`cchmi.ops.knn` and :func:`cchmi.ops.count_pair`, with ties and duplicated rows).
The merge is associative and commutative in the blocks: any order of blocks gives the same top-k.

Subspaces: the columns are split into consecutive *atoms* of given widths (x | y, or x | y | z);
the distance in a subspace made of several atoms is the max of their distances (exact). A kNN
state keeps, for each kept neighbour, its distance in every atom (KSG-2's marginal extents).

Memory: the work is chunked so that the (queries, references) distance tensors of a chunk hold
about ``CHUNK_ELEMENTS`` elements; nothing of size queries x all references is ever held. These are
brute-force loops (no spatial pruning inside a block): where a compiled backend takes ``queries=``
the sharded passes use it instead (see the cchmi.distributed docstring); these remain for devices
without such a backend, same-label searches and as the reference of the tests.

Two helpers serve the kernels' ring steps (:mod:`cchmi.distributed.passes`):
:func:`merge_neighbours` merges the top-k of one more search into a running top-k (entries seen
before dropped), and :func:`box_distance` bounds the distance from a query to every point of a
block's bounding box (a block beyond every query's k-th distance or radius is skipped).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Elements of the (queries, references) distance tensors formed at once (one per atom, and one
# for their max): large chunks keep the per-chunk overhead (Python, launches, the merge's sorts)
# small (n = 2048, d = 4 on the CPU: 2.5 s with 2^24, 8.4 s with 2^20); 2^24 elements are
# 64 MB in float32.
CHUNK_ELEMENTS = 1 << 24
# Queries processed together (their running top-k is sorted with each reference chunk).
QUERY_CHUNK = 2048
# Index of an empty slot of a running top-k (sorts after every real index).
INDEX_PAD = torch.iinfo(torch.int64).max


@dataclass
class Block:
    """Points of one shard or block: rows (m, d), their global row indices (m,) int64, and
    their label codes (m,) int64 or None."""

    points: torch.Tensor
    index: torch.Tensor
    labels: torch.Tensor | None = None

    def rows(self, sel) -> Block:
        return Block(self.points[sel], self.index[sel], None if self.labels is None else self.labels[sel])

    def to(self, device) -> Block:
        return Block(self.points.to(device), self.index.to(device),
                     None if self.labels is None else self.labels.to(device))


@dataclass
class Neighbours:
    """A running top-k per query, ascending by (distance, global index): dist (m, k), index (m, k)
    (INDEX_PAD and an infinite distance in slots not filled yet), atoms (m, k, A): the distance of
    each kept neighbour in each atom."""

    dist: torch.Tensor
    index: torch.Tensor
    atoms: torch.Tensor

    @classmethod
    def empty(cls, m: int, k: int, n_atoms: int, dtype, device) -> Neighbours:
        return cls(torch.full((m, k), float("inf"), dtype=dtype, device=device),
                   torch.full((m, k), INDEX_PAD, dtype=torch.int64, device=device),
                   torch.full((m, k, n_atoms), float("inf"), dtype=dtype, device=device))

    def rows(self, sel) -> Neighbours:
        return Neighbours(self.dist[sel], self.index[sel], self.atoms[sel])

    def put(self, sel, other: Neighbours) -> None:
        """Rows `sel` replaced by those of `other`."""
        self.dist[sel], self.index[sel], self.atoms[sel] = other.dist, other.index, other.atoms


def atom_distances(q: torch.Tensor, r: torch.Tensor, widths: tuple[int, ...]) -> list[torch.Tensor]:
    """(m, d) x (c, d) -> one (m, c) tensor per atom of `widths` consecutive columns: the max-norm
    distance of every pair in that atom (a column at a time: (m, c) temporaries, not (m, c, d))."""
    out, first = [], 0
    for width in widths:
        dist = (q[:, None, first] - r[None, :, first]).abs_()
        for c in range(first + 1, first + width):
            torch.maximum(dist, (q[:, None, c] - r[None, :, c]).abs_(), out=dist)
        out.append(dist)
        first += width
    return out


def _max(parts: list[torch.Tensor]) -> torch.Tensor:
    out = parts[0].clone() if len(parts) > 1 else parts[0]
    for part in parts[1:]:
        torch.maximum(out, part, out=out)
    return out


def _ref_chunk(m: int, n_atoms: int) -> int:
    """References per chunk for m queries."""
    return max(1, CHUNK_ELEMENTS // max(1, m * (n_atoms + 1)))


def _excluded(q: Block, r: Block, same_label: bool) -> torch.Tensor:
    """(m, c) bool: pairs that are not candidates (the point itself; another label when asked)."""
    out = q.index[:, None] == r.index[None, :]
    if same_label:
        out |= q.labels[:, None] != r.labels[None, :]
    return out


def knn_update(state: Neighbours, q: Block, r: Block, widths: tuple[int, ...], same_label: bool = False) -> Neighbours:
    """`state` (the running top-k of the queries `q`) merged with the reference block `r`.
    same_label: only points of the query's label are candidates (q and r need labels)."""
    m = q.points.shape[0]
    if m == 0 or r.points.shape[0] == 0:
        return state
    k = state.dist.shape[1]
    parts = []
    for s in range(0, m, QUERY_CHUNK):
        rows = slice(s, s + QUERY_CHUNK)
        qc = q.rows(rows)
        dist, index, atoms = state.dist[rows], state.index[rows], state.atoms[rows]
        step = _ref_chunk(qc.points.shape[0], len(widths))
        for t in range(0, r.points.shape[0], step):
            rc = r.rows(slice(t, t + step))
            cand_atoms = atom_distances(qc.points, rc.points, widths)
            excluded = _excluded(qc, rc, same_label)
            cand_dist = _max(cand_atoms).masked_fill(excluded, float("inf"))
            cand_index = rc.index[None, :].expand_as(cand_dist).masked_fill(excluded, INDEX_PAD)
            # Only candidates not farther than the k-th smallest distance of their row (state and
            # candidates) can be in the top-k by (distance, index): gather them into w columns (w:
            # the most in a row; other rows padded, masked), so the sorts see k + w columns.
            entering = cand_dist <= torch.topk(torch.cat([dist, cand_dist], 1), k, dim=1, largest=False).values[:, -1:]
            width = int(entering.sum(dim=1).max())
            if width == 0:
                continue
            cols = torch.topk(entering.to(torch.int32), width, dim=1).indices
            entering = torch.gather(entering, 1, cols)
            cand_dist = torch.gather(cand_dist, 1, cols).masked_fill_(~entering, float("inf"))
            cand_index = torch.gather(cand_index, 1, cols).masked_fill_(~entering, INDEX_PAD)
            all_dist, all_index = torch.cat([dist, cand_dist], 1), torch.cat([index, cand_index], 1)
            keep = _merge(all_dist, all_index, k)
            dist, index = torch.gather(all_dist, 1, keep), torch.gather(all_index, 1, keep)
            atoms = torch.stack([torch.gather(torch.cat([atoms[..., a], torch.gather(cand, 1, cols)], 1), 1, keep)
                                 for a, cand in enumerate(cand_atoms)], dim=-1)
        parts.append((dist, index, atoms))
    return Neighbours(*(torch.cat([p[i] for p in parts]) for i in range(3)))


def merge_neighbours(state: Neighbours, found: Neighbours) -> Neighbours:
    """The top-k by (distance, global index) of the union of two top-k lists per query (m, k)
    each, such as a running top-k and the top-k of one more search: an entry of `found` whose
    global index is already in `state`'s row is dropped (the same point: the same distance, bit
    for bit, since pair distances do not depend on the search that computed them). Exact: the
    top-k of A u B is the top-k of top-k(A) u top-k(B)."""
    k = state.dist.shape[1]
    seen = (found.index[:, :, None] == state.index[:, None, :]).any(dim=2) & (found.index != INDEX_PAD)
    dist = torch.cat([state.dist, found.dist.masked_fill(seen, float("inf"))], 1)
    index = torch.cat([state.index, found.index.masked_fill(seen, INDEX_PAD)], 1)
    keep = _merge(dist, index, k)
    atoms = torch.cat([state.atoms, found.atoms], 1)
    return Neighbours(torch.gather(dist, 1, keep), torch.gather(index, 1, keep),
                      torch.gather(atoms, 1, keep[..., None].expand(-1, -1, atoms.shape[2])))


def box_distance(q: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """(m,) a lower bound of the max-norm distance from each query (m, d) to every point of the box
    [lo, hi] (d,): ``max_c max(lo_c - q_c, q_c - hi_c, 0)`` in the points' dtype. Exact as a bound
    on the pair distances the block ops and the kernels compute (one rounding, the subtraction):
    rounding is monotonic and symmetric, so for p in the box fl(p_c - q_c) >= fl(lo_c - q_c) and
    fl(q_c - p_c) >= fl(q_c - hi_c), hence |fl(p_c - q_c)| is at least both (the argument of
    :mod:`cchmi.ops._spatial`). A box farther than a query's k-th distance (strictly) holds no
    point of its top-k; one at or beyond its radius (strict counts; beyond it: inclusive counts)
    holds no point it counts. d = 0: zero."""
    if q.shape[1] == 0:
        return torch.zeros(q.shape[0], dtype=q.dtype, device=q.device)
    return torch.maximum(lo - q, q - hi).amax(dim=1).clamp_(min=0)


def _merge(dist, index, k) -> torch.Tensor:
    """Columns of the k smallest of each row by (distance, index): a stable sort by index, then a
    stable sort by distance."""
    by_index = torch.argsort(index, dim=1, stable=True)
    by_dist = torch.argsort(torch.gather(dist, 1, by_index), dim=1, stable=True)[:, :k]
    return torch.gather(by_index, 1, by_dist)


def count_update(counts: torch.Tensor, q: Block, radius: torch.Tensor, r: Block, widths: tuple[int, ...],
                 groups: tuple[tuple[tuple[int, ...], bool], ...], inclusive: bool) -> torch.Tensor:
    """counts (m, G) int64 plus, for each group g = (atoms, same_label), the number of points of
    block `r` other than the query whose distance in the subspace of those atoms is < radius[:, g]
    (<= when inclusive), among points of the query's label only when same_label. Returns counts."""
    m = q.points.shape[0]
    if m == 0 or r.points.shape[0] == 0:
        return counts
    for s in range(0, m, QUERY_CHUNK):
        qc = q.rows(slice(s, s + QUERY_CHUNK))
        rad = radius[s:s + QUERY_CHUNK]
        step = _ref_chunk(qc.points.shape[0], len(widths))
        for t in range(0, r.points.shape[0], step):
            rc = r.rows(slice(t, t + step))
            atoms = atom_distances(qc.points, rc.points, widths)
            itself = _excluded(qc, rc, False)
            other_label = None
            for g, (members, same_label) in enumerate(groups):
                dist = _max([atoms[a] for a in members])
                hit = dist <= rad[:, g, None] if inclusive else dist < rad[:, g, None]
                hit &= ~itself
                if same_label:
                    if other_label is None:
                        other_label = qc.labels[:, None] != rc.labels[None, :]
                    hit &= ~other_label
                counts[s:s + QUERY_CHUNK, g] += hit.sum(dim=1)
    return counts
