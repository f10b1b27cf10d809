"""Results serialise to strict JSON and load back as the same type (cchmi.results)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cchmi
from cchmi.results import MIResult, PermutationResult, load_result


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
