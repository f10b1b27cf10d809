"""Plots of a user's own CCH results: :func:`plot_cch` for a :func:`cchmi.cch` result, a
:func:`cchmi.rank_teachers` ranking, or a mapping of names to results (needs matplotlib:
``pip install 'cchmi[plot]'``).

Each row is one teacher: I(T; S) and I(S; Y) as markers, the gap I(T; S) - I(S; Y) as a bar with its
interval when the result has one, and the verdict. The CCH says distil where the gap's interval lies
above 0, so the 0 line is drawn; rows come in the order given (a ranking: largest gap first).
"""

from __future__ import annotations

from collections.abc import Mapping

from cchmi._extras import require

VERDICT_COLOURS = {"distil": "tab:green", "do not distil": "tab:red", "undecided": "tab:grey"}


def _rows(results) -> list[tuple[str, object]]:
    """(name, CCHResult) pairs from a CCHResult, a TeacherRanking or a mapping of them."""
    if hasattr(results, "rows"):  # a TeacherRanking
        return list(results.rows)
    if isinstance(results, Mapping):
        return list(results.items())
    if hasattr(results, "gap"):
        return [("teacher", results)]
    raise TypeError(f"results must be a CCHResult, a TeacherRanking or a mapping of names to CCHResults, "
                    f"got {type(results).__name__}")


def plot_cch(results, *, ax=None, path=None, title: str | None = None):
    """Draw the CCH terms and gap of each teacher; returns the matplotlib Axes.

    results : a :class:`~cchmi.cch.CCHResult`, a :class:`~cchmi.cch.TeacherRanking`, or a mapping
        name -> CCHResult.
    ax : the Axes to draw on (None: a new figure, through pyplot unless `path` is given). path : also
    save the figure there (PNG, PDF, ... by its suffix). title : the Axes' title (default: the
    estimator and the rows used). Results in different units are refused.
    """
    rows = _rows(results)
    if not rows:
        raise ValueError("results holds no CCH result to plot")
    units = {r.unit for _, r in rows}
    if len(units) > 1:
        raise ValueError(f"results are in different units ({', '.join(sorted(units))}): estimate them with one base")
    require("matplotlib", "plot", "cchmi.plot.plot_cch")
    size = (7, 1.2 + 0.6 * len(rows))
    if ax is None and path is not None:  # a figure of its own, for the file: no pyplot, no global state
        from matplotlib.figure import Figure

        ax = Figure(figsize=size).subplots()
    elif ax is None:  # interactive: a pyplot figure, shown by plt.show()
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=size)
    unit = rows[0][1].unit
    for i, (name, r) in enumerate(rows):
        y = len(rows) - 1 - i
        colour = VERDICT_COLOURS.get(r.verdict, "tab:blue")
        err = None
        if r.gap_ci_low is not None:
            err = [[r.gap - r.gap_ci_low], [r.gap_ci_high - r.gap]]
        ax.barh(y, r.gap, height=0.5, color=colour, alpha=0.6, xerr=err, capsize=4,
                label=r.verdict if r.verdict not in ax.get_legend_handles_labels()[1] else None)
        ax.plot(r.i_ts, y + 0.12, "k^", ms=6, label="I(T;S)" if i == 0 else None)
        ax.plot(r.i_sy, y - 0.12, "kv", ms=6, mfc="white", label="I(S;Y)" if i == 0 else None)
        ax.annotate(r.verdict, (max(r.gap, r.i_ts, r.i_sy, 0.0), y), xytext=(6, -3), textcoords="offset points",
                    fontsize=8)
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_yticks(range(len(rows)), [name for name, _ in reversed(rows)])
    ax.set_xlabel(f"{unit}: gap I(T;S) - I(S;Y) (bars, interval) and its terms (markers)")
    first = rows[0][1]
    ax.set_title(title if title is not None else f"CCH, {first.estimator}, n = {first.n}", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    if path is not None:
        ax.figure.tight_layout()
        ax.figure.savefig(path, dpi=120)
    return ax
