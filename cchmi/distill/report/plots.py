"""The report's plot, gain_vs_gap.png: the KD gain against the CCH gap per configuration, with
their 95% intervals as error bars, one panel per dataset, colour for the regime (the report's sweep
axis, else the teacher's view) and marker for the control. matplotlib is imported when a
plot is drawn (the ``plot`` extra)."""

from __future__ import annotations

import io
import math
from pathlib import Path

from cchmi import _io
from cchmi.distill.report.aggregate import config_control, regime_order, regime_value

# Markers by control: aligned pairs filled circles, each control an open marker of its own.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")
PANEL_HEIGHT = 4.4  # inches, title and axis labels included


def _half_widths(configs: list[dict], key: str) -> list[float]:
    """Error bar lengths: mean - lower 95% bound (0 where a single seed gives no interval)."""
    return [0.0 if math.isnan(c[f"{key}_ci_low"]) else c[key] - c[f"{key}_ci_low"] for c in configs]


def _colours(values: list[str], numeric: bool) -> dict:
    """value -> colour: a sequential map from light to dark for numbers (small to large), the
    qualitative tab10 otherwise."""
    import matplotlib

    if numeric:
        cmap = matplotlib.colormaps["viridis"]
        return {v: cmap(0.85 * i / max(1, len(values) - 1)) for i, v in enumerate(reversed(values))}
    cmap = matplotlib.colormaps["tab10"]
    return {v: cmap(i % 10) for i, v in enumerate(values)}


def plot(configs: list[dict], path: Path, title: str, regime: str | None = None) -> None:
    """Write gain_vs_gap.png to `path`: KD gain (points) against the CCH gap (nats) per
    configuration, 95% intervals as error bars, a panel per dataset, colour by the value of the
    sweep axis `regime` (without one: by the teacher's view), marker by control (filled for
    aligned pairs, open for the controls)."""
    from cchmi._extras import require

    matplotlib = require("matplotlib", "plot", "the gain-vs-gap plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if regime is not None:
        colour_of = {c["config"] + c["dataset"]: regime_value(c, regime) for c in configs}
        values = regime_order(set(colour_of.values()))
        numeric = all(_is_number(v) for v in values)
    else:
        colour_of = {c["config"] + c["dataset"]: c["teacher_view"] for c in configs}
        values, numeric = sorted(set(colour_of.values())), False
    colours = _colours(values, numeric)
    controls = sorted({config_control(c) for c in configs}, key=lambda v: (v != "none", v))
    markers = {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(controls)}
    datasets = sorted({c["dataset"] for c in configs})

    panels = max(1, len(datasets))
    fig, axes = plt.subplots(1, panels, figsize=(0.8 + 4.6 * panels, PANEL_HEIGHT + 1), dpi=120, sharey=True,
                             squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for c in (c for c in configs if c["dataset"] == dataset):
            colour, control = colours[colour_of[c["config"] + c["dataset"]]], config_control(c)
            ax.errorbar([c["gap"]], [100 * c["gain"]], xerr=_half_widths([c], "gap"),
                        yerr=[100 * e for e in _half_widths([c], "gain")], fmt="none", ecolor=colour, alpha=0.45,
                        capsize=2, lw=0.8)
            ax.plot([c["gap"]], [100 * c["gain"]], marker=markers[control], ms=7, ls="none", mec=colour, mew=1.6,
                    mfc=colour if control == "none" else "white", zorder=3)
        ax.axhline(0, color="grey", lw=0.8)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(dataset, fontsize=10)
        ax.set_xlabel("CCH gap I(T;S) - I(S;Y) [nats]")
    axes[0][0].set_ylabel("KD gain [test accuracy points]")
    colour_handles = [Line2D([], [], marker="o", ls="none", color=colours[v], ms=7, label=v) for v in values]
    marker_handles = [Line2D([], [], marker=markers[v], ls="none", mec="black", mfc="black" if v == "none" else "white",
                             ms=7, label="aligned (none)" if v == "none" else v) for v in controls]
    fig.suptitle(title, fontsize=11)
    _legends(fig, colour_handles, regime or "teacher view", marker_handles)
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    _io.write_atomic(path, png.getvalue())


def _legends(fig, colour_handles: list, colour_title: str, marker_handles: list) -> None:
    """The colour and the marker legends under the panels, side by side, or the markers' above the
    colours' where they would overlap; the panels laid out in the room above them."""
    def columns(handles):  # as many as fit the figure's width (about 8 pixels a character at size 8)
        longest = max(len(h.get_label()) for h in handles)
        return max(1, min(len(handles), int(0.95 * fig.bbox.width // (8 * longest + 40))))

    colours = fig.legend(handles=colour_handles, title=colour_title, loc="lower left", bbox_to_anchor=(0.01, 0.0),
                         ncol=columns(colour_handles), fontsize=8, title_fontsize=8)
    markers = fig.legend(handles=marker_handles, title="control (open markers)", loc="lower right",
                         bbox_to_anchor=(0.99, 0.0), ncol=columns(marker_handles), fontsize=8, title_fontsize=8)
    fig.canvas.draw()  # the legends' extents
    below, right = colours.get_window_extent(), markers.get_window_extent()
    if below.x1 > right.x0:
        markers.set_bbox_to_anchor((0.99, below.height / fig.bbox.height + 0.01), transform=fig.transFigure)
        fig.canvas.draw()
    legends = max(colours.get_window_extent().y1, markers.get_window_extent().y1) / fig.dpi  # inches
    fig.set_figheight(PANEL_HEIGHT + legends)  # the panels keep their height
    fig.tight_layout(rect=(0, (legends + 0.1) / fig.get_figheight(), 1, 1))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
