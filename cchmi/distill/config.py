"""What defines one KD run, as one frozen :class:`KDConfig`, and the only copy of the KD rules.

A KDConfig composes the networks (:class:`TrainConfig`, the teacher's and the students'), the rows
(:class:`SplitConfig` fractions and a :class:`Budget`), how the KD targets are made
(:class:`KDOptions`: control, p, teacher_rows, crossfit_folds), the CCH estimate on the validation rows
(:class:`CCHSettings`), the views and the seed. It is built the same way from every source:
:meth:`KDConfig.from_keywords` (Python, the keyword form of :func:`cchmi.distill.run_kd`),
:meth:`KDConfig.from_sections` (the TOML sections of a sweep job, and the command line through it),
or the constructor. Making one checks it (:meth:`KDConfig.validated`, run at construction): a
KDConfig that exists obeys the rules, so it is checked once, where it is made.

Knobs with two spellings, and the one each is stored as:

* ``pairing='label'`` is ``control='label_pairing'`` and ``pairing='shuffled'`` (with p) is
  ``control='within_class_shuffle'``: both are accepted (not together); the canonical field is
  :attr:`KDOptions.control`, and :attr:`KDOptions.pairing` (what summaries record) is derived.
* teacher_rows, crossfit_folds and control may sit at the top level of a TOML config or in its
  ``[kd]`` table (not both); ``[kd]`` is canonical, and all three live in :class:`KDOptions`.
* ``train=`` (one TrainConfig for every network) or ``teacher_train=``/``student_train=``: a
  KDConfig always holds the two (train sets both).

No torch here: the sweep checks whole configs before any job runs, on machines without it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields

from cchmi import _validate as V
from cchmi.cch import ESTIMATORS as CCH_ESTIMATORS

PAIRINGS = ("aligned", "shuffled", "label")
TEACHER_ROWS = ("disjoint", "crossfit", "shared")
CONTROLS = ("label_pairing", "within_class_shuffle", "random_transfer_pairing", "same_modality_teacher",
            "transfer_labels", "transfer_within_class_shuffle")
# the controls that take a re-pairing probability p
P_CONTROLS = ("within_class_shuffle", "transfer_within_class_shuffle")
# the controls that act on the transfer set (refused by run_kd when it has no transfer rows)
TRANSFER_CONTROLS = ("random_transfer_pairing", "transfer_labels", "transfer_within_class_shuffle")
# pairing= names of the controls that re-pair the student's labelled rows within their class
PAIRING_CONTROLS = {"label": "label_pairing", "shuffled": "within_class_shuffle"}
DEFAULT_CROSSFIT_FOLDS = 5
CCH_REPRESENTATIONS = ("logits", "features")
# What a cch.sensitivity entry may name: an estimator of cchmi.cch, or "gaussian" (the Gaussian/CCA
# estimate of cchmi.estimators.gaussian.gaussian_cch).
SENSITIVITY_ESTIMATORS = (*CCH_ESTIMATORS, "gaussian")
# The regimes a run belongs to (KDConfig.regime).
REGIMES = ("primary", "transfer")
SOURCES = ("python", "toml")


@dataclass(frozen=True)
class TrainConfig:
    """One network and its optimisation (the teacher's or the students'), and the KD loss (read
    from the students' config).

    Length of training: ``epochs`` passes over the network's labelled rows, or, when ``steps`` is
    set, exactly ``steps`` optimiser steps (epochs is then ignored; the labelled rows are still
    visited in whole shuffled passes). A step takes ``batch_size`` labelled rows (all of them when
    there are fewer) and, for a KD student with a transfer set, ``batch_size`` transfer rows.
    The network is evaluated on the validation rows every ``eval_every`` steps, or once per pass
    over the labelled rows when eval_every is None (and after the last step); training stops
    after ``patience`` evaluations without a better validation accuracy, and the best evaluation's
    weights are kept. With 10 labels per class a pass is one or two steps, so state budgets there
    in steps.
    """

    model: str = "mlp"  # "mlp", "cnn" (image views only) or "auto" (cnn for image views, else mlp)
    hidden: int = 128
    depth: int = 2
    dropout: float = 0.1
    epochs: int = 60
    steps: int | None = None  # optimiser steps; overrides epochs when set
    eval_every: int | None = None  # steps between evaluations; None: one per pass over the labelled rows
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 15  # evaluations without a better validation accuracy before stopping
    ce_weight: float = 1.0
    kd_weight: float = 1.0
    temperature: float = 4.0
    feature_kd_weight: float = 0.0

    def __post_init__(self):
        for name in ("hidden", "depth", "epochs", "batch_size", "patience"):
            V.as_int(getattr(self, name), name, 1)
        for name in ("steps", "eval_every"):
            if getattr(self, name) is not None:
                V.as_int(getattr(self, name), name, 1)
        for name in ("lr", "weight_decay", "ce_weight", "kd_weight", "temperature", "feature_kd_weight", "dropout"):
            value = getattr(self, name)
            V.as_real(value, name, 0)
        for name in ("temperature", "lr"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.dropout >= 1:
            raise ValueError(f"dropout must be < 1, got {self.dropout}")
        V.choice(self.model, "model", ("mlp", "cnn", "auto"))

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """A TrainConfig from a table of its fields; unknown keys are refused by name."""
        return cls(**_known(cls, values, "training"))


# KD loss fields: meaningless for the teacher, which trains without KD.
KD_LOSS_FIELDS = ("ce_weight", "kd_weight", "temperature", "feature_kd_weight")


@dataclass(frozen=True)
class SplitConfig:
    """Fractions of all samples (per class): validation and test; teacher (rows only the teacher
    trains on); unlabelled (a transfer set: rows whose labels the student does not see; they enter
    the KD term only). The :class:`Budget` (rows per class, transfer rows) replaces the teacher and
    unlabelled fractions."""

    val: float = 0.2
    test: float = 0.3
    teacher: float = 0.0
    unlabelled: float = 0.0

    def __post_init__(self):
        for name in ("val", "test", "teacher", "unlabelled"):
            value = getattr(self, name)
            V.as_real(value, f"split fraction {name}", 0, 1, high_open=True)
        for name in ("val", "test"):
            if getattr(self, name) <= 0:
                raise ValueError(f"split fraction {name} must be > 0 (it holds held-out rows), "
                                 f"got {getattr(self, name)}")
        # No percentage floor (small label budgets are the point of some sweeps); the rows left for
        # training are checked per class when the split is drawn. Compared with a tolerance: .1 +
        # .2 + .3 + .3 is 0.9000000000000001 in floating point.
        total = self.val + self.test + self.teacher + self.unlabelled
        if total > 1 - 1e-9:
            raise ValueError(f"split fractions val + test + teacher + unlabelled sum to {total:.6g}: they must leave "
                             "rows for training (a sum below 1)")

    @classmethod
    def from_dict(cls, values: dict) -> "SplitConfig":
        """A SplitConfig from a table of its fields; unknown keys are refused by name."""
        return cls(**_known(cls, values, "split"))


@dataclass(frozen=True)
class Budget:
    """Exact row budgets (None: not given, the split fractions decide): the student's labelled rows
    and the teacher's own rows per class, and the transfer set's size (rows of any class)."""

    student_labels_per_class: int | None = None
    teacher_labels_per_class: int | None = None
    transfer_size: int | None = None

    def __post_init__(self):
        for name, low in (("student_labels_per_class", 1), ("teacher_labels_per_class", 1), ("transfer_size", 0)):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, V.as_int(getattr(self, name), name, low))

    @classmethod
    def from_dict(cls, values: dict) -> "Budget":
        """A Budget from a table of its fields; unknown keys are refused by name."""
        return cls(**_known(cls, values, "budget", sort=False))

    def as_dict(self) -> dict:
        """The three budgets by name, None where not given (the summary's "budget")."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class KDOptions:
    """How the KD targets are made (checked with the rest in :meth:`KDConfig.validated`).

    control: None (aligned pairs) or one of :data:`CONTROLS` (canonical; ``pairing=`` is its alias,
    see :meth:`from_pairing`). p: the re-pairing probability of "within_class_shuffle" (the
    student's labelled rows) or "transfer_within_class_shuffle" (the transfer rows) (the public
    name ``p`` is kept: summaries and job keys hold it), else 0. teacher_rows: "disjoint",
    "crossfit" or "shared". crossfit_folds: folds of "crossfit" (None there: 5), else None."""

    control: str | None = None
    p: float = 0.0
    teacher_rows: str = "disjoint"
    crossfit_folds: int | None = None

    @property
    def pairing(self) -> str:
        """How the student's labelled rows are paired: "aligned", "label" or "shuffled" (the
        summary's pairing: the alias of the label controls)."""
        return {"label_pairing": "label", "within_class_shuffle": "shuffled"}.get(self.control, "aligned")

    @classmethod
    def from_pairing(cls, pairing: str = "aligned", control: str | None = None, *, source: str = "python",
                     **options) -> "KDOptions":
        """KDOptions with `pairing` (an alias, see the module's docstring) turned into its control;
        pairing other than "aligned" together with a control is refused."""
        V.choice(pairing, "pairing", PAIRINGS)
        if control is not None and pairing != "aligned":
            toml = source == "toml"
            raise ValueError(f"give {_setting('pairing', pairing, toml)} or {_setting('control', control, toml)}, "
                             "not both (pairing 'label' is control 'label_pairing', 'shuffled' is "
                             "'within_class_shuffle')")
        return cls(control=PAIRING_CONTROLS.get(pairing) if control is None else control, **options)


@dataclass(frozen=True)
class CCHSettings:
    """The CCH and gap predictors on the validation rows: the representation ("logits", or
    "features" with pca for wide layers), k neighbours, pca components (None: none),
    :func:`cchmi.cch`'s estimator ("auto": KSG below 1024 rows, the extrapolated KSG from there)
    and the sensitivity set: estimator names (:data:`SENSITIVITY_ESTIMATORS`, each at most once),
    each giving the predictor "cch_gap_logits@<estimator>" (the logits' CCH gap by that
    estimator; "gaussian": the Gaussian/CCA estimate, no interval)."""

    representation: str = "logits"
    k: int = 3
    pca: int | None = None
    estimator: str = "auto"
    sensitivity: tuple[str, ...] = ()


@dataclass(frozen=True)
class KDConfig:
    """One KD run: teacher and student views, seed, the networks, the rows, the KD options, the CCH
    options, and whether to compute the predictors beyond teacher accuracy.

    Checked at construction by :meth:`validated`; crossfit_folds left None under teacher_rows
    "crossfit" becomes 5 and p a float. `source` ("python" or "toml", not compared) only spells the
    settings in error messages as the user wrote them (``key=value`` or ``key = value``)."""

    teacher_view: str
    student_view: str
    seed: int = 0
    teacher_train: TrainConfig = field(default_factory=TrainConfig)
    student_train: TrainConfig = field(default_factory=TrainConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    budget: Budget = field(default_factory=Budget)
    kd: KDOptions = field(default_factory=KDOptions)
    cch: CCHSettings = field(default_factory=CCHSettings)
    predictors: bool = True
    source: str = field(default="python", compare=False, repr=False)

    def __post_init__(self):
        self.validated()

    def validated(self) -> "KDConfig":
        """The KD rules, the only copy (ValueError/TypeError naming the option); returns self.
        Where a rule fixes a value (crossfit_folds' default, p as a float, the seed as an int) the
        field is set here."""
        V.choice(self.source, "source", SOURCES)
        toml = self.source == "toml"
        for name in ("teacher_view", "student_view"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a view name, got {getattr(self, name)!r}")
        object.__setattr__(self, "seed", V.as_int(self.seed, "seed", 0))
        for name, kind in (("teacher_train", TrainConfig), ("student_train", TrainConfig), ("split", SplitConfig),
                           ("budget", Budget), ("kd", KDOptions), ("cch", CCHSettings)):
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"{name} must be a {kind.__name__}, got {type(getattr(self, name)).__name__}")
        if not isinstance(self.predictors, bool):
            raise TypeError(f"predictors must be True or False, got {self.predictors!r}")
        object.__setattr__(self, "kd", _checked_kd(self.kd, self.student_train, toml))
        check_rows(self.split, self.budget, self.kd.teacher_rows, toml)
        object.__setattr__(self, "cch", _check_cch(self.cch, toml))
        return self

    @property
    def pairing(self) -> str:
        """The summary's pairing (see :attr:`KDOptions.pairing`)."""
        return self.kd.pairing

    @property
    def regime(self) -> str:
        """The summary's regime: "primary" (the paper's: teacher and student train on the same
        labelled rows, teacher_rows "crossfit" so that no KD target comes from a model that saw
        its row, no rows of the teacher's own and no transfer rows: no teacher_labels_per_class
        or split fraction teacher, transfer_size 0 or unset and no split fraction unlabelled),
        else "transfer" (the teacher has rows of its own or the KD student sees transfer rows)."""
        primary = (self.kd.teacher_rows == "crossfit" and self.budget.teacher_labels_per_class is None
                   and self.split.teacher == 0 and not self.budget.transfer_size and self.split.unlabelled == 0)
        return "primary" if primary else "transfer"

    @classmethod
    def from_keywords(cls, teacher_view: str, student_view: str, *, pairing: str = "aligned", p: float = 0.0,
                      control: str | None = None, train: TrainConfig | None = None,
                      teacher_train: TrainConfig | None = None, student_train: TrainConfig | None = None,
                      split: SplitConfig | None = None, student_labels_per_class: int | None = None,
                      teacher_labels_per_class: int | None = None, transfer_size: int | None = None,
                      teacher_rows: str = "disjoint", crossfit_folds: int | None = None, seed: int = 0,
                      cch_representation: str = "logits", cch_k: int = 3, cch_pca: int | None = None,
                      cch_estimator: str = "auto", cch_sensitivity: tuple[str, ...] = (),
                      predictors: bool = True) -> "KDConfig":
        """The KDConfig of :func:`cchmi.distill.run_kd`'s keyword form (the options documented
        there); ``train`` sets both networks and is refused together with teacher_train or
        student_train."""
        if train is not None and (teacher_train is not None or student_train is not None):
            raise ValueError("give train (the same config for teacher and students) or teacher_train/student_train, "
                             "not both")
        kd = KDOptions.from_pairing(pairing, control, p=p, teacher_rows=teacher_rows, crossfit_folds=crossfit_folds)
        return cls(teacher_view, student_view, seed=seed,
                   teacher_train=_or_default(teacher_train if train is None else train),
                   student_train=_or_default(student_train if train is None else train),
                   split=SplitConfig() if split is None else split,
                   budget=Budget(student_labels_per_class, teacher_labels_per_class, transfer_size), kd=kd,
                   cch=CCHSettings(cch_representation, cch_k, cch_pca, cch_estimator, cch_sensitivity),
                   predictors=predictors)

    def keywords(self) -> dict:
        """The keyword form of this config: the options that differ from run_kd's defaults, and
        ``train`` when both networks share one config (else teacher_train and student_train), so
        that ``KDConfig.from_keywords(teacher_view, student_view, **config.keywords())`` is this
        config again."""
        values = {"control": self.kd.control, "p": self.kd.p, "teacher_rows": self.kd.teacher_rows,
                  "crossfit_folds": self.kd.crossfit_folds, "split": self.split, **self.budget.as_dict(),
                  "seed": self.seed, "predictors": self.predictors,
                  **{f"cch_{f.name}": getattr(self.cch, f.name) for f in fields(CCHSettings)}}
        if self.kd.teacher_rows == "crossfit" and self.kd.crossfit_folds == DEFAULT_CROSSFIT_FOLDS:
            values["crossfit_folds"] = None
        defaults = {name: parameter.default for name, parameter in _FROM_KEYWORDS.parameters.items()}
        defaults["split"] = SplitConfig()
        out = {"train": self.student_train} if self.teacher_train == self.student_train else {
            "teacher_train": self.teacher_train, "student_train": self.student_train}
        out.update({name: value for name, value in values.items() if value != defaults[name]})
        return out

    @classmethod
    def from_sections(cls, teacher_view: str, student_view: str, seed: int, *, pairing: str = "aligned",
                      p: float = 0.0, train: dict | None = None, teacher: dict | None = None,
                      student: dict | None = None, split: dict | None = None, budget: dict | None = None,
                      kd: dict | None = None, cch: dict | None = None) -> "KDConfig":
        """The KDConfig of a sweep job, from its TOML tables (plain dicts): [train] under [teacher]
        and [student] (each a TrainConfig over [train]; [teacher] refuses the KD loss fields),
        [split], [budget], [kd] (teacher_rows, crossfit_folds, control: None for none) and [cch]
        (representation, k, pca, estimator, sensitivity); pairing and p from the top level or the sweep point.
        Errors name the table."""
        train, teacher, student = train or {}, teacher or {}, student or {}
        misplaced = sorted(set(teacher) & set(KD_LOSS_FIELDS))
        if misplaced:
            raise ValueError(f"teacher.{misplaced[0]} has no effect (the teacher trains without KD): set it in "
                             "[student] or [train]")
        networks = {}
        for name, values in (("train", train), ("teacher", {**train, **teacher}), ("student", {**train, **student})):
            networks[name] = _in_table(name, TrainConfig.from_dict, values)
        kd_options = KDOptions.from_pairing(pairing, source="toml", p=p, **_known_keys(kd or {}, KD_KEYS, "kd", False))
        return cls(teacher_view, student_view, seed=seed, teacher_train=networks["teacher"],
                   student_train=networks["student"], split=_in_table("split", SplitConfig.from_dict, split or {}),
                   budget=_in_table("budget", Budget.from_dict, budget or {}), kd=kd_options,
                   cch=_known_cch(cch or {}), source="toml")


_FROM_KEYWORDS = inspect.signature(KDConfig.from_keywords)
KD_KEYS = ("teacher_rows", "crossfit_folds", "control")  # the [kd] table's keys
CCH_KEYS = ("representation", "k", "pca", "estimator", "sensitivity")  # the [cch] table's keys


def _setting(name: str, value, toml: bool) -> str:
    """A setting as the user wrote it: key=value (Python) or key = value (TOML)."""
    return f"{name} = {value!r}" if toml else f"{name}={value!r}"


def _known(cls, values: dict, what: str, sort: bool = True) -> dict:
    """`values` if each is a field of `cls`, else a ValueError naming the unknown ones and the known."""
    return _known_keys(values, [f.name for f in fields(cls)], what, sort)


def _known_keys(values: dict, known, what: str, sort: bool = True) -> dict:
    unknown = sorted(set(values) - set(known))
    if unknown:
        listed = sorted(known) if sort else list(known)
        raise ValueError(f"unknown {what} option(s) {', '.join(unknown)}; known: {', '.join(listed)}")
    return values


def _in_table(table: str, make, values: dict):
    """make(values), its errors prefixed with the TOML table they come from."""
    try:
        return make(values)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"[{table}] {exc}") from None


def _or_default(config):
    return TrainConfig() if config is None else config


def _checked_kd(kd: KDOptions, student: TrainConfig, toml: bool) -> KDOptions:
    """The KD options' rules: control, p only with the within-class shuffle, teacher_rows,
    crossfit_folds only with (and >= 2 under) teacher_rows "crossfit", no feature KD with it.
    Returns the options with crossfit_folds' default filled in and p as a float."""
    if kd.control is not None:
        if kd.control not in CONTROLS:
            none = " or 'none'" if toml else ""
            raise ValueError(f"control must be one of {', '.join(map(repr, CONTROLS))}{none}; got {kd.control!r}")
    p = V.as_real(kd.p, "pairing probability p", 0, 1)
    if p != 0 and kd.control not in P_CONTROLS:
        raise ValueError(f"p (here {p:g}) is the re-pairing probability of {_setting('pairing', 'shuffled', toml)} / "
                         f"{_setting('control', 'within_class_shuffle', toml)} and of "
                         f"{_setting('control', 'transfer_within_class_shuffle', toml)} only")
    V.choice(kd.teacher_rows, "teacher_rows", TEACHER_ROWS)
    folds = None if kd.crossfit_folds is None else V.as_int(kd.crossfit_folds, "crossfit_folds", 2)
    if kd.teacher_rows == "crossfit":
        folds = DEFAULT_CROSSFIT_FOLDS if folds is None else folds
        if student.feature_kd_weight > 0:
            crossfit, disjoint = (_setting("teacher_rows", rows, toml) for rows in ("crossfit", "disjoint"))
            raise ValueError(f"feature KD needs one teacher feature space; {crossfit} scores rows with several fold "
                             f"models: use {disjoint} or {_setting('feature_kd_weight', 0, toml)}")
    elif folds is not None:
        raise ValueError(f"crossfit_folds applies to {_setting('teacher_rows', 'crossfit', toml)} only "
                         f"({_setting('teacher_rows', kd.teacher_rows, toml)})")
    return KDOptions(kd.control, p, kd.teacher_rows, folds)


def check_rows(split: SplitConfig, budget: Budget, teacher_rows: str, toml: bool = False) -> None:
    """The rules of the rows: a budget replaces a split fraction (teacher rows, transfer set), never
    both; teacher_rows "shared" takes no teacher rows of its own (ValueError naming the settings)."""
    V.choice(teacher_rows, "teacher_rows", TEACHER_ROWS)
    if budget.teacher_labels_per_class is not None and split.teacher > 0:
        raise ValueError("give teacher_labels_per_class or the split fraction teacher, not both")
    if budget.transfer_size is not None and split.unlabelled > 0:
        raise ValueError("give transfer_size or the split fraction unlabelled, not both")
    if teacher_rows == "shared" and (budget.teacher_labels_per_class is not None or split.teacher > 0):
        raise ValueError(f"{_setting('teacher_rows', 'shared', toml)} trains the teacher on the student's labelled "
                         "rows: leave teacher_labels_per_class and the split fraction teacher unset")


def _check_cch(cch: CCHSettings, toml: bool) -> CCHSettings:
    """The CCH options, named as the source spells them (cch_k or cch.k); returns them with the
    sensitivity set as a tuple (a TOML array arrives as a list)."""
    def name(key):
        return f"cch.{key}" if toml else f"cch_{key}"

    V.choice(cch.representation, name("representation"), CCH_REPRESENTATIONS)
    V.as_int(cch.k, name("k"), 1)
    if cch.pca is not None:
        V.as_int(cch.pca, name("pca"), 1)
    V.choice(cch.estimator, name("estimator"), CCH_ESTIMATORS)
    if isinstance(cch.sensitivity, str) or not isinstance(cch.sensitivity, (list, tuple)):
        raise TypeError(f"{name('sensitivity')} must be a list of estimator names (of "
                        f"{', '.join(map(repr, SENSITIVITY_ESTIMATORS))}), got {cch.sensitivity!r}")
    for item in cch.sensitivity:
        V.choice(item, name("sensitivity") + " entry", SENSITIVITY_ESTIMATORS)
    repeated = sorted({item for item in cch.sensitivity if list(cch.sensitivity).count(item) > 1})
    if repeated:
        raise ValueError(f"{name('sensitivity')} names {', '.join(map(repr, repeated))} more than once")
    return CCHSettings(cch.representation, cch.k, cch.pca, cch.estimator, tuple(cch.sensitivity))


def _known_cch(values: dict) -> CCHSettings:
    """CCHSettings from a [cch] table (unknown keys refused)."""
    return CCHSettings(**_known_keys(values, CCH_KEYS, "cch"))
