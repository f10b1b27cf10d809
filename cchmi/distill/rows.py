"""The rows of a KD run: the split into held-out, teacher, student and transfer rows, the folds of
cross-fitting, and the pairings of teacher rows with student rows (the real one and the controls).

Splits (:func:`split_indices`) are stratified by class; budgets are exact rows per class.

A pairing is an index array ``idx``: the teacher row ``idx[i]`` is paired with student row i.

* "aligned": row i of both modalities is the same sample (the real pairing).
* "shuffled": with probability p, sample i's teacher row is replaced by the teacher row of another
  sample of the same class (a within-class derangement of the chosen rows). Lowers I(T; S) and
  keeps every (teacher row, label) and (student row, label) pair valid, so I(S; Y) is unchanged.
* "label": every teacher row comes from another sample of the same class (p = 1): the teacher then
  sees the student's sample only through its label, so S - Y - T is a Markov chain and
  I(T; S) <= I(S; Y) by data processing. The negative control: the CCH says do not distil.

``rows`` restricts a re-pairing to some rows (the KD trainer's controls re-pair either the
student's labelled rows or the transfer set, never both): those rows take teacher rows from among
themselves and every other row stays aligned. :func:`random_pairing` pairs rows regardless of class, which
makes I(T; S) = 0 on them (the random transfer pairing control). :func:`pairings` gives a run's
pairings under its control, for the training rows and for the validation rows.
"""

from __future__ import annotations

import numpy as np

from cchmi import _validate as V
from cchmi.distill.config import PAIRINGS, Budget, SplitConfig, check_rows

__all__ = ["split_indices", "crossfit_assignment", "crossfit_split", "pairing_index", "random_pairing", "pairings",
           "PAIRINGS"]


def _per_class(counts: dict) -> str:
    return "{" + ", ".join(f"{c}: {v}" for c, v in counts.items()) + "}"


def split_indices(labels: np.ndarray, split: SplitConfig, rng, *, teacher_rows: str = "disjoint",
                  student_labels_per_class: int | None = None, teacher_labels_per_class: int | None = None,
                  transfer_size: int | None = None) -> dict:
    """Disjoint row sets (sorted int64 indices): val, test, student_train (the student's labelled
    rows), teacher_only, transfer, unused, and teacher_train (the rows the teacher trains on).

    Per class, in a random order: validation and test rows (fractions), the teacher's own rows
    (``teacher_labels_per_class``, else the fraction split.teacher), the fraction split.unlabelled
    (transfer rows), the student's ``student_labels_per_class`` rows. Then ``transfer_size`` rows
    are drawn at random from the rows left (all classes together: a transfer set is unlabelled).
    The rows still left go to the student when it has no budget; with teacher_rows "disjoint" and
    no teacher rows asked for, they go to the teacher when the student has a budget, else they are
    halved per class (teacher first); otherwise they are unused.
    teacher_train: teacher_only ("disjoint"), teacher_only + student_train ("crossfit") or
    student_train ("shared"). A budget larger than the rows a class has left is refused, naming
    the budget and the rows available per class.
    """
    budget = Budget(student_labels_per_class, teacher_labels_per_class, transfer_size)
    check_rows(split, budget, teacher_rows)
    s_budget, t_budget, x_budget = (budget.student_labels_per_class, budget.teacher_labels_per_class,
                                    budget.transfer_size)
    teacher_fixed = t_budget is not None or split.teacher > 0
    labels = np.asarray(labels)
    parts = {name: [] for name in ("val", "test", "teacher_only", "transfer", "student_train", "unused")}
    order, available, sizes = {}, {}, {}
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for name, frac in (("val", split.val), ("test", split.test)):
            take = int(round(frac * members.size))
            parts[name].append(members[start : start + take])
            start += take
        order[c], available[c], sizes[c] = members[start:], members.size - start, members.size
    left = {}
    for c, members in order.items():
        takes = (("teacher_only", t_budget if t_budget is not None else int(round(split.teacher * sizes[c]))),
                 ("transfer", int(round(split.unlabelled * sizes[c]))), ("student_train", s_budget or 0))
        if sum(t for _, t in takes) > members.size:
            asked = " and ".join(f"{name}={value}" for name, value in (
                ("teacher_labels_per_class", t_budget), ("student_labels_per_class", s_budget)) if value is not None)
            raise ValueError(f"{asked or 'the split fractions'} ask for {sum(t for _, t in takes)} rows of class {c}, "
                             f"which has {members.size} left after the validation and test rows; rows available per "
                             f"class: {_per_class(available)}")
        start = 0
        for name, take in takes:
            parts[name].append(members[start : start + take])
            start += take
        left[c] = members[start:]
    if x_budget:
        pool = np.concatenate(list(left.values()))
        if x_budget > pool.size:
            counts = {c: int(v.size) for c, v in left.items()}
            raise ValueError(f"transfer_size={x_budget} is more than the {pool.size} rows left after the validation, "
                             f"test, teacher and student rows (per class: {_per_class(counts)})")
        drawn = np.zeros(labels.size, dtype=bool)
        drawn[rng.choice(pool, size=x_budget, replace=False)] = True
        parts["transfer"].append(np.flatnonzero(drawn))
        left = {c: rest[~drawn[rest]] for c, rest in left.items()}
    for rest in left.values():
        if s_budget is None:
            half = rest.size // 2 if teacher_rows == "disjoint" and not teacher_fixed else 0
            parts["teacher_only"].append(rest[:half])
            parts["student_train"].append(rest[half:])
        elif teacher_rows == "disjoint" and not teacher_fixed:
            parts["teacher_only"].append(rest)
        else:
            parts["unused"].append(rest)
    out = {name: np.sort(np.concatenate(chunks or [np.empty(0, np.int64)])).astype(np.int64)
           for name, chunks in parts.items()}
    out["teacher_train"] = {"disjoint": out["teacher_only"], "shared": out["student_train"],
                            "crossfit": np.union1d(out["teacher_only"], out["student_train"])}[teacher_rows]
    for name in ("student_train", "teacher_train", "val", "test"):
        if np.unique(labels[out[name]]).size < 2:
            raise ValueError(f"the {name} rows have fewer than two classes: the dataset is too small for these "
                             "fractions and budgets")
    return out


def crossfit_assignment(labels: np.ndarray, rows: np.ndarray, folds: int, rng) -> np.ndarray:
    """The fold (0 .. folds - 1) of each of `rows`, stratified: each class's rows, in a random order,
    are dealt round the folds from where the previous class stopped (fold sizes differ by at most 1)."""
    labels, rows = np.asarray(labels), np.asarray(rows)
    folds = V.as_int(folds, "crossfit_folds", 2, max(2, rows.size), " (at most the student's labelled rows)")
    out = np.empty(rows.size, dtype=np.int64)
    start = 0
    for c in np.unique(labels[rows]):
        pos = rng.permutation(np.flatnonzero(labels[rows] == c))
        out[pos] = (start + np.arange(pos.size)) % folds
        start = (start + pos.size) % folds
    return out


def crossfit_split(labels: np.ndarray, student_rows: np.ndarray, folds: int, rng) -> list[np.ndarray]:
    """The student's labelled rows dealt into `folds` stratified folds (:func:`crossfit_assignment`):
    fold f's rows get their KD targets from a teacher trained without them. More folds than rows
    is refused, naming crossfit_folds."""
    if folds > student_rows.size:
        raise ValueError(f"crossfit_folds={folds} is more than the student's {student_rows.size} labelled rows")
    assign = crossfit_assignment(labels, student_rows, folds, rng)
    return [student_rows[assign == f] for f in range(folds)]


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
    V.choice(mode, "pairing", PAIRINGS)
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


def _kd_share(n_labelled: int, n_transfer: int, batch_size: int) -> float:
    """The share of the KD targets of a full step that come from labelled rows."""
    b_lab, b_tr = min(batch_size, n_labelled), min(batch_size, n_transfer)
    return b_lab / (b_lab + b_tr)


def pairings(labels: np.ndarray, rows: dict, control: str | None, p: float, batch_size: int, rng):
    """(train_pair, held_pair): the teacher row whose score is paired with each student row in
    training, and on the validation rows for the predictors (the only rows they read).

    label_pairing / within_class_shuffle (with probability p) re-pair the student's labelled rows
    within their class, among themselves; transfer_within_class_shuffle (with probability p)
    re-pairs the transfer rows within their class, among themselves (the labelled rows stay
    aligned); random_transfer_pairing re-pairs the transfer rows at random, across classes.
    Labelled rows are never re-paired at random. The validation rows get the same kind of
    re-pairing with probability q, the share of the KD targets of a training step that come from
    re-paired rows (labelled rows: b_l / (b_l + b_t) times p, b the rows of each kind in a step;
    transfer rows: b_t / (b_l + b_t), times p for the within-class shuffle), so that the
    predictors see the mixture of pairs the KD loss averages over."""
    n = labels.size
    identity = np.arange(n)
    held = rows["val"]
    share = _kd_share(rows["student_train"].size, rows["transfer"].size, batch_size)
    if control in ("label_pairing", "within_class_shuffle"):
        p_rows = 1.0 if control == "label_pairing" else p
        mode = "label" if control == "label_pairing" else "shuffled"
        train_pair = pairing_index(labels, mode, p_rows, random_state=rng, rows=rows["student_train"])
        held_pair = pairing_index(labels, "shuffled", p_rows * share, random_state=rng, rows=held)
        return train_pair, held_pair
    if control == "transfer_within_class_shuffle":
        train_pair = pairing_index(labels, "shuffled", p, random_state=rng, rows=rows["transfer"])
        return train_pair, pairing_index(labels, "shuffled", p * (1.0 - share), random_state=rng, rows=held)
    if control == "random_transfer_pairing":
        train_pair = random_pairing(n, rows["transfer"], random_state=rng)
        return train_pair, random_pairing(n, held, 1.0 - share, random_state=rng)
    return identity, identity
