"""cchmi.plot.plot_cch draws a user's own cch / rank_teachers results."""

from __future__ import annotations

import numpy as np
import pytest

import cchmi
from cchmi.plot import plot_cch

pytest.importorskip("matplotlib")


def _data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((n, 2))
    y = (s[:, 0] > 0).astype(int)
    return {"near": s + 0.3 * rng.standard_normal((n, 2)), "far": rng.standard_normal((n, 2))}, s, y


def test_plot_of_a_ranking_has_a_row_per_teacher_in_rank_order(tmp_path):
    teachers, s, y = _data()
    ranking = cchmi.rank_teachers(teachers, s, y)
    ax = plot_cch(ranking, path=tmp_path / "cch.png")
    assert (tmp_path / "cch.png").stat().st_size > 1000
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [name for name, _ in reversed(ranking.rows)]
    gaps = sorted(abs(p.get_width()) for p in ax.patches)
    assert gaps == sorted(abs(r.gap) for _, r in ranking.rows)


def test_plot_of_one_result_and_of_a_mapping():
    teachers, s, y = _data()
    r = cchmi.cch(teachers["near"], s, y)
    assert len(plot_cch(r).patches) == 1
    assert len(plot_cch({"a": r, "b": r}).patches) == 2


def test_results_in_different_units_are_refused():
    teachers, s, y = _data()
    nats, bits = cchmi.cch(teachers["near"], s, y), cchmi.cch(teachers["far"], s, y, base=2)
    with pytest.raises(ValueError, match="different units"):
        plot_cch({"a": nats, "b": bits})


@pytest.mark.parametrize("bad, err", [({}, ValueError), (3.0, TypeError)])
def test_bad_input_is_refused(bad, err):
    with pytest.raises(err, match="results"):
        plot_cch(bad)
