"""A synthetic two-modality classification task in the spirit of the Modality Focusing Hypothesis
experiments (Xue et al., ICLR 2023), with the input-level MI known exactly and, for two classes, the
Bayes accuracies and the label and Bayes-logit MIs known in closed form.

Generative model. Latent coordinates, all independent N(0, 1):

* D decisive coordinates z, which define the label: ``shared`` of them are seen by both modalities,
  ``teacher_only`` by the teacher's, ``student_only`` by the student's (z's columns in that order);
* ``nuisance`` coordinates u seen by both modalities and unrelated to the label.

Each modality copies the coordinates it sees and adds independent Gaussian noise to every copy (s.d.
``teacher_noise`` on the teacher's copies, ``noise`` on the student's; so the input-level MI stays
finite), then (``mix=True``) mixes its own coordinates with a random rotation, which changes no MI.
Before mixing, the teacher's columns are [shared, teacher_only, nuisance] and the student's
[shared, student_only, nuisance]. The label is the argmax of ``n_classes`` linear scores z @ W, W
(D, n_classes) holding one centred unit vector of class weights per coordinate (every coordinate
carries the same weight; for two classes exactly +-(1, -1) / sqrt 2, so the label is the sign of
sum_i s_i z_i with s_i = +-1); with probability ``label_noise`` it is replaced by a uniformly drawn
class.

Known, with m_T = shared + teacher_only and m_S = shared + student_only the decisive coordinates a
modality sees, and r_T = 1 / (1 + teacher_noise^2), r_S = 1 / (1 + noise^2):

* I(X_T; X_S) = (shared + nuisance) * (-1/2 log(1 - r_T r_S)): each shared or nuisance coordinate
  gives a pair of copies with correlation sqrt(r_T r_S), and nothing else is common (``mi_inputs``).

For two classes (p = label_noise):

* a modality's posterior P(Y | X) depends on X only through a = sum over its decisive copies of
  s_i x_i, Gaussian with corr(a, sum_i s_i z_i) = rho, rho^2 = m r / D; the Bayes rule is sign(a)
  and its accuracy (1 - p) (1/2 + arcsin(rho) / pi) + p / 2 (Sheppard's formula;
  ``teacher_bayes_accuracy``, ``student_bayes_accuracy``);
* I(X; Y) = log 2 - E_g[h((1 - p) Phi(kappa g) + p / 2)], g ~ N(0, 1), kappa = rho / sqrt(1 - rho^2),
  h the binary entropy, by quadrature (``mi_teacher_label``, ``mi_student_label``); the Bayes logit
  log P(Y=0|X) / P(Y=1|X) is an increasing function of a, so these are also the label MIs of the
  Bayes-optimal logits;
* the two Bayes logits T*, S* are increasing functions of the jointly Gaussian a_T, a_S, whose
  correlation is c = shared / sqrt(m_T (1 + teacher_noise^2) m_S (1 + noise^2)):
  I(T*; S*) = -1/2 log(1 - c^2) (``mi_bayes_logits``); with I(S*; Y) this is the CCH comparison for
  ideal representations.

Holding the teacher fixed while the shared fraction varies: with ``teacher_decisive`` (m_T) and
``shared_fraction`` (shared = fraction * m_T, teacher_only = the rest), a fixed student_only, nuisance
and teacher_noise, the teacher's view and the labels do not depend on the fraction at all: z has the
same D columns, the teacher copies the same first m_T of them, and, for the same random_state and
task_seed, its view and the labels are the same arrays. ``teacher_accuracy`` (two classes) sets
teacher_noise from the closed form above so that the teacher's Bayes accuracy is that number whatever
the other parameters (student_only, label_noise) are.
"""

from __future__ import annotations

import math

import numpy as np

from cchmi import _validate as V
from cchmi.data.multiview import MultiView

DEFAULT_SHARED, DEFAULT_TEACHER_ONLY = 4, 2
QUADRATURE_POINTS = 2_001


def _rotation(d: int, rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _binary_args(seen, decisive, noise, label_noise) -> tuple[int, int, float, float]:
    decisive = V.as_int(decisive, "decisive", 1)
    seen = V.as_int(seen, "seen", 0, decisive, " (the decisive coordinates a modality sees)")
    noise = V.as_real(noise, "noise", 0)
    label_noise = V.as_real(label_noise, "label_noise", 0, 1, reason=" (a probability)")
    return seen, decisive, noise, label_noise


def _binary_entropy(q: np.ndarray) -> np.ndarray:
    q = np.clip(q, 1e-300, 1.0)
    rest = np.clip(1.0 - q, 1e-300, 1.0)
    return -(q * np.log(q) + rest * np.log(rest))


def binary_bayes_accuracy(seen: int, decisive: int, noise: float, label_noise: float) -> float:
    """Bayes accuracy of a modality that sees `seen` of the `decisive` coordinates of the two-class
    task through copy noise of s.d. `noise` (>= 0), on labels with `label_noise` (module docstring)."""
    seen, decisive, noise, label_noise = _binary_args(seen, decisive, noise, label_noise)
    rho = math.sqrt(seen / (decisive * (1.0 + noise * noise)))
    return (1.0 - label_noise) * (0.5 + math.asin(rho) / math.pi) + label_noise / 2.0


def binary_label_mi(seen: int, decisive: int, noise: float, label_noise: float) -> float:
    """I(X; Y) in nats for the modality of :func:`binary_bayes_accuracy`: log 2 minus the mean binary
    entropy of the posterior (1 - p) Phi(kappa g) + p / 2 over g ~ N(0, 1), by Simpson's rule on
    |g| (absolute error < 1e-12 against a 100x finer grid)."""
    seen, decisive, noise, label_noise = _binary_args(seen, decisive, noise, label_noise)
    limit = float(_binary_entropy(np.array(1.0 - label_noise / 2.0)))  # of the posterior as |g| -> inf
    if seen == 0:
        return 0.0
    hidden = (decisive - seen) + decisive * noise * noise  # kappa^2 = rho^2 / (1 - rho^2) = seen / hidden
    if hidden == 0.0:  # the label (before label noise) is a function of X
        return math.log(2.0) - limit
    kappa = math.sqrt(seen / hidden)
    # Past |g| = 9 / kappa the posterior is within Phi(-9) ~ 1e-19 of its limit: integrate the varying
    # part on a grid scaled to it, and the constant tail in closed form.
    top = min(9.0 / kappa, 12.0)
    g = np.linspace(0.0, top, QUADRATURE_POINTS)
    phi = 0.5 * np.array([math.erfc(-v / math.sqrt(2.0)) for v in kappa * g])  # NumPy has no erf
    f = _binary_entropy((1.0 - label_noise) * phi + label_noise / 2.0) * np.exp(-0.5 * g * g) * math.sqrt(2 / math.pi)
    body = (g[1] - g[0]) / 3.0 * (f[0] + f[-1] + 4.0 * f[1:-1:2].sum() + 2.0 * f[2:-1:2].sum())
    return math.log(2.0) - float(body) - limit * math.erfc(top / math.sqrt(2.0))


def _teacher_noise_for(accuracy: float, seen: int, decisive: int, label_noise: float) -> float:
    """The teacher copy noise whose two-class Bayes accuracy is `accuracy` (the inverse of
    :func:`binary_bayes_accuracy` in the noise), or a ValueError giving the achievable range."""
    best = (1.0 - label_noise) * (0.5 + math.asin(math.sqrt(seen / decisive)) / math.pi) + label_noise / 2.0
    if not 0.5 < accuracy < best:
        raise ValueError(
            f"teacher_accuracy must be in (0.5, {best:.6g}) here: a teacher seeing {seen} of the {decisive} "
            f"decisive coordinates with label_noise {label_noise:g} reaches {best:.6g} without copy noise; "
            f"got {accuracy!r}")
    clean = (accuracy - label_noise / 2.0) / (1.0 - label_noise)
    rho = math.sin(math.pi * (clean - 0.5))
    return math.sqrt(seen / (decisive * rho * rho) - 1.0)


def _layout(shared, teacher_only, teacher_decisive, shared_fraction) -> tuple[int, int]:
    """(shared, teacher_only) from either those two or (teacher_decisive, shared_fraction)."""
    if (teacher_decisive is None) != (shared_fraction is None):
        raise ValueError("teacher_decisive and shared_fraction go together: give both or neither")
    if teacher_decisive is None:
        shared = DEFAULT_SHARED if shared is None else V.as_int(shared, "shared", 0)
        teacher_only = DEFAULT_TEACHER_ONLY if teacher_only is None else V.as_int(teacher_only, "teacher_only", 0)
        return shared, teacher_only
    if shared is not None or teacher_only is not None:
        raise ValueError("give either shared and teacher_only, or teacher_decisive and shared_fraction, not both")
    m = V.as_int(teacher_decisive, "teacher_decisive", 1)
    fraction = V.as_real(shared_fraction, "shared_fraction", 0, 1)
    shared = round(fraction * m)
    if abs(fraction * m - shared) > 1e-9:
        raise ValueError(f"shared_fraction * teacher_decisive must be a whole number of coordinates, got "
                         f"{fraction!r} * {m}; with teacher_decisive={m} use a multiple of 1/{m}")
    return shared, m - shared


def mfh_classification(
    n: int,
    *,
    shared: int | None = None,
    teacher_only: int | None = None,
    student_only: int = 2,
    nuisance: int = 4,
    n_classes: int = 2,
    noise: float = 0.5,
    label_noise: float = 0.05,
    mix: bool = True,
    teacher_decisive: int | None = None,
    shared_fraction: float | None = None,
    teacher_noise: float | None = None,
    teacher_accuracy: float | None = None,
    random_state=0,
    task_seed: int | None = None,
) -> MultiView:
    """n samples of the two-modality task (module docstring); views "teacher" and "student".

    The teacher's decisive coordinates: ``shared`` and ``teacher_only`` (None: 4 and 2), or
    ``teacher_decisive`` of them of which the fraction ``shared_fraction`` is shared (fraction *
    teacher_decisive must be a whole number). Copy noise: ``noise`` (s.d.) on the student's copies,
    ``teacher_noise`` on the teacher's (None: ``noise``), or, for two classes, ``teacher_accuracy``: the
    teacher's Bayes accuracy, from which teacher_noise is derived (then teacher_noise must be None).

    task_seed fixes the label weights and the rotations (the task) separately from the samples
    (random_state); None uses random_state for both.

    ``extra`` holds ``mi_inputs`` (I(X_T; X_S), nats), ``config`` (every parameter as resolved,
    teacher_noise included) and ``weights`` (W); for two classes also ``teacher_bayes_accuracy``,
    ``student_bayes_accuracy``, ``mi_teacher_label``, ``mi_student_label`` and ``mi_bayes_logits``
    (nats), which are None for more classes (no closed form).
    """
    n = V.as_int(n, "n", 2)
    shared, teacher_only = _layout(shared, teacher_only, teacher_decisive, shared_fraction)
    nuisance = V.as_int(nuisance, "nuisance", 0)
    student_only = V.as_int(student_only, "student_only", 0)
    n_classes = V.as_int(n_classes, "n_classes", 2)
    if shared + teacher_only + student_only == 0:
        raise ValueError("at least one decisive coordinate is needed (shared + teacher_only + student_only >= 1)")
    if shared + teacher_only + nuisance == 0 or shared + student_only + nuisance == 0:
        raise ValueError("each modality must see at least one coordinate")
    noise = V.as_real(noise, "noise", 0, low_open=True, reason=" (it keeps the input MI finite)")
    label_noise = V.as_real(label_noise, "label_noise", 0, 1, reason=" (a probability)")
    decisive = shared + teacher_only + student_only
    seen_t, seen_s = shared + teacher_only, shared + student_only
    if teacher_accuracy is not None:
        if teacher_noise is not None:
            raise ValueError("give teacher_noise or teacher_accuracy, not both (the accuracy sets the noise)")
        if n_classes != 2:
            raise ValueError(f"teacher_accuracy needs n_classes=2 (the closed form), got n_classes={n_classes}")
        if seen_t == 0:
            raise ValueError("teacher_accuracy needs a teacher that sees a decisive coordinate "
                             "(shared + teacher_only >= 1)")
        target = V.as_real(teacher_accuracy, "teacher_accuracy", 0.5, 1, low_open=True, high_open=True)
        teacher_noise = _teacher_noise_for(target, seen_t, decisive, label_noise)
    elif teacher_noise is None:
        teacher_noise = noise
    else:
        teacher_noise = V.as_real(teacher_noise, "teacher_noise", 0, low_open=True,
                                  reason=" (it keeps the input MI finite)")
    rng, task_rng = np.random.default_rng(random_state).spawn(2)
    if task_seed is not None:
        task_rng = np.random.default_rng(task_seed)

    weights = task_rng.standard_normal((decisive, n_classes))
    weights -= weights.mean(axis=1, keepdims=True)
    weights /= np.linalg.norm(weights, axis=1, keepdims=True)
    z = rng.standard_normal((n, decisive))
    u = rng.standard_normal((n, nuisance))
    labels = np.argmax(z @ weights, axis=1)
    flip = rng.random(n) < label_noise
    labels[flip] = rng.integers(0, n_classes, int(flip.sum()))

    z_shared = z[:, :shared]
    z_teacher = z[:, shared:seen_t]
    z_student = z[:, seen_t:]

    def modality(sd, *blocks):
        x = np.hstack(blocks)
        x = x + sd * rng.standard_normal(x.shape)
        return x @ _rotation(x.shape[1], task_rng) if mix else x

    x_teacher = modality(teacher_noise, z_shared, z_teacher, u)
    x_student = modality(noise, z_shared, z_student, u)
    r_t, r_s = 1.0 / (1.0 + teacher_noise**2), 1.0 / (1.0 + noise**2)
    known = dict.fromkeys(("teacher_bayes_accuracy", "student_bayes_accuracy", "mi_teacher_label",
                           "mi_student_label", "mi_bayes_logits"))
    if n_classes == 2:
        c2 = shared * shared * r_t * r_s / (seen_t * seen_s) if shared else 0.0
        known.update(
            teacher_bayes_accuracy=binary_bayes_accuracy(seen_t, decisive, teacher_noise, label_noise),
            student_bayes_accuracy=binary_bayes_accuracy(seen_s, decisive, noise, label_noise),
            mi_teacher_label=binary_label_mi(seen_t, decisive, teacher_noise, label_noise),
            mi_student_label=binary_label_mi(seen_s, decisive, noise, label_noise),
            mi_bayes_logits=-0.5 * math.log1p(-c2),
        )
    config = dict(shared=shared, teacher_only=teacher_only, student_only=student_only, nuisance=nuisance,
                  n_classes=n_classes, noise=noise, teacher_noise=teacher_noise, label_noise=label_noise, mix=mix)
    return MultiView(
        name="mfh",
        views={"teacher": x_teacher, "student": x_student},
        labels=labels.astype(np.int64),
        description=(f"synthetic MFH task: {shared} shared, {teacher_only} teacher-only, {student_only} student-only "
                     f"decisive coordinates, {nuisance} nuisance, noise {noise:g} (teacher {teacher_noise:.6g}), "
                     f"label noise {label_noise:g}"),
        extra={"mi_inputs": (shared + nuisance) * (-0.5 * math.log1p(-r_t * r_s)), "config": config,
               "weights": weights, **known},
    )
