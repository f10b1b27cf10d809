"""Results serialise to strict JSON and load back as the same type (cchmi.results)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import cchmi
from cchmi.estimators.extrapolate import ExtrapolatedMIResult, extrapolated_mi
from cchmi.estimators.options import KnnOptions
from cchmi.results import MIResult, PermutationResult, ResultIO, load_result


def test_mi_result_round_trip_through_text_dict_and_file(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 2))
    r = cchmi.ksg_mi(x, x[:, :1] + rng.standard_normal((400, 1)), confidence=0.9)
    text = r.to_json()
    assert json.loads(text)["result_type"] == "MIResult"
    assert load_result(text) == r
    assert load_result(json.loads(text)) == r
    r.save(tmp_path / "r.json")
    assert load_result(tmp_path / "r.json") == r
    assert load_result(str(tmp_path / "r.json")) == r
    assert MIResult.from_dict(r.as_dict()) == r


def test_array_fields_come_back_as_arrays():
    p = PermutationResult(estimate=0.1, p_value=0.5, null=np.array([0.0, 0.2]), n_permutations=2, n=10, k=3,
                          estimator="ksg1", backend="cpu", seconds=0.0)
    back = load_result(p.to_json())
    assert isinstance(back.null, np.ndarray) and back.null.tolist() == [0.0, 0.2]
    assert back.as_dict() == p.as_dict()


def test_non_finite_values_are_written_as_null():
    r = MIResult(estimate=0.5, n=10, k=3, estimator="ksg1", backend="cpu", seconds=float("nan"))
    assert json.loads(r.to_json())["seconds"] is None


@pytest.mark.parametrize("bad, match", [
    ({"estimate": 1.0}, "result_type"),
    ({"result_type": "Nope"}, "unknown result_type 'Nope'"),
    ({"result_type": "MIResult", "estimate": 1.0, "n": 1, "k": 1, "estimator": "e", "backend": "b", "seconds": 0,
      "extra": 1}, r"no fields \['extra'\]"),
])
def test_bad_input_is_refused_by_name(bad, match):
    with pytest.raises(ValueError, match=match):
        load_result(bad)


def _cch_inputs(n=600, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    student = labels[:, None] + rng.standard_normal((n, 2))
    return rng, student + rng.standard_normal((n, 2)), student, labels


def test_cch_result_as_dict_keeps_the_summary_json_shape():
    """trainer summary.json holds CCHResult.as_dict(): the fields in order, tuples as lists."""
    _, teacher, student, labels = _cch_inputs()
    r = cchmi.cch(teacher, student, labels, confidence=0.9)
    d = r.as_dict()
    assert list(d) == [f.name for f in dataclasses.fields(r)]
    assert d["dims"] == [2, 2] and d["representation"] == ["features", "features"]
    assert json.loads(json.dumps(d)) == d  # plain JSON values throughout


def test_cch_result_and_ranking_round_trip(tmp_path):
    rng, teacher, student, labels = _cch_inputs()
    r = cchmi.cch(teacher, student, labels, confidence=0.9)
    assert json.loads(r.to_json())["result_type"] == "CCHResult"
    assert load_result(r.to_json()) == r
    ranking = cchmi.rank_teachers({"a": teacher, "b": rng.standard_normal((600, 2))}, student, labels,
                                  confidence=None)
    ranking.save(tmp_path / "ranking.json")
    back = load_result(tmp_path / "ranking.json")
    assert isinstance(back, cchmi.TeacherRanking) and back == ranking and back.best == ranking.best
    assert isinstance(back.rows[0][1].dims, tuple)


def test_auto_and_extrapolated_results_round_trip():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1100, 3))
    y = x + rng.standard_normal((1100, 3))
    r = cchmi.mi(x, y)
    assert r.estimator == "ksg1-extrapolated" and r.choice_reason is not None
    back = load_result(r.to_json())
    assert type(back) is cchmi.AutoMIResult and back == r
    e = extrapolated_mi(x, y, KnnOptions())
    assert type(load_result(e.to_json())) is ExtrapolatedMIResult and load_result(e.to_json()) == e


@dataclasses.dataclass(frozen=True)
class Note:
    ok: bool
    reasons: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class WithNote(ResultIO):
    value: float
    note: Note | None = None


def test_nested_plain_dataclass_fields_come_back_as_their_type():
    """A field holding a plain frozen dataclass (e.g. a reliability record) is rebuilt as it."""
    r = WithNote(1.0, Note(False, ("a", "b")))
    assert r.as_dict() == {"value": 1.0, "note": {"ok": False, "reasons": ["a", "b"]}}
    assert load_result(r.to_json()) == r


def test_ranking_from_dict_refuses_other_keys():
    with pytest.raises(ValueError, match="exactly the key 'rows'"):
        cchmi.TeacherRanking.from_dict({"rows": [], "extra": 1})


def test_load_result_and_plot_cch_are_exported():
    assert cchmi.load_result is load_result
    from cchmi.plot import plot_cch

    assert cchmi.plot_cch is plot_cch
    assert {"load_result", "plot_cch"} <= set(cchmi.__all__)
