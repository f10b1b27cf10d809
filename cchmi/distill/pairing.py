"""How teacher-modality rows are paired with student-modality rows.

A pairing is an index array ``idx``: the teacher row ``idx[i]`` is paired with student row i.

* "aligned": row i of both modalities is the same sample (the real pairing).
* "shuffled": with probability p, sample i's teacher row is replaced by the teacher row of another
  sample of the same class (a within-class derangement of the chosen rows). Lowers I(T; S) and
  keeps every (teacher row, label) and (student row, label) pair valid, so I(S; Y) is unchanged.
* "label": every teacher row comes from another sample of the same class (p = 1): the teacher then
  sees the student's sample only through its label, so S - Y - T is a Markov chain and
  I(T; S) <= I(S; Y) by data processing. The negative control: the CCH says do not distil.

``rows`` restricts a re-pairing to some rows (the KD trainer's controls re-pair the student's
labelled rows only, never the transfer set): those rows take teacher rows from among themselves
and every other row stays aligned. :func:`random_pairing` pairs rows regardless of class, which
makes I(T; S) = 0 on them (the random transfer pairing control).
"""

from __future__ import annotations

import numpy as np

from cchmi import _validate as V

PAIRINGS = ("aligned", "shuffled", "label")


def _derange(members: np.ndarray, rng) -> np.ndarray:
    """A permutation of `members` that moves every element (when there are two or more)."""
    if members.size < 2:
        return members.copy()
    order = rng.permutation(members.size)
    out = np.empty_like(members)
    out[order] = members[np.roll(order, 1)]  # a random cycle: nothing stays in place
    return out


def _chosen(n: int, rows, p: float, rng) -> np.ndarray:
    """Mask of the rows to re-pair: each of `rows` (None: all n) with probability p (p = 1: all of them)."""
    allowed = np.zeros(n, dtype=bool)
    if rows is None:
        allowed[:] = True
    else:
        rows = np.asarray(rows)
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise ValueError(f"rows must be indices in [0, {n}), got values in [{rows.min()}, {rows.max()}]")
        allowed[rows] = True
    if p < 1.0:
        allowed &= rng.random(n) < p
    return allowed


def pairing_index(labels: np.ndarray, mode: str, p: float = 0.0, random_state=0, rows=None) -> np.ndarray:
    """idx such that teacher_view[idx[i]] is paired with student row i (same class as row i).

    rows: the rows that may be re-paired (None: all); a re-paired row gets the teacher row of
    another of these rows, of its class; the other rows keep their own."""
    if mode not in PAIRINGS:
        raise ValueError(f"pairing must be one of {', '.join(map(repr, PAIRINGS))}; got {mode!r}")
    V.as_real(p, "pairing probability p", 0, 1)
    labels = np.asarray(labels)
    idx = np.arange(labels.size)
    if mode == "aligned" or (mode == "shuffled" and p == 0.0):
        return idx
    rng = np.random.default_rng(random_state)
    chosen = _chosen(labels.size, rows, 1.0 if mode == "label" else p, rng)
    for c in np.unique(labels):
        members = np.flatnonzero((labels == c) & chosen)
        idx[members] = _derange(members, rng)
    return idx


def random_pairing(n: int, rows, p: float = 1.0, random_state=0) -> np.ndarray:
    """idx pairing each of `rows` (each with probability p) with the teacher row of another of the
    chosen rows drawn at random, whatever its class (a random derangement); other rows stay aligned."""
    n = V.as_int(n, "n", 1)
    V.as_real(p, "pairing probability p", 0, 1)
    rng = np.random.default_rng(random_state)
    idx = np.arange(n)
    members = np.flatnonzero(_chosen(n, rows, p, rng))
    idx[members] = _derange(members, rng)
    return idx
