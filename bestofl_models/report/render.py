"""Write a :class:`Report` as CSV tables, ``summary.md`` and PNG plots (matplotlib, Agg backend).

Every file is written to a temporary name and renamed into place, so a report killed mid-way never
leaves a half-written file behind.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence

import numpy as np

from ..store.atomic import process_running
from ..selection.methods import METHODS
from .cost_render import COMPUTE_MATCHED_CSV, LANGUAGE_COSTS_CSV, TOKEN_CURVES_CSV, TOKENS_PLOT, cost_files, \
    cost_markdown
from .render_common import _MARKERS, _csv_bytes, _figure_bytes, _methods, _size_note, _table
from .build import (
    AVERAGE,
    CROSS_BASELINES,
    MONTE_CARLO,
    TARGET_BASELINES,
    Report,
    estimator,
)

CURVES_CSV = "budget_curves.csv"
ABLATION_CSV = "pool_ablation.csv"
PASS_AT_K_CSV = "pass_at_k.csv"
SELECTED_CSV = "selected_language.csv"
SUMMARY_MD = "summary.md"
PLOTS = ("accuracy_vs_budget.png", "accuracy_heatmap.png", "selected_language.png", "pass_at_k.png",
         "pool_ablation.png")
_Z95 = 1.96


class _Lookup:
    """Rows of a table by the values of some of their columns."""

    def __init__(self, rows: Iterable[dict], *columns: str):
        self.rows = {tuple(r[c] for c in columns): r for r in rows}

    def __call__(self, *values: object) -> dict | None:
        return self.rows.get(values)


def _percent(row: dict | None) -> str:
    if row is None:
        return "–"
    text = f"{100 * row['accuracy']:.1f}"
    return f"{text} ± {100 * _Z95 * row['se']:.1f}" if row["estimator"] == MONTE_CARLO else text


def _names(names) -> str:
    return ", ".join(f"`{name}`" for name in names)


def _summary_budgets(top: int) -> list[int]:
    budgets = [n for n in (1, 2, 4, 8, 16, 32, 64, 128, 256) if n < top]
    return budgets + [top]


def summary_markdown(report: Report) -> str:
    data, options = report.data, report.options
    curves = _Lookup(report.curves, "target", "method", "n")
    ablation = _Lookup(report.ablation, "pool", "target", "method", "n")
    selected = _Lookup(report.selected, "target", "n", "lang")
    pass_at_k = _Lookup(report.pass_at_k, "scope", "k")
    methods = _methods(report.curves)
    top = max(r["n"] for r in report.curves)
    counts = ", ".join(f"{code} {int(data.stored[:, i].min())}–{int(data.stored[:, i].max())}"
                       for i, code in enumerate(data.languages))
    lines = [
        "# Best-of-L report",
        "",
        f"- Stores: {', '.join(data.stores)}",
        f"- Generator: `{data.generator}`; sampling settings: `{data.settings}`",
        f"- Verifier: `{data.verifier}`" if data.verifier else
        "- Verifier: none in the store, so "
        f"{', '.join(f'`{name}`' for name, m in METHODS.items() if m.needs_verifier)} are left out",
        f"- Problems with a gold answer: {len(data.problem_ids)}; candidates per problem and language: {counts}",
        f"- Tasks: {', '.join(data.tasks)} (`--tasks`)" if data.tasks is not None else
        "- Tasks: every task in the store (`--tasks` chooses, as lm-eval's `--tasks` does)",
        f"- Pool: `{':'.join(report.pool)}` (its order decides which languages get a budget's extra samples); "
        f"target languages: {', '.join(report.targets)}"
        + ("" if report.options.targets else " (the runs' targets; `--targets` chooses)" if data.tasks is not None
           else " (every stored language and target; `--targets` chooses)"),
        "- Budgets: " + (f"every table at n = {report.budget} (`--budget`)" if report.fixed else
                         "each table gives the `n` it uses: by default each method, pool and scope at its largest "
                         f"budget, the samples a run spent (the pool's: n = {report.budget}); `--budget N` puts "
                         "every table at N"),
        "",
        "## How to read this",
        "",
        "- Budget `n` is the number of samples per problem. Cross-lingual methods "
        f"({_names(name for name, m in METHODS.items() if not m.target_only)}, {_names(CROSS_BASELINES)}) spread "
        "it over the pool as `plan_samples` does (language `i % L` gets sample `i`); target-language methods "
        f"({_names(name for name, m in METHODS.items() if m.target_only)}, {_names(TARGET_BASELINES)}) spend it "
        "in the target language.",
        "- Every number averages over *all* subsets of the stored candidates of that shape, not the first `n`: "
        "`random`, `oracle` (pass@n, the unbiased estimator) and the top-ranked picks "
        f"({_names(name for name, m in METHODS.items() if m.vote is None)}: best-of-n order statistics, ties "
        "broken by `selection.py`'s rule) are **exact**; the votes "
        f"({_names(name for name in METHODS if estimator(name) == MONTE_CARLO)}) are **Monte Carlo** over "
        f"{options.mc_samples} random draws per problem (seed {options.seed}), shown as accuracy ± 1.96 standard "
        "errors.",
        "- Methods that need no verifier are computed without it (ties by canonical order), as their presets run.",
        "- Selections: " + "; ".join(f"`{name}`: {m.summary}" for name, m in METHODS.items()) + ".",
        "- `average` is the mean over target languages. Accuracies are in %.",
        "",
        "## Accuracy vs budget (average over target languages)",
        "",
    ]
    budgets = _summary_budgets(top)
    lines += _table(["method", *(f"n={n}" for n in budgets)],
                    ([m, *(_percent(curves(AVERAGE, m, n)) for n in budgets)] for m in methods))
    lines += _per_target_table(report, curves, methods)
    lines += cost_markdown(report)
    scopes = list(dict.fromkeys(r["scope"] for r in report.pass_at_k))
    if report.fixed:
        lines += [f"## pass@k within each language vs across the pool (k = {report.budget})", ""]
        lines += _table(["scope", f"pass@{report.budget}", "problems"],
                        ([s, *(("–", "–") if (c := pass_at_k(s, report.budget)) is None
                               else (f"{100 * c['pass_at_k']:.1f}", str(c["problems"])))] for s in scopes))
    else:
        lines += ["## pass@k within each language vs across the pool (each at its largest k: all the samples the "
                  "store holds there)", ""]
        lines += _table(["scope", "k", "pass@k", "problems"],
                        ([s, str(k), f"{100 * c['pass_at_k']:.1f}", str(c["problems"])]
                         for s in scopes if (c := pass_at_k(s, k := report.scope_budget(s))) is not None))
    ablation_methods = _methods(report.ablation)
    pools = {r["pool"]: (r["kind"], r["problems"]) for r in report.ablation}
    if report.fixed:
        lines += [f"## Pool ablations (average over target languages, n = {report.budget})", ""]
    else:
        lines += ["## Pool ablations (average over target languages, each pool at its largest budget `n`: all its "
                  f"stored samples; the Monte Carlo votes at n = {report.ablation_budget}, the budget every pool "
                  f"reaches, where a cell says so; `{ABLATION_CSV}` has every budget computed)", ""]

    def ablation_cell(pool: str, method: str) -> str:
        n = report.ablation_cell_budget(pool, method)
        text = _percent(None if n is None else ablation(pool, AVERAGE, method, n))
        return text if n is None or n == report.pool_budget(pool) else f"{text} (n={n})"

    lines += _table(["pool", "kind", "problems", "n", *ablation_methods],
                    ([f"`{pool}`", kind, str(problems), str(report.pool_budget(pool)),
                      *(ablation_cell(pool, m) for m in ablation_methods)]
                     for pool, (kind, problems) in pools.items()))
    if report.selected:
        lines += [f"## Languages the verifier picks (`cross_orm`, n = {report.budget}"
                  + ("" if report.fixed else ": the pool's largest budget") + ", share in %)", ""]
        lines += _table(["target", *report.pool],
                        ([t, *(f"{100 * selected(t, report.budget, code)['share']:.1f}" for code in report.pool)]
                         for t in [*report.targets, AVERAGE]))
    if report.notes:
        lines += ["## Notes", "", *(f"- {note}" for note in report.notes), ""]
    lines += ["## Files", "", f"- `{CURVES_CSV}`: accuracy per pool, target, method and budget (with estimator, se)",
              f"- `{ABLATION_CSV}`: the same for every ablation pool, each up to its largest budget",
              f"- `{PASS_AT_K_CSV}`: pass@k within each language and across the pool",
              f"- `{SELECTED_CSV}`: distribution of the language `cross_orm` picks, per target and budget",
              f"- `{LANGUAGE_COSTS_CSV}`, `{TOKEN_CURVES_CSV}`, `{COMPUTE_MATCHED_CSV}`: generated tokens per language, "
              "per budget curve point and at greedy's multiples",
              *(f"- `{name}`" for name in (*PLOTS, TOKENS_PLOT)), ""]
    return "\n".join(lines)


def _per_target_table(report: Report, curves: _Lookup, methods: Sequence[str]) -> list[str]:
    """Accuracy per target and method at ``--budget``, or each method at its own largest budget (the n a run of
    that method spent), a cell at another n saying so."""
    targets = [*report.targets, AVERAGE]
    if report.fixed:
        lines = [f"## Per target language at n = {report.budget}", ""]
        return lines + _table(["target", *methods],
                              ([t, *(_percent(curves(t, m, report.budget)) for m in methods)] for t in targets))
    lines = ["## Per target language, each method at its largest budget (`n` in the header: the samples a run of "
             "that method spent; a cell at another n says so; `--budget N` puts every method at N)", ""]
    budgets = {m: report.method_budget(m) for m in methods}

    def cell(target: str, method: str) -> str:
        n = report.cell_budget(target, method)
        text = _percent(None if n is None else curves(target, method, n))
        return text if n is None or n == budgets[method] else f"{text} (n={n})"

    return lines + _table(["target", *(f"{m} (n={budgets[m]})" for m in methods)],
                          ([t, *(cell(t, m) for m in methods)] for t in targets))


def _offset_x(values: np.ndarray, index: int, count: int, log: bool) -> np.ndarray:
    """``values`` nudged sideways by the line's rank among ``count`` lines (at most a tenth of a step), so that
    equal points of different lines sit side by side instead of on top of each other."""
    shift = (index - (count - 1) / 2) * min(0.1, 0.5 / max(count, 1))
    return values * 2 ** shift if log else values + shift


def plots(report: Report) -> dict[str, bytes]:
    """PNG bytes of every plot, by file name."""
    return {name: _figure_bytes(fig) for name, fig in figures(report).items()}


def figures(report: Report) -> dict:
    """Every plot as a matplotlib figure, by file name (the caller closes them)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    averaged = [r for r in report.curves if r["target"] == AVERAGE]
    methods = _methods(averaged)
    sizes = _size_note(report)
    log_budget = max(r["n"] for r in averaged) > 32
    fig, ax = plt.subplots(figsize=(8, 5))
    for index, method in enumerate(methods):
        rows = sorted((r for r in averaged if r["method"] == method), key=lambda r: r["n"])
        n = np.array([r["n"] for r in rows], dtype=float)
        accuracy = np.array([r["accuracy"] for r in rows]) * 100
        style = "--" if method.endswith(("random", "oracle")) else "-"
        x = _offset_x(n, index, len(methods), log_budget)
        (line,) = ax.plot(x, accuracy, style, label=method, marker=_MARKERS[index % len(_MARKERS)],
                          markersize=5 if len(n) <= 20 else 2, markerfacecolor="none", alpha=0.85)
        if estimator(method) == MONTE_CARLO:
            band = np.array([r["se"] for r in rows]) * 100 * _Z95
            ax.fill_between(x, accuracy - band, accuracy + band, color=line.get_color(), alpha=0.15)
    if log_budget:
        ax.set_xscale("log", base=2)
    ax.set(xlabel="budget n (samples per problem; lines nudged sideways where they meet)", ylabel="accuracy (%)",
           title=f"Accuracy vs budget, average over target languages\n{sizes}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    out[PLOTS[0]] = fig

    curves = _Lookup(report.curves, "target", "method", "n")
    methods = _methods(report.curves)
    targets = [*report.targets, AVERAGE]
    grid = np.full((len(targets), len(methods)), np.nan)
    for i, target in enumerate(targets):
        for j, method in enumerate(methods):
            n = report.cell_budget(target, method)
            cell = None if n is None else curves(target, method, n)
            grid[i, j] = np.nan if cell is None else 100 * cell["accuracy"]
    fig, ax = plt.subplots(figsize=(1.1 * len(methods) + 2, 0.45 * len(targets) + 1.5))
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    for (i, j), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7,
                    color="white" if value < np.nanmean(grid) else "black")
    names = methods if report.fixed else [f"{m} (n={report.method_budget(m)})" for m in methods]
    ax.set_xticks(range(len(methods)), names, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(targets)), targets, fontsize=8)
    at = f"at n = {report.budget}" if report.fixed else "each method at its largest n"
    ax.set_title(f"Accuracy (%) per target language, {at}\n{sizes}")
    fig.colorbar(image, ax=ax)
    out[PLOTS[1]] = fig

    fig, ax = plt.subplots(figsize=(8, 0.4 * len(targets) + 1.5))
    if report.selected:
        left = np.zeros(len(targets))
        selected = _Lookup(report.selected, "target", "n", "lang")
        colors = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(report.pool), 2)))
        for code, color in zip(report.pool, colors):
            share = np.array([100 * selected(t, report.budget, code)["share"] for t in targets])
            ax.barh(targets, share, left=left, label=code, color=color)
            left += share
        ax.invert_yaxis()
        ax.legend(ncol=min(len(report.pool), 6), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15))
        ax.set(xlabel="share of cross_orm picks (%)", xlim=(0, 100))
    else:
        ax.text(0.5, 0.5, "no verifier scores in the store", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(f"Language of the candidate the verifier picks (cross_orm, n = {report.budget})\n{sizes}")
    out[PLOTS[2]] = fig

    scopes = list(dict.fromkeys(r["scope"] for r in report.pass_at_k))
    log_k = max(r["k"] for r in report.pass_at_k) > 32
    fig, ax = plt.subplots(figsize=(8, 5))
    for index, scope in enumerate(scopes):
        rows = [r for r in report.pass_at_k if r["scope"] == scope]
        pool = scope.startswith("pool")
        x = _offset_x(np.array([r["k"] for r in rows], dtype=float), index, len(scopes), log_k)
        ax.plot(x, [100 * r["pass_at_k"] for r in rows], "-" if pool else "--", linewidth=2.5 if pool else 1,
                marker=_MARKERS[index % len(_MARKERS)], markersize=4, markerfacecolor="none", label=scope)
    if log_k:
        ax.set_xscale("log", base=2)
    ax.set(xlabel="k (samples)", ylabel="pass@k (%)",
           title=f"pass@k within each language vs across the pool\n{sizes}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    out[PLOTS[3]] = fig

    ablation_methods = _methods(report.ablation)
    pools = list(dict.fromkeys(r["pool"] for r in report.ablation))
    ablation = _Lookup(report.ablation, "pool", "target", "method", "n")
    height = 0.8 / max(len(ablation_methods), 1)
    fig, ax = plt.subplots(figsize=(8, (0.2 + 0.12 * len(ablation_methods)) * len(pools) + 2))
    for index, method in enumerate(ablation_methods):
        cells = [ablation(p, AVERAGE, method, report.ablation_cell_budget(p, method)) for p in pools]
        values = [np.nan if c is None else 100 * c["accuracy"] for c in cells]
        ax.barh(np.arange(len(pools)) + (index - (len(ablation_methods) - 1) / 2) * height, values, height,
                label=method)
    ax.set_yticks(range(len(pools)), [f"{p} (n={report.pool_budget(p)})" for p in pools], fontsize=7)
    ax.invert_yaxis()
    at = (f"n = {report.budget}" if report.fixed else
          f"each pool at its largest n (votes at n = {report.ablation_budget})")
    ax.set(xlabel="accuracy (%)", title=f"Pool ablations, average over targets, {at}\n{sizes}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    out[PLOTS[4]] = fig
    return out


#: Written into every report folder: a folder holding other files is never replaced.
REPORT_MARKER = ".bestofl-report"


def check_out_dir(out_dir: str) -> None:
    """Fail before any computation if ``out_dir`` cannot become a report folder: it is a file, holds files that
    are not a previous report's, or its parent cannot be written."""
    out_dir = os.path.abspath(out_dir)
    if os.path.lexists(out_dir):
        if not os.path.isdir(out_dir) or os.path.islink(out_dir):
            raise ValueError(f"--out {out_dir} exists and is not a folder; give a new folder for the report.")
        if os.listdir(out_dir) and not os.path.exists(os.path.join(out_dir, REPORT_MARKER)):
            raise ValueError(f"--out {out_dir} holds files that are not a bestofl report; give a new or empty folder "
                             "(a previous report's folder is replaced whole).")
    parent = os.path.dirname(out_dir)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out_dir}: cannot write in {parent}; give a folder you can write to.")


def _staging_names(out_dir: str) -> tuple[str, str]:
    parent, name = os.path.split(os.path.abspath(out_dir))
    return os.path.join(parent, f".{name}.{os.getpid()}.tmp"), os.path.join(parent, f".{name}.{os.getpid()}.old")


def remove_stale_staging(out_dir: str) -> None:
    """Delete the staging and replaced folders (``.NAME.PID.tmp``/``.old``) that a killed writer left beside
    ``out_dir`` (those of a writer that is still running are kept)."""
    parent, name = os.path.split(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        return
    for entry in os.listdir(parent):
        stem, dot, kind = entry.rpartition(".")
        prefix, _, pid = stem.rpartition(".")
        if (dot and kind in ("tmp", "old") and prefix == f".{name}" and pid.isdigit()
                and (int(pid) == os.getpid() or not process_running(int(pid)))):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def write_report(report: Report, out_dir: str) -> list[str]:
    """Write every table, the summary and the plots as one folder (:func:`write_folder`); return the paths."""
    return write_folder({
        CURVES_CSV: _csv_bytes(report.curves),
        ABLATION_CSV: _csv_bytes(report.ablation),
        PASS_AT_K_CSV: _csv_bytes(report.pass_at_k),
        SELECTED_CSV: _csv_bytes(report.selected),
        SUMMARY_MD: summary_markdown(report).encode("utf-8"),
        **plots(report),
        **cost_files(report),
    }, out_dir)


def write_folder(files: dict[str, bytes], out_dir: str) -> list[str]:
    """Write ``files`` into a staging folder beside ``out_dir``, then swap it in whole (a previous report there
    is replaced, never mixed with the new files); return the paths written."""
    check_out_dir(out_dir)
    out_dir = os.path.abspath(out_dir)
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    remove_stale_staging(out_dir)
    staging, old = _staging_names(out_dir)
    os.mkdir(staging)
    try:
        for name, data in {**files, REPORT_MARKER: b"bestofl-report\n"}.items():
            with open(os.path.join(staging, name), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        if os.path.exists(out_dir):
            os.rename(out_dir, old)
        os.rename(staging, out_dir)
    except BaseException:
        if os.path.exists(old) and not os.path.exists(out_dir):
            os.rename(old, out_dir)  # put the previous report back
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return [os.path.join(out_dir, name) for name in files]
