"""Conventions shared by the whole package: extras by use (ImportError naming the extra), lazy names
in dir(cchmi), progress bars that change nothing, scikit-learn's estimator conventions, and the hint
for a source checkout without its compiled module."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.machinery import EXTENSION_SUFFIXES

import numpy as np
import pytest

import cchmi
from cchmi import _extras


def _run_without(modules: tuple[str, ...], code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter where importing any of `modules` fails, as when not installed."""
    hide = "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
    return subprocess.run([sys.executable, "-c", f"import sys\n{hide}{textwrap.dedent(code)}"],
                          capture_output=True, text=True, timeout=600)


def test_knn_estimators_work_without_torch():
    run = _run_without(("torch",), """
        import numpy as np, cchmi
        rng = np.random.default_rng(0)
        x, y, z = rng.standard_normal((3, 200, 2))
        labels = (x[:, 0] > 0).astype(int)
        cchmi.ksg_mi(x, y, confidence=0.9); cchmi.mixed_mi(x, labels); cchmi.entropy(x); cchmi.cmi(x, y, z)
        cchmi.permutation_test(x, y, n_permutations=5)
        cchmi.KSG().fit(x, y); cchmi.cch(x, y, labels)
        print("torch" in sys.modules and sys.modules["torch"] is not None)
    """)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


EXTRA_TORCH = "needs PyTorch: pip install 'cchmi[torch]'"


@pytest.mark.parametrize("code,what", [
    ("cchmi.neural_mi", "cchmi.neural_mi"),
    ("cchmi.NeuralMI", "cchmi.NeuralMI"),
    ("cchmi.latent_mi", "cchmi.latent_mi"),
    ("import cchmi.neural", "cchmi.neural"),
    ("cchmi.cch(x, x, (x[:, 0] > 0).astype(int), estimator='latent')", "cch(estimator='latent')"),
])
def test_neural_functions_name_the_torch_extra(code, what):
    run = _run_without(("torch",), f"""
        import numpy as np, cchmi
        x = np.random.default_rng(0).standard_normal((100, 2))
        try:
            {code}
        except ImportError as exc:
            print(exc)
    """)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(what) and EXTRA_TORCH in run.stdout


@pytest.mark.parametrize("hidden,command,message", [
    (("torch",), ["demo"], f"cchmi demo: error: the KD trainer {EXTRA_TORCH}"),
    (("torch",), ["experiment", "digits"], f"cchmi experiment: error: the KD trainer {EXTRA_TORCH}"),
    (("matplotlib",), ["demo"], "error: the report's plot (gain_vs_gap.png) needs matplotlib: pip install 'cchmi[plot]'"),
])
def test_cli_sweeps_name_the_extras_before_any_work(tmp_path, hidden, command, message):
    run = _run_without(hidden, f"""
        from cchmi.cli import main
        sys.exit(main({command + ["--out", str(tmp_path / "out")]!r}))
    """)
    assert run.returncode == 2 and message in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_require_names_the_extra_or_the_broken_import(tmp_path, monkeypatch):
    assert _extras.require("json", "e", "X") is sys.modules["json"]
    with pytest.raises(ImportError, match=r"^X needs not_installed_here: pip install 'cchmi\[e\]'$"):
        _extras.require("not_installed_here", "e", "X")
    (tmp_path / "broken_extra.py").write_text("import missing_dependency_of_it\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match=r"^X needs broken_extra, which failed to import \(No module named "
                                          r"'missing_dependency_of_it'\); reinstall it with pip install 'cchmi\[e\]'"):
        _extras.require("broken_extra", "e", "X")


def test_dir_lists_the_lazy_names():
    names = dir(cchmi)
    assert {"neural_mi", "NeuralMI", "latent_mi", "ksg_mi", "KSG", "__version__"} <= set(names)
    assert names == sorted(names)


def _progress_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("permutation test [")]


@pytest.mark.parametrize("backend,estimator", [("cpu", "ksg"), ("cpu", "mixed"), ("triton", "ksg")])
def test_permutation_progress_changes_nothing(capsys, backend, estimator):
    if backend not in cchmi.available_backends():
        pytest.skip(f"backend {backend} is not available here")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 2))
    y = (x[:, :1] > 0).astype(int).ravel() if estimator == "mixed" else x[:, :1] + rng.standard_normal((64, 1))
    quiet = cchmi.permutation_test(x, y, estimator=estimator, n_permutations=20, backend=backend)
    assert capsys.readouterr().err == ""
    shown = cchmi.permutation_test(x, y, estimator=estimator, n_permutations=20, backend=backend, progress=True)
    lines = _progress_lines(capsys.readouterr().err)
    assert lines and lines[-1].split()[3] == "20/20"
    assert np.array_equal(quiet.null, shown.null) and quiet.estimate == shown.estimate
    assert quiet.p_value == shown.p_value


# --- scikit-learn's conventions -------------------------------------------------------------------

def _estimators():
    from cchmi.estimators import CMI, KSG, KLEntropy, MixedMI

    return [KSG(), KSG(5, variant=2, backend="numpy"), MixedMI(), KLEntropy(), CMI(k=4)]


def _neural():
    pytest.importorskip("torch")
    return cchmi.NeuralMI(epochs=2, batch_size=8, hidden=8, embed_dim=4, patience=1, confidence=None)


@pytest.mark.parametrize("make", [*[lambda e=e: e for e in _estimators()], _neural],
                         ids=["KSG", "KSG-2", "MixedMI", "KLEntropy", "CMI", "NeuralMI"])
def test_parameter_conventions(make):
    """What applies to estimators that are neither predictors nor transformers: parameters (get,
    set, clone, defaults, __init__ storing only them), tags, repr."""
    pytest.importorskip("sklearn", minversion="1.6")
    from sklearn.base import clone
    from sklearn.utils import get_tags
    from sklearn.utils import estimator_checks as checks

    est = make()
    name = type(est).__name__
    for check in (checks.check_parameters_default_constructible, checks.check_get_params_invariance,
                  checks.check_set_params, checks.check_no_attributes_set_in_init, checks.check_estimator_repr,
                  checks.check_estimator_cloneable, checks.check_estimator_tags_renamed, checks.check_valid_tag_types,
                  checks.check_do_not_raise_errors_in_init_or_set_params):
        check(name, est)
    twin = clone(est)
    assert type(twin) is type(est) and twin.get_params() == est.get_params()
    assert repr(twin) == repr(est)
    first = next(iter(est.get_params()))
    with pytest.raises(ValueError, match="has no parameter 'colour'"):
        est.set_params(colour=1)
    assert est.set_params(**{first: est.get_params()[first]}) is est
    tags = get_tags(est)
    assert tags.estimator_type is None and tags.requires_fit and not tags.input_tags.allow_nan
    assert tags.target_tags.required is (name != "KLEntropy")


@pytest.mark.parametrize("index", [0, 1, 2], ids=["KSG", "KSG-2", "MixedMI"])
def test_fit_conventions(index):
    """The checks that fit on scikit-learn's own data: fit(X, y) leaves the parameters alone,
    sets attributes only with a trailing underscore, and check_is_fitted sees the fit."""
    pytest.importorskip("sklearn", minversion="1.6")
    from sklearn.utils import estimator_checks as checks

    est = _estimators()[index]
    name = type(est).__name__
    for check in (checks.check_estimators_overwrite_params, checks.check_dont_overwrite_parameters,
                  checks.check_fit_check_is_fitted):
        if name == "KSG":  # scikit-learn's data: y holds integer classes, which look like labels to KSG
            with pytest.warns(cchmi.InputWarning, match=r"y is one column of \d+ distinct integer values"):
                check(name, est)
        else:
            check(name, est)


def test_grid_of_parameters_clones_and_fits():
    pytest.importorskip("sklearn", minversion="1.6")
    from sklearn.base import clone
    from sklearn.model_selection import ParameterGrid

    x = np.random.default_rng(0).standard_normal((200, 2))
    y = x + np.random.default_rng(1).standard_normal((200, 2))
    base = cchmi.KSG()
    fits = [clone(base).set_params(**p).fit(x, y) for p in ParameterGrid({"k": [3, 5], "variant": [1, 2]})]
    assert [f.mi_ for f in fits] == [cchmi.ksg_mi(x, y, k=f.k, variant=f.variant).estimate for f in fits]
    assert base.get_params() == cchmi.KSG().get_params()


# --- a source checkout without its compiled module ----------------------------------------------

def _checkout(tmp_path, pyproject=True, built=False):
    package = tmp_path / "cchmi"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_cpu.pyi").write_text("")  # stubs are not a compiled module
    if pyproject:
        (tmp_path / "pyproject.toml").write_text("")
    if built:
        (package / f"_cpu{EXTENSION_SUFFIXES[0]}").write_bytes(b"")
    return package


@pytest.mark.parametrize("pyproject,built,installed,expected", [
    (True, False, None, "which has no compiled module; run `pip install -e .` there"),
    (True, False, "site", "and shadows the cchmi installed in"),
    (True, True, None, ""),
    (False, False, None, ""),
])
def test_source_checkout_hint(tmp_path, monkeypatch, pyproject, built, installed, expected):
    (tmp_path / "repo").mkdir()
    package = _checkout(tmp_path / "repo", pyproject, built)
    monkeypatch.setattr(_extras, "__file__", str(package / "_extras.py"))
    site = tmp_path / "site" / "cchmi"
    monkeypatch.setattr(_extras, "_installed_package", lambda: site if installed else None)
    hint = _extras.source_checkout_hint()
    assert (expected in hint) if expected else hint == ""
    if expected:
        assert str(tmp_path / "repo") in hint and (str(tmp_path / "site") in hint) == bool(installed)
