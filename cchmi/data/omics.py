"""TCGA adrenocortical carcinoma (ACC) omics as co-observed views: Bioconductor's ``miniACC``
MultiAssayExperiment, shipped in Debian's ``r-bioc-multiassayexperiment`` package, read without R.

The file is an R workspace (miniACC.RData) holding one S4 MultiAssayExperiment. ``rdata`` (PyPI) parses
it, but its conversion to Python objects (``rdata.conversion.convert``, rdata 1.1) stops at
"NotImplementedError: Type RObjectType.PROM not implemented": the assays of the four
SummarizedExperiments sit in reference-class objects (ShallowSimpleListAssays) saved with their
environments (the class definition, its methods and their enclosing environments), and one of those
holds an R promise (a lazily evaluated value), which rdata cannot convert. So this module walks the
parsed object tree itself (``rdata.parser.parse_file``) and reads only what it needs: the assay
matrices (from the environment binding ".->data", or the plain matrix of the Mutations assay), the
sampleMap (assay column -> patient) and the colData clinical table.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from cchmi import _validate as V
from cchmi._extras import require
from cchmi.data.multiview import MultiView

MINIACC_DEFAULT_ROOT = "/usr/lib/R/site-library/MultiAssayExperiment/data"
MINIACC_FILE = "miniACC.RData"
MINIACC_ASSAYS = ("RNASeq2GeneNorm", "gistict", "RPPAArray", "Mutations", "miRNASeqGene")
MINIACC_LOG_ASSAYS = ("RNASeq2GeneNorm", "miRNASeqGene")  # counts: log2(1 + x) with log_counts=True
MINIACC_LABELS = ("vital_status", "pathologic_stage", "stage_late")
MINIACC_CITATION = (
    "S. Zheng et al., 'Comprehensive Pan-Genomic Characterization of Adrenocortical Carcinoma', Cancer Cell "
    "29(5):723-736, 2016 (PMID 27165744), TCGA data; M. Ramos et al., 'Software for the Integration of "
    "Multiomics Experiments in Bioconductor', Cancer Research 77(21):e39-e42, 2017 (MultiAssayExperiment, "
    "miniACC)."
)
MINIACC_LICENCE = "Artistic-2.0 (MultiAssayExperiment package data); TCGA open-access data"
_NA_INT = -(2**31)  # R's NA_integer_
_STAGES = ("stage i", "stage ii", "stage iii", "stage iv")


def _deref(obj):
    while obj.info.type.name == "REF":
        obj = obj.referenced_object
    return obj


def _name(tag) -> str:
    value = _deref(tag).value
    value = getattr(value, "value", value)
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairlist(obj) -> dict:
    """The tagged entries of an R pairlist (attributes, environment frames) by name."""
    out = {}
    while obj is not None and obj.info.type.name == "LIST":
        out[_name(obj.tag)] = _deref(obj.value[0])
        obj = obj.value[1] if len(obj.value) > 1 else None
    return out


def _slot(obj, name: str, where: str):
    slots = _pairlist(_deref(obj).attributes)
    if name not in slots:
        raise ValueError(f"{where} has no slot/attribute {name!r} (it has {', '.join(slots)}): not a "
                         "MultiAssayExperiment as MultiAssayExperiment 1.24 saves it")
    return slots[name]


def _strings(obj) -> list:
    return [None if s.value is None else s.value.decode() for s in _deref(obj).value]


def _named_list(obj, where: str) -> dict:
    """An R list (VECSXP) with a names attribute, as {name: element}."""
    obj = _deref(obj)
    return dict(zip(_strings(_slot(obj, "names", where)), (_deref(v) for v in obj.value)))


def _matrix(obj, where: str) -> tuple[np.ndarray, list, list]:
    """A numeric R matrix as (rows x columns float64, NA as NaN; row names, column names); its dim
    attribute is checked against the number of values before the array is reshaped."""
    obj = _deref(obj)
    if obj.info.type.name not in ("REAL", "INT", "LGL"):
        raise ValueError(f"{where} is an R {obj.info.type.name}, not a numeric matrix")
    dim = [int(d) for d in _slot(obj, "dim", where).value]
    values = np.ma.filled(np.ma.asarray(obj.value, dtype=np.float64), np.nan)
    if len(dim) != 2 or values.size != dim[0] * dim[1]:
        raise ValueError(f"{where}: dim {dim} does not match its {values.size} values")
    rows, cols = (_strings(d) for d in _deref(_slot(obj, "dimnames", where)).value)
    return values.reshape(dim[1], dim[0]).T, rows, cols  # R stores column-major; NA is NaN


def _assay(experiment, name: str) -> tuple[np.ndarray, list, list]:
    """The first assay of a SummarizedExperiment (held in its ShallowSimpleListAssays environment), or
    the experiment itself when it is a plain matrix."""
    if experiment.info.type.name != "S4":
        return _matrix(experiment, name)
    env = _slot(_slot(experiment, "assays", name), ".xData", f"{name}@assays")
    frame = {}
    for bucket in _deref(env.value.hash_table).value:
        frame.update(_pairlist(_deref(bucket)))
    if ".->data" not in frame:
        raise ValueError(f"{name}@assays holds no '.->data' binding: not a ShallowSimpleListAssays")
    matrices = _deref(_slot(frame[".->data"], "listData", f"{name}@assays data")).value
    return _matrix(matrices[0], name)


@functools.lru_cache(maxsize=2)
def _read_cached(path: str, mtime_ns: int, size: int) -> dict:
    """:func:`read_miniacc` once per file version (a sweep loads the dataset for every run; parsing
    takes a second or two). Callers copy what they hand out."""
    return read_miniacc(path)


def read_miniacc(path) -> dict:
    """The parts of a saved MultiAssayExperiment (miniACC.RData) that :func:`load_miniacc` uses:
    {"assays": {name: (features x samples float64, feature names, sample names)},
    "sample_map": [(assay, patient, sample)], "clinical": {column: list of values (None for NA)},
    "patients": [patient id], "metadata": {name: value}}."""
    rdata = require("rdata", "data", "load_miniacc")
    tree = _deref(rdata.parser.parse_file(path).object)
    objects = _pairlist(tree)
    if len(objects) != 1:
        raise ValueError(f"{path}: expected one saved object, found {', '.join(objects) or 'none'}")
    mae = next(iter(objects.values()))
    experiments = _named_list(_slot(_slot(mae, "ExperimentList", "object"), "listData", "ExperimentList"),
                              "ExperimentList@listData")
    assays = {name: _assay(exp, name) for name, exp in experiments.items()}
    smap = _named_list(_slot(_slot(mae, "sampleMap", "object"), "listData", "sampleMap"), "sampleMap@listData")
    levels = _strings(_slot(smap["assay"], "levels", "sampleMap$assay"))
    sample_map = [(levels[int(a) - 1], p, c) for a, p, c in
                  zip(smap["assay"].value, _strings(smap["primary"]), _strings(smap["colname"]))]
    col_data = _slot(mae, "colData", "object")
    clinical = {}
    for column, values in _named_list(_slot(col_data, "listData", "colData"), "colData@listData").items():
        if values.info.type.name == "STR":
            clinical[column] = _strings(values)
        else:
            kind = int if values.info.type.name == "INT" else float
            na = np.ma.getmaskarray(values.value) | (np.ma.getdata(values.value) == _NA_INT)
            clinical[column] = [None if miss or (kind is float and not np.isfinite(v)) else kind(v)
                                for v, miss in zip(np.ma.getdata(values.value).tolist(), na)]
    metadata = {k: _strings(v)[0] for k, v in _named_list(_slot(mae, "metadata", "object"), "metadata").items()
                if v.info.type.name == "STR" and len(v.value) == 1}
    return {"assays": assays, "sample_map": sample_map, "clinical": clinical,
            "patients": _strings(_slot(col_data, "rownames", "colData")), "metadata": metadata}


def _label_values(clinical: dict, label: str) -> tuple[list, list]:
    """Per-patient class index (None where missing) and class names of a clinical label."""
    if label == "vital_status":
        return [None if v is None else int(v) for v in clinical["vital_status"]], ["alive", "deceased"]
    stages = [s if s in _STAGES else None for s in clinical["pathologic_stage"]]
    if label == "pathologic_stage":
        return [None if s is None else _STAGES.index(s) for s in stages], list(_STAGES)
    return [None if s is None else int(_STAGES.index(s) >= 2) for s in stages], ["stage i-ii", "stage iii-iv"]


def load_miniacc(root=None, *, assays=None, label: str = "vital_status", log_counts: bool = True) -> MultiView:
    """TCGA adrenocortical carcinoma (miniACC, 92 patients): omics assays of the same patients as views,
    a clinical label. Small (tens of patients): an exploratory dataset, to be used with many seeds.

    Views (assays; features as in miniACC, a subset chosen by its authors):
    RNASeq2GeneNorm (198 genes, RSEM-normalised RNA-seq; log2(1 + x) with log_counts), gistict (198
    genes, GISTIC copy-number calls -2..2), RPPAArray (33 proteins, reverse-phase protein array),
    Mutations (97 genes, 0/1 somatic mutation calls), miRNASeqGene (471 miRNAs, read counts;
    log2(1 + x) with log_counts). The patients are those with a sample in every chosen assay and a
    known label: with all five assays 43 (RPPA covers 46), without RPPAArray about 75.
    assays : names from :data:`MINIACC_ASSAYS` (None: all five).
    label : clinical, not derived from the omics: "vital_status" (0 alive, 1 deceased),
    "pathologic_stage" (stage i-iv as 0-3), "stage_late" (0: stage i-ii, 1: stage iii-iv).
    root : the folder holding miniACC.RData; None: $CCHMI_MINIACC, else the installed R package's
    /usr/lib/R/site-library/MultiAssayExperiment/data. Installing ``r-bioc-multiassayexperiment``
    pulls in R; unpacking its .deb alone is enough (``apt-get download r-bioc-multiassayexperiment``,
    ``dpkg -x <file>.deb <folder>``, root=<folder>/usr/lib/R/site-library/MultiAssayExperiment/data).
    A patient with more than one sample in an assay gets its first one in sampleMap order.

    ``extra``: patient ids, each view's feature names, the classes, and the source's metadata.
    """
    names = MINIACC_ASSAYS if assays is None else assays
    if isinstance(names, str) or not names or any(a not in MINIACC_ASSAYS for a in names) or \
            len(set(names)) != len(names):
        raise ValueError(f"assays must be a non-empty list of distinct names from {', '.join(MINIACC_ASSAYS)}; "
                         f"got {assays!r}")
    V.choice(label, "label", MINIACC_LABELS)
    folder = Path(root or os.environ.get("CCHMI_MINIACC") or MINIACC_DEFAULT_ROOT)
    path = folder / MINIACC_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"miniACC not found: no {MINIACC_FILE} in {folder}. It ships in Debian's r-bioc-multiassayexperiment: "
            "'sudo apt-get install r-bioc-multiassayexperiment' (pulls in R), or without R: 'apt-get download "
            "r-bioc-multiassayexperiment && dpkg -x r-bioc-multiassayexperiment_*.deb <folder>' and pass root= (or "
            "set CCHMI_MINIACC to) <folder>/usr/lib/R/site-library/MultiAssayExperiment/data"
        )
    stat = path.stat()
    data = _read_cached(str(path), stat.st_mtime_ns, stat.st_size)
    missing = [a for a in names if a not in data["assays"]]
    if missing:
        raise ValueError(f"{path} has no assay {', '.join(missing)} (it has {', '.join(data['assays'])})")
    label_of, classes = _label_values(data["clinical"], label)
    label_of = dict(zip(data["patients"], label_of))
    columns = {a: {} for a in names}
    for assay, patient, sample in data["sample_map"]:
        if assay in columns:
            columns[assay].setdefault(patient, sample)
    patients = [p for p in data["patients"] if label_of[p] is not None and all(p in columns[a] for a in names)]
    if len(patients) < 2:
        raise ValueError(f"only {len(patients)} patients have every assay of {list(names)} and a {label}")
    views, features = {}, {}
    for a in names:
        values, rows, cols = data["assays"][a]
        where = {c: j for j, c in enumerate(cols)}
        view = np.ascontiguousarray(values[:, [where[columns[a][p]] for p in patients]].T)
        views[a] = np.log2(1.0 + view) if log_counts and a in MINIACC_LOG_ASSAYS else view
        features[a] = list(rows)
    labels = np.asarray([label_of[p] for p in patients], dtype=np.int64)
    present = sorted(set(labels.tolist()))
    classes = [classes[c] for c in present]
    labels = np.searchsorted(present, labels)
    return MultiView(
        name="miniacc",
        views=views,
        labels=labels,
        description=(f"TCGA adrenocortical carcinoma (miniACC), {len(patients)} patients with {', '.join(names)}; "
                     f"label {label} ({', '.join(classes)}); small: exploratory"),
        citation=MINIACC_CITATION,
        licence=MINIACC_LICENCE,
        extra={"patients": patients, "features": features, "classes": classes, "label": label,
               "log_counts": log_counts, "metadata": dict(data["metadata"])},
    )
