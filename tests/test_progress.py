"""progress=True on the calls that take seconds (issue 27): cchmi.mi, cch and rank_teachers draw a
bar on stderr per stage ("extrapolation levels", "half-samples", "teachers"), the outermost stage
only; off by default (the library prints nothing unless asked)."""

from __future__ import annotations

import numpy as np
import pytest

import cchmi
from cchmi._progress import Progress, reporting, stages


def _sample(n=1100, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    student = labels[:, None] + rng.standard_normal((n, 2))
    return student + rng.standard_normal((n, 2)), student, labels


def test_cch_reports_extrapolation_levels_and_half_samples(capsys):
    t, s, y = _sample()
    r = cchmi.cch(t, s, y, estimator="ksg-extrapolated", n_subsamples=4, progress=True)
    err = capsys.readouterr().err
    assert "cch: extrapolation levels [" in err and " 4/4 " in err
    assert "cch: half-samples [" in err
    quiet = cchmi.cch(t, s, y, estimator="ksg-extrapolated", n_subsamples=4)
    assert (r.i_ts, r.i_sy, r.gap_ci_low, r.gap_ci_high) == (quiet.i_ts, quiet.i_sy, quiet.gap_ci_low,
                                                             quiet.gap_ci_high)  # the same numbers
    assert capsys.readouterr().err == ""  # off by default


def test_rank_teachers_reports_teachers_only(capsys):
    t, s, y = _sample()
    cchmi.rank_teachers({"a": t, "b": t[::-1]}, s, y, estimator="ksg-extrapolated", n_subsamples=4, progress=True)
    err = capsys.readouterr().err
    assert "rank_teachers: teachers [" in err and " 2/2 " in err
    assert "extrapolation" not in err and "half-samples" not in err  # nested stages stay silent


def test_mi_reports_its_stages(capsys):
    t, s, _ = _sample()
    cchmi.mi(t, s, estimator="ksg-extrapolated", progress=True)
    err = capsys.readouterr().err
    assert "cchmi.mi: extrapolation levels [" in err
    cchmi.mi(t, s, estimator="ksg-extrapolated")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("call", [lambda: cchmi.mi(np.eye(40), np.eye(40)[::-1, :2], progress="yes"),
                                  lambda: cchmi.cch(*_sample(300), progress=1)])
def test_progress_must_be_a_bool(call):
    with pytest.raises(TypeError, match="progress must be True or False"):
        call()


def test_outermost_work_draws_and_nested_work_is_silent(capsys):
    with reporting(True, "entry"):
        bar = Progress(2, "epochs", enabled=False)  # e.g. neural_mi's own bar, not asked for by name
        bar.step(), bar.step()
        with stages(3, "outer") as outer:
            for _ in range(3):
                Progress(2, "inner epochs", enabled=False).step()
                with stages(2, "inner") as inner:
                    inner.done(), inner.done()
                outer.done()
    err = capsys.readouterr().err
    assert "entry: epochs [" in err and "entry: outers [" in err
    assert "inner" not in err
    with stages(2, "outside") as stage:  # outside reporting(): silent
        assert stage.done(5) == 5
    assert capsys.readouterr().err == ""
