"""The report's text: tables of configurations and predictors, the agreement paragraph, the
validation-selected section and failed jobs, each as Markdown (``markdown=True``: report.md, full
width) or as plain text fitted to a terminal's width (the CLI's output).

Plain-text tables pad each column to its widest cell, two spaces apart. One wider than `width` (the
terminal's, :func:`shutil.get_terminal_size`, 100 columns when unknown) wraps its headers within
their columns; still too wide, it puts its first column (the label) on a line of its own, wrapped
to the width, and the row's other cells below it, on as many lines as the width needs. The full
labels and every number stay in configs.csv, runs.csv and report.json.

Statistics that are undefined are printed as "n/a" and intervals too few configurations to mean
anything as "(no CI)", each with a note under its table saying what they need; never as nan.
"""

from __future__ import annotations

import math
import shutil
import textwrap

from cchmi.distill.report.aggregate import MAJORITY, config_label, number, regime_order
from cchmi.distill.summary import PREDICTORS, TEACHER_PREDICTOR

DEFAULT_WIDTH = 100
# Fewest configurations for which the text prints Spearman's bootstrap interval: resampling fewer
# draws so few distinct sets that the interval is near [-1, +1] whatever the data (report.json keeps
# it as computed).
SPEARMAN_MIN_SHOWN = 8


def terminal_width(width: int | None = None) -> int:
    """`width`, or the terminal's width (:func:`shutil.get_terminal_size`; $COLUMNS first,
    :data:`DEFAULT_WIDTH` when there is no terminal)."""
    return width if width is not None else shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns


def fmt(v, spec=".3f") -> str:
    """A number in the format `spec`; "n/a" for None or nan."""
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _wrap(text: str, width: int, indent: str = "") -> str:
    return textwrap.fill(text, width, subsequent_indent=indent, break_on_hyphens=False, break_long_words=False)


def _narrowest(header: str, cells: int) -> int:
    """The narrowest a column can be: its widest cell, or its header's longest word."""
    return max([cells, *map(len, header.split())])


def _columns(headers: list[str], cells: list[int], room: int) -> tuple[list[list[str]], list[int]]:
    """(each header's lines, each column's width) in `room` characters: each column at its
    narrowest, the room left widening first the columns whose headers need the least to fit on one
    line; headers wrapped to their column's width."""
    widths = [_narrowest(h, c) for h, c in zip(headers, cells)]
    spare = room - sum(widths) - 2 * (len(widths) - 1)
    for i in sorted(range(len(headers)), key=lambda i: len(headers[i]) - widths[i]):
        grow = max(0, min(spare, len(headers[i]) - widths[i]))
        widths[i] += grow
        spare -= grow
    return [textwrap.wrap(h, w) or [""] for h, w in zip(headers, widths)], widths


def render_table(headers: list[str], rows: list[list[str]], markdown: bool = False, width: int | None = None) -> str:
    """A table of text cells: Markdown ("| a | b |" lines) or plain text fitted to `width` (see
    the module text)."""
    if markdown:
        return "\n".join(["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
                         + ["| " + " | ".join(row) + " |" for row in rows])
    width = terminal_width(width)
    cells = [max((len(r[i]) for r in rows), default=0) for i in range(len(headers))]

    def lines(parts_per_line, sizes, indent=""):
        return [(indent + "  ".join(p.ljust(s) for p, s in zip(parts, sizes))).rstrip() for parts in parts_per_line]

    def head_lines(heads, sizes, indent=""):
        depth = max(len(h) for h in heads)
        return lines([[h[d] if d < len(h) else "" for h in heads] for d in range(depth)], sizes, indent)

    heads, widths = _columns(headers, cells, width)
    total = sum(widths) + 2 * (len(widths) - 1)
    if total <= width:  # one line per row
        return "\n".join(head_lines(heads, widths) + ["-" * total] + lines(rows, widths))
    # The label on a line of its own; the other columns below it, indented by two, in runs of
    # consecutive columns that fit the width at their narrowest.
    chunks, room, used = [], width - 2, 0
    for i in range(1, len(headers)):
        need = _narrowest(headers[i], cells[i])
        if chunks and used + 2 + need <= room:
            chunks[-1].append(i)
            used += 2 + need
        else:
            chunks.append([i])
            used = need
    layout = [_columns([headers[i] for i in chunk], [cells[i] for i in chunk], room) for chunk in chunks]
    out = [_wrap(headers[0], width)]
    for heads, widths in layout:
        out += head_lines(heads, widths, "  ")
    out.append("-" * min(width, max(2 + sum(w) + 2 * (len(w) - 1) for _, w in layout)))
    for r in rows:
        out.append(_wrap(r[0], width, "    "))
        for chunk, (_, widths) in zip(chunks, layout):
            out += lines([[r[i] for i in chunk]], widths, "  ")
    return "\n".join(out)


def format_table(configs: list[dict], limit: int | None = None, markdown: bool = False,
                 width: int | None = None) -> str:
    """The configurations (the first `limit`): Markdown, or plain text fitted to `width` (None: the
    terminal's)."""
    headers = ["configuration", "seeds", "teacher acc", "I(T;S)", "I(S;Y)", "gap [95% CI]", "verdict",
               "KD gain [points] (sd)", "agree"]
    rows = [[c["config"], str(c["seeds"]), fmt(c["acc_teacher"]), fmt(c["i_ts"]), fmt(c["i_sy"]),
             f"{fmt(c['gap'], '+.3f')} [{fmt(c['gap_ci_low'], '+.3f')}, {fmt(c['gap_ci_high'], '+.3f')}]",
             c["verdict"], f"{fmt(100 * c['gain'], '+.2f')} ({fmt(100 * c['gain_sd'], '.2f')})", c["agree"] or "-"]
            for c in configs[:limit]]
    return render_table(headers, rows, markdown, width)


def _defined(v) -> bool:
    return v is not None and not math.isnan(v)


def _spearman_text(rho, ci, n: int, notes: dict) -> str:
    """Spearman's rho and interval as text; "n/a" or "(no CI)" with a note in `notes` where they
    are undefined or rest on fewer than :data:`SPEARMAN_MIN_SHOWN` configurations."""
    if not _defined(rho):
        notes["spearman"] = "Spearman n/a: the predictor (or the gain) is constant over these configurations."
        return "n/a"
    if n < SPEARMAN_MIN_SHOWN or not _defined(ci[0]):
        notes["spearman_ci"] = (f"Spearman (no CI): its bootstrap interval needs >= {SPEARMAN_MIN_SHOWN} "
                                f"configurations (here {n}).")
        return f"{fmt(rho, '+.2f')} (no CI)"
    return f"{fmt(rho, '+.2f')} [{fmt(ci[0], '+.2f')}, {fmt(ci[1], '+.2f')}]"


def _predictor_cells(st: dict, notes: dict) -> list[str]:
    """The sign agreement, AUROC and Spearman cells of one predictor's stats, notes added to `notes`."""
    if st["configurations"] == 0:
        notes["missing"] = "n/a everywhere: these runs did not compute the predictor."
        return ["n/a", "n/a", "n/a"]
    spearman = _spearman_text(st["spearman"], st["spearman_ci"], st["configurations"], notes)
    if st["with_definite_gain"] == 0:
        notes["agreement"] = "sign agreement and AUROC n/a: no configuration here has a gain of definite sign."
        return ["n/a", "n/a", spearman]
    lo, hi = st["agreement_ci"]
    agree = f"{st['agree']}/{st['with_definite_gain']} = {fmt(st['agreement'], '.2f')} " \
            f"[{fmt(lo, '.2f')}, {fmt(hi, '.2f')}]"
    if not _defined(st["auroc"]):
        notes["auroc"] = "AUROC n/a: it needs a definite gain of each sign."
        auc = "n/a"
    elif not _defined(st["auroc_ci"][0]):
        notes["auroc_ci"] = "AUROC (no CI): DeLong's interval needs two definite gains of each sign."
        auc = f"{fmt(st['auroc'], '.2f')} (no CI)"
    else:
        auc = f"{fmt(st['auroc'], '.2f')} [{fmt(st['auroc_ci'][0], '.2f')}, {fmt(st['auroc_ci'][1], '.2f')}]"
    return [agree, auc, spearman]


def predictor_table(stats: dict, regime: str | None = None, markdown: bool = False, width: int | None = None) -> str:
    """One row per predictor of :func:`~cchmi.distill.report.aggregate.predictor_report`'s `stats`
    (pooled, or the value `regime` of its regimes), notes on what is n/a below it."""
    notes: dict[str, str] = {}
    rows = [[name, *_predictor_cells(st if regime is None else st["regimes"][regime], notes)]
            for name, st in stats.items()]
    table = render_table(["predictor", "sign agreement [Wilson 95%]", "AUROC [DeLong 95%]",
                          "Spearman with the gain [95%]"], rows, markdown, width)
    if markdown:  # a paragraph each
        return "\n\n".join([table, *notes.values()])
    return "\n\n".join([table, "\n".join(_wrap(n, terminal_width(width), "  ") for n in notes.values())]) \
        if notes else table


def beats_baselines(stats: dict, regime: str | None = None, markdown: bool = False, width: int | None = None) -> str:
    """Plain sentences: which predictors beat the teacher-minus-student accuracy (TEACHER_PREDICTOR,
    on validation rows) and the majority sign (point estimates: sign agreement, then AUROC), or
    that none does."""
    def get(name, key):
        st = stats[name] if regime is None else stats[name]["regimes"][regime]
        return st[key]

    def shown(name, key):
        ci = get(name, f"{key}_ci")
        interval = f" [{fmt(ci[0], '.2f')}, {fmt(ci[1], '.2f')}]" if _defined(ci[0]) else ""
        return f"{fmt(get(name, key), '.2f')}{interval}"

    candidates = [n for n in PREDICTORS if n != TEACHER_PREDICTOR and _defined(get(n, "agreement"))]
    lines = []
    for key, label in (("agreement", "sign agreement"), ("auroc", "AUROC")):
        base = {b: get(b, key) for b in (TEACHER_PREDICTOR, MAJORITY) if _defined(get(b, key))}
        if not base:
            lines.append(f"- {label}: no baseline is defined here (no configuration with a definite gain of "
                         "each sign); nothing to compare.")
            continue
        bar = max(base.values())
        against = " and ".join(f"{'teacher-minus-student accuracy' if b == TEACHER_PREDICTOR else 'the majority sign'} "
                               f"{fmt(v, '.2f')}" for b, v in base.items())
        winners = [n for n in candidates if _defined(get(n, key)) and get(n, key) > bar]
        if not winners:
            best = max(candidates, key=lambda n: get(n, key) if _defined(get(n, key)) else -math.inf, default=None)
            best_text = f" (best: {best} {fmt(get(best, key), '.2f')})" if best else ""
            lines.append(f"- {label}: no predictor beats teacher-minus-student accuracy or the majority sign{best_text}; "
                         f"against {against}.")
            continue
        for n in winners:
            low = get(n, f"{key}_ci")[0]
            caveat = "; it has no interval here, so not clearly." if not _defined(low) else \
                f"; its interval includes {fmt(bar, '.2f')}, so not clearly." if low <= bar else "."
            lines.append(f"- {label}: {n} {shown(n, key)} beats {against}{caveat}")
    return "\n".join(lines if markdown else [_wrap(t, terminal_width(width), "  ") for t in lines])


INDEPENDENCE_NOTE = ("These intervals (Wilson, DeLong, the bootstrap of Spearman's rho over configurations) assume "
                     "independent configurations. They are not: the runs of one student view and seed share the "
                     "baseline student whatever the teacher, and the same view pairs recur at every setting, so the "
                     "intervals are too narrow. The pre-registered endpoints' cluster-bootstrap intervals account "
                     "for both.")


def format_predictors(stats: dict, regime: str | None = None, markdown: bool = False,
                      width: int | None = None) -> str:
    """The predictors' section: pooled, then per regime value (in :func:`regime_order`)."""
    parts = ["## Predictors of the sign of the KD gain", "", _wrap(INDEPENDENCE_NOTE, terminal_width(width))
             if not markdown else INDEPENDENCE_NOTE, "", "### Pooled", "",
             predictor_table(stats, None, markdown, width), "", beats_baselines(stats, None, markdown, width)]
    for value in regime_order(next(iter(stats.values()))["regimes"]):
        parts += ["", f"### {regime} = {value}", "", predictor_table(stats, value, markdown, width), "",
                  beats_baselines(stats, value, markdown, width)]
    return "\n".join(parts)


def _correlation(rho: list, n: int) -> str:
    if not _defined(rho[0]):
        return "n/a (constant, or fewer than 2 configurations)"
    if n < SPEARMAN_MIN_SHOWN or not _defined(rho[1]):
        return f"{fmt(rho[0], '+.2f')} (no CI: the bootstrap needs >= {SPEARMAN_MIN_SHOWN} configurations, here {n})"
    return f"{fmt(rho[0], '+.2f')} [{fmt(rho[1], '+.2f')}, {fmt(rho[2], '+.2f')}]"


def format_run_notes(summaries: list[dict]) -> str:
    """A line on the runs whose estimators warned (summary "warnings") and whose CCH or predictors
    failed after training (summary "predictor_errors": accuracies kept, the failed values missing),
    naming the failed steps; "" when there are none."""
    warned = sum(bool(s.get("warnings")) for s in summaries)
    failed = [s for s in summaries if s.get("predictor_errors")]
    notes = []
    if warned:
        notes.append(f"{warned} of {len(summaries)} runs with estimator warnings (each run's summary.json: warnings)")
    if failed:
        steps = sorted({step for s in failed for step in s["predictor_errors"]})
        notes.append(f"{len(failed)} runs whose estimates failed after training ({', '.join(steps)}; accuracies kept, "
                     "the failed values missing; summary.json: predictor_errors)")
    return "; ".join(notes)


def format_agreement(stats: dict, markdown: bool = False, width: int | None = None) -> str:
    """The paragraph on the CCH gap's agreement with the gain (lines wrapped to `width` unless
    `markdown`)."""
    a = stats
    if a["with_definite_gain"]:
        lo, hi = a["agreement_ci"]
        agrees = (f"{a['agree']}/{a['with_definite_gain']} = {fmt(a['agreement'], '.2f')} (Wilson 95% CI "
                  f"[{fmt(lo, '.2f')}, {fmt(hi, '.2f')}])")
        majority = f"always predicting the more frequent sign would agree {fmt(a['majority_baseline'], '.2f')}"
    else:
        agrees = "n/a (no configuration has a gain of definite sign)"
        majority = "no majority sign to compare with"
    n = a["configurations"]
    lines = [
        f"configurations: {n}, with a KD gain of definite sign (95% CI excludes 0): {a['with_definite_gain']}",
        f"sign of the CCH gap agrees with the sign of the gain: {agrees}; verdict undecided for "
        f"{a['verdict_undecided']} configurations",
        f"definite gains: {a['gains_positive']} positive, {a['gains_negative']} negative; {majority}",
        f"Spearman rank correlation with the gain: CCH gap {_correlation(a['spearman_gap_gain'], n)}, "
        f"teacher accuracy {_correlation(a['spearman_teacher_acc_gain'], n)}",
    ]
    return "\n".join(lines if markdown else [_wrap(t, terminal_width(width), "  ") for t in lines])


def format_selected(axes: list[str], selected: list[dict], configs: list[dict], markdown: bool = False,
                    width: int | None = None) -> str:
    """The validation-selected section (gains in points): each selected run, then per configuration."""
    head = f"## KD student selected by validation accuracy over {', '.join(axes)}"
    if not selected:
        return f"{head}\n\nNot available: some runs have no validation accuracy (older summaries)."
    runs = [[config_label(s), str(s["seed"]), ", ".join(f"{k}={v}" for k, v in s["selected"].items()),
             fmt(number(s["val_accuracy"]["kd"])), fmt(100 * number(s["gain"]), "+.2f")] for s in selected]
    chosen = [[c["config"], str(c["seeds"]), f"{fmt(100 * c['gain'], '+.2f')} [{fmt(100 * c['gain_ci_low'], '+.2f')}, "
               f"{fmt(100 * c['gain_ci_high'], '+.2f')}]", c["gain_sign"]] for c in configs]
    run_heads = ["configuration", "seed", "selected", "val acc (KD)", "test gain [points]"]
    config_heads = ["configuration", "seeds", "selected gain [points] [95% CI]", "sign"]
    return "\n\n".join([head, render_table(run_heads, runs, markdown, width),
                         render_table(config_heads, chosen, markdown, width)])


def format_failures(failures: list[dict], markdown: bool = False, width: int | None = None) -> str:
    """One line per failed job (its key and error), wrapped to `width` unless `markdown`."""
    lines = [f"- {f['key']}: {f['error']}" for f in failures]
    lines = lines if markdown else [_wrap(t, terminal_width(width), "  ") for t in lines]
    return "\n".join([f"{len(failures)} job(s) failed, left out of the report (a rerun retries them):", *lines])


def _ci(entry: dict, key: str, spec: str = "+.2f") -> str:
    """"value [low, high]" of an endpoint entry's `key` and its interval."""
    value = entry[key] if key in entry else entry["value"]
    if not _defined(value):
        return "n/a"
    low, high = (entry[f"{key}_ci_low"], entry[f"{key}_ci_high"]) if f"{key}_ci_low" in entry else \
        (entry["ci_low"], entry["ci_high"])
    return f"{fmt(value, spec)} [{fmt(low, spec)}, {fmt(high, spec)}]"


def _p(p) -> str:
    return fmt(p, ".3f")


def _winners(entries: dict, comparator: str, alpha: float, better) -> list[str]:
    """The predictors whose difference from the comparator is significant after Holm and `better`."""
    return [n for n, e in entries.items() if n != comparator and _defined(e["p_holm"]) and e["p_holm"] < alpha
            and better(e["minus_comparator"])]


def format_endpoints(result: dict, markdown: bool = True, width: int | None = None) -> str:
    """The endpoints' section (:func:`~cchmi.distill.report.endpoints.compute_endpoints`' `result`):
    a table per endpoint and, in plain words, which predictor beats the comparator (after Holm) and
    where none beats it or a random pick."""
    settings = result["settings"]
    comparator, alpha, level = settings["comparator"], settings["alpha"], f"{100 * (1 - settings['alpha']):g}%"
    parts = ["## Pre-registered endpoints", "",
             f"Primary predictor: {settings['primary']}; comparator (the simplest rule): {comparator}. Intervals: "
             f"{level} percentile intervals of {settings['bootstrap']} cluster-bootstrap replicates (seed "
             f"{settings['seed']}): (teacher view, student view) pairs resampled, then seeds, drawn once per student "
             "view so that runs sharing a baseline student stay together; teacher selection resamples seeds only. "
             f"p: two-sided bootstrap p-values; Holm: adjusted across the predictors at alpha = {alpha}."]
    sel = result.get("selection")
    if sel:
        rows = [[n, str(e["problems"]), _ci(e, "regret"), _ci(e, "minus_comparator"), _p(e["p_holm"]),
                 _ci(e, "minus_random"), _p(e["p_random_holm"])] for n, e in sel.items()]
        first = next(iter(sel.values()))
        wins = _winners(sel, comparator, alpha, lambda d: d < 0)
        over_random = [n for n, e in sel.items() if _defined(e["p_random_holm"]) and e["p_random_holm"] < alpha
                       and e["minus_random"] < 0]
        primary = sel.get(settings["primary"])
        words = [] if primary is None else [
            f"Primary predictor {settings['primary']}: regret {_ci(primary, 'regret')} points, minus {comparator} "
            f"{_ci(primary, 'minus_comparator')} (p Holm {_p(primary['p_holm'])})."]
        words += [f"Random pick's expected regret {_ci(first, 'random')} points; the seed oracle's "
                 f"{fmt(first['oracle'], '+.2f')} (what seed noise costs even a perfect predictor of one seed's gain). "
                 "A predictor constant across the teachers scores exactly the random regret (ties are averaged).",
                 f"Lower regret than {comparator} after Holm: {', '.join(wins)}." if wins else
                 f"No predictor picks teachers with lower regret than {comparator} after Holm.",
                 f"Lower regret than a random pick after Holm: {', '.join(over_random)}." if over_random else
                 "No predictor picks teachers with lower regret than a random pick after Holm."]
        parts += ["", "### Teacher selection: regret per student view [accuracy points; lower is better]", "",
                  render_table(["predictor", "problems", f"regret [{level}]", f"minus {comparator}", "p Holm",
                                "minus random", "p Holm (random)"], rows, markdown, width), "",
                  *(f"- {w}" for w in words)]
    dose = result.get("dose_response")
    if dose:
        parts += ["", "### Dose-response: slope per unit of each axis (gain in points; a level per everything else)",
                  ""]
        rows = [[axis, n, _ci(e, "slope", "+.3f"), _p(e["p_value"]), _p(e["p_holm"]), str(e["runs"])]
                for n, by_axis in dose.items() for axis, e in by_axis.items()]
        parts.append(render_table(["axis", "quantity", f"slope [{level}]", "p", "p Holm", "runs"], rows, markdown,
                                  width))
        for axis, e in dose["gain"].items():
            moved = _defined(e["p_holm"]) and e["p_holm"] < alpha
            trend = ("rises" if e["slope"] > 0 else "falls") if moved else "shows no detectable trend"
            primary = dose.get(settings["primary"], {}).get(axis)
            along = "" if primary is None else (
                f"; {settings['primary']} {_ci(primary, 'slope', '+.3f')}, "
                + ("the same direction" if moved and primary["p_holm"] < alpha and primary["slope"] * e["slope"] > 0
                   else "not moving with it detectably" if moved else "so nothing for a predictor to follow"))
            parts += ["", f"Along {axis} the gain {trend}: {_ci(e, 'slope', '+.3f')} points per unit{along}."]
    auc = result.get("auroc")
    if auc:
        def auroc_block(entries: dict, head: str) -> list[str]:
            rows = [[n, str(e["runs"]), _ci(e, "auroc", ".2f"), _ci(e, "minus_comparator"), _p(e["p_holm"])]
                    for n, e in entries.items()]
            wins = _winners(entries, comparator, alpha, lambda d: d > 0)
            chance = [n for n, e in entries.items() if _defined(e["auroc_ci_low"]) and e["auroc_ci_low"] > 0.5]
            primary = entries.get(settings["primary"])
            first = [] if primary is None else [
                f"Primary predictor {settings['primary']}: AUROC {_ci(primary, 'auroc', '.2f')}, minus {comparator} "
                f"{_ci(primary, 'minus_comparator')} (p Holm {_p(primary['p_holm'])})."]
            words = [*first, f"Higher AUROC than {comparator} after Holm: {', '.join(wins)}." if wins else
                     f"No predictor foretells gain > 0 better than {comparator} after Holm.",
                     f"AUROC interval above 0.5 (better than chance): {', '.join(chance)}." if chance else
                     "No predictor's AUROC interval lies above 0.5 (chance)."]
            return ["", head, "", render_table(["predictor", "runs", f"AUROC [{level}]", f"minus {comparator}",
                                                "p Holm"], rows, markdown, width), "", *(f"- {w}" for w in words)]

        parts += auroc_block({n: {k: v for k, v in e.items() if k != "regimes"} for n, e in auc.items()},
                             "### AUROC of \"gain > 0\" over the runs (pooled)")
        for value in regime_order(next(iter(auc.values()))["regimes"]):
            parts += auroc_block({n: e["regimes"][value] for n, e in auc.items()},
                                 f"### AUROC at {settings['regime']} = {value}")
    power = result["power"]["summary"]
    parts += ["", "### Power", "",
              f"{power['configurations']} configurations, median {fmt(power['median_seeds'], 'g')} seeds, median "
              f"s.d. of the gain over seeds {fmt(power['median_gain_sd'], '.2f')} points: the median minimal "
              f"detectable mean gain (two-sided paired t, alpha {power['alpha']}, power {power['power']}) is "
              f"{fmt(power['median_mde'], '.2f')} points; {power['detectable']} configurations have a mean gain at "
              "least that large (report.json: endpoints.power.configurations)."]
    lines = parts if markdown else [line if "\n" in line or line.startswith(("|", "#")) or not line
                                    else _wrap(line, terminal_width(width), "  ") for line in parts]
    return "\n".join(lines)
