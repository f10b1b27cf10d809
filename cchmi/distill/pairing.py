"""How teacher-modality rows are paired with student-modality rows.

* "aligned": row i of both modalities is the same sample (the real pairing).
* "shuffled": with probability p, sample i's teacher row is replaced by the teacher row of another
  sample of the same class (a within-class derangement of the chosen rows). Lowers I(T; S) and
  keeps every (teacher row, label) and (student row, label) pair valid, so I(S; Y) is unchanged.
* "label": every teacher row comes from another sample of the same class (p = 1): the teacher then
  sees the student's sample only through its label, so S - Y - T is a Markov chain and
  I(T; S) <= I(S; Y) by data processing. The negative control: the CCH says do not distil.
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


def pairing_index(labels: np.ndarray, mode: str, p: float = 0.0, random_state=0) -> np.ndarray:
    """idx such that teacher_view[idx[i]] is paired with student row i (same class as row i)."""
    if mode not in PAIRINGS:
        raise ValueError(f"pairing must be one of {', '.join(map(repr, PAIRINGS))}; got {mode!r}")
    V.as_real(p, "pairing probability p", 0, 1)
    labels = np.asarray(labels)
    idx = np.arange(labels.size)
    if mode == "aligned" or (mode == "shuffled" and p == 0.0):
        return idx
    rng = np.random.default_rng(random_state)
    chosen = np.ones(labels.size, dtype=bool) if mode == "label" else rng.random(labels.size) < p
    for c in np.unique(labels):
        members = np.flatnonzero((labels == c) & chosen)
        idx[members] = _derange(members, rng)
    return idx
