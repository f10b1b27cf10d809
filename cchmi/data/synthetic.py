"""A synthetic two-modality classification task in the spirit of the Modality Focusing Hypothesis
experiments (Xue et al., ICLR 2023), with the input-level MI known exactly.

Latent coordinates, all independent N(0, 1):

* decisive coordinates, which define the label: ``shared`` of them are seen by both modalities,
  ``teacher_only`` by the teacher's, ``student_only`` by the student's;
* ``nuisance`` coordinates seen by both modalities and unrelated to the label.

Each modality copies the coordinates it sees and adds independent N(0, noise^2) noise to every copy
(so the input-level MI stays finite), then (``mix=True``) mixes its own coordinates with a random
rotation, which changes no MI. The label is the argmax of ``n_classes`` random linear scores of the
decisive coordinates, each coordinate with the same weight (a centred unit vector of class scores);
with probability ``label_noise`` it is replaced by a uniformly drawn class.

Known: I(X_T; X_S) = (shared + nuisance) * (-1/2 log(1 - r^2)), r = 1 / (1 + noise^2), the
correlation of two noisy copies of one coordinate.
"""

from __future__ import annotations

import math

import numpy as np

from cchmi import _validate as V
from cchmi.data.multiview import MultiView


def _rotation(d: int, rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def mfh_classification(
    n: int,
    *,
    shared: int = 4,
    teacher_only: int = 2,
    student_only: int = 2,
    nuisance: int = 4,
    n_classes: int = 2,
    noise: float = 0.5,
    label_noise: float = 0.05,
    mix: bool = True,
    random_state=0,
    task_seed: int | None = None,
) -> MultiView:
    """n samples of the two-modality task; views "teacher" and "student".

    task_seed fixes the label weights and the rotations (the task) separately from the samples
    (random_state); None uses random_state for both.
    """
    n = V.as_int(n, "n", 2)
    shared, nuisance = V.as_int(shared, "shared", 0), V.as_int(nuisance, "nuisance", 0)
    teacher_only, student_only = V.as_int(teacher_only, "teacher_only", 0), V.as_int(student_only, "student_only", 0)
    n_classes = V.as_int(n_classes, "n_classes", 2)
    if shared + teacher_only + student_only == 0:
        raise ValueError("at least one decisive coordinate is needed (shared + teacher_only + student_only >= 1)")
    if shared + teacher_only + nuisance == 0 or shared + student_only + nuisance == 0:
        raise ValueError("each modality must see at least one coordinate")
    V.as_real(noise, "noise", 0, low_open=True, reason=" (it keeps the input MI finite)")
    if not (isinstance(label_noise, (int, float)) and 0 <= label_noise <= 1):
        raise ValueError(f"label_noise must be a probability in [0, 1], got {label_noise!r}")
    rng, task_rng = np.random.default_rng(random_state).spawn(2)
    if task_seed is not None:
        task_rng = np.random.default_rng(task_seed)

    decisive = shared + teacher_only + student_only
    # Each decisive coordinate gets a centred unit vector of class weights: every one carries the
    # same weight in the label (for two classes exactly, +-(1, -1) / sqrt 2).
    weights = task_rng.standard_normal((decisive, n_classes))
    weights -= weights.mean(axis=1, keepdims=True)
    weights /= np.linalg.norm(weights, axis=1, keepdims=True)
    z = rng.standard_normal((n, decisive))
    u = rng.standard_normal((n, nuisance))
    labels = np.argmax(z @ weights, axis=1)
    flip = rng.random(n) < label_noise
    labels[flip] = rng.integers(0, n_classes, int(flip.sum()))

    z_shared = z[:, :shared]
    z_teacher = z[:, shared : shared + teacher_only]
    z_student = z[:, shared + teacher_only :]

    def modality(*blocks):
        x = np.hstack(blocks)
        x = x + noise * rng.standard_normal(x.shape)
        return x @ _rotation(x.shape[1], task_rng) if mix else x

    x_teacher = modality(z_shared, z_teacher, u)
    x_student = modality(z_shared, z_student, u)
    r = 1.0 / (1.0 + noise * noise)
    mi_inputs = (shared + nuisance) * (-0.5 * math.log1p(-r * r))
    config = dict(shared=shared, teacher_only=teacher_only, student_only=student_only, nuisance=nuisance,
                  n_classes=n_classes, noise=noise, label_noise=label_noise, mix=mix)
    return MultiView(
        name="mfh",
        views={"teacher": x_teacher, "student": x_student},
        labels=labels.astype(np.int64),
        description=(f"synthetic MFH task: {shared} shared, {teacher_only} teacher-only, {student_only} student-only "
                     f"decisive coordinates, {nuisance} nuisance, noise {noise}, label noise {label_noise}"),
        extra={"mi_inputs": mi_inputs, "config": config},
    )
