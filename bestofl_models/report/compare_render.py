"""Write a ``bestofl-report compare`` result: ``compare.csv``, ``summary.md`` and one PNG (matplotlib, Agg).

The folder is written by ``render.write_folder`` (staged beside ``--out``, swapped in whole).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
import numpy as np

from .lm_eval_runs import Run
from .render import _figure_bytes, _table

COMPARE_CSV = "compare.csv"
SUMMARY_MD = "summary.md"
PLOT_PNG = "difference_to_baseline.png"
RUN_COSTS_CSV = "run_costs.csv"
RUN_COSTS_FIELDS = ("run", "docs", "accuracy", "gen_tokens", "unknown_candidates", "verifier_tokens", "seconds")
OVERALL = "overall"
CSV_FIELDS = ("task", "lang", "metric", "run", "is_baseline", "docs", "accuracy", "shared_docs", "baseline_accuracy",
              "run_accuracy", "difference", "ci_low", "ci_high", "baseline_only_correct", "run_only_correct",
              "mcnemar_p")


def _pct(value: object, signed: bool = False) -> str:
    return "–" if value == "" else f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def _paired_cells(row: dict) -> list[str]:
    p = "–" if row["mcnemar_p"] == "" else f"{row['mcnemar_p']:.3g}"
    interval = f"[{_pct(row['ci_low'], True)}, {_pct(row['ci_high'], True)}]"
    return [row["task"], row["lang"], str(row["shared_docs"]), _pct(row["baseline_accuracy"]),
            _pct(row["run_accuracy"]), f"{_pct(row['difference'], True)} {interval}",
            f"{row['baseline_only_correct']} / {row['run_only_correct']}", p]


def _count(value: object) -> str:
    return "unknown" if value is None or value == "" else f"{value:,}" if isinstance(value, int) else str(value)


def _cost_table(costs: Sequence[dict]) -> list[str]:
    """Each run's accuracy beside its cost (from its results' ``config.bestofl.cost``; unknown without one)."""
    lines = ["## Accuracy and cost per run (every doc it scored)", "",
             "- Generated tokens: of every candidate the answers used, made in that run or read from the store "
             "(`+ N unknown`: candidates stored before bestofl recorded tokens); seconds: every stage. `unknown`: the "
             "results carry no `config.bestofl.cost` (e.g. lm-eval's `hf`).", ""]

    def generated(row: dict) -> str:
        text = _count(row["gen_tokens"])
        return f"{text} + {row['unknown_candidates']} unknown" if row["unknown_candidates"] else text

    return lines + _table(["run", "docs", "accuracy %", "generated tokens", "verifier tokens", "seconds"],
                          ([f"`{r['run']}`", str(r["docs"]), _pct(r["accuracy"]), generated(r),
                            _count(r["verifier_tokens"]), _count(r["seconds"])] for r in costs))


def run_costs_csv(costs: Sequence[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RUN_COSTS_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(costs)
    return buffer.getvalue().encode("utf-8")


def summary_markdown(runs: Sequence[Run], baseline: int, rows: list[dict], notes: list[str], *, iters: int,
                     seed: int, costs: Sequence[dict] = ()) -> str:
    base = runs[baseline].label
    lines = [f"# Paired comparison against `{base}`", "", "## Runs", ""]
    lines += _table(["run", "results file", "tasks", "docs"],
                    ([f"`{run.label}`" + (" (baseline)" if i == baseline else ""), run.path, str(len(run.tasks)),
                      str(sum(len(t.values) for t in run.tasks.values()))] for i, run in enumerate(runs)))
    lines += [
        "## How to read this",
        "",
        ("- A task's score is its primary metric per doc, read from lm-eval's samples files (column `metric` of "
         f"`{COMPARE_CSV}`: `metric,filter`); `accuracy` is its mean over the docs the run scored. `overall` pools "
         "every scored (task, doc)."),
        ("- Differences (run − baseline, percentage points) use only the docs both runs scored (`shared_docs`), "
         f"with a 95% paired bootstrap interval ({iters} resamples of the shared docs, seed {seed}; `overall` "
         "resamples within each task)."),
        ("- `p` is the exact McNemar test: two-sided binomial test on the docs exactly one of the two runs got "
         "right (`b`: baseline only, `c`: run only)."),
        "",
        "## Accuracy (%) per task, on each run's own docs (docs in parentheses)",
        "",
    ]
    cell = {(r["task"], r["run"]): r for r in rows}
    lang = {r["task"]: r["lang"] for r in rows}
    lines += _table(["task", "lang", *(f"`{run.label}`" for run in runs)],
                    ([task, lang[task], *(f"{_pct(c['accuracy'])} ({c['docs']})" if (c := cell.get((task, run.label)))
                                          else "–" for run in runs)] for task in lang))
    lines += _cost_table(costs) if costs else []
    for i, run in enumerate(runs):
        if i != baseline:
            lines += [f"## `{run.label}` vs `{base}`", ""]
            lines += _table(["task", "lang", "shared docs", "baseline %", "run %", "difference [95% CI]", "b / c", "p"],
                            (_paired_cells(r) for r in rows if r["run"] == run.label and r["shared_docs"]))
    if notes:
        lines += ["## Notes", "", *(f"- {note}" for note in notes), ""]
    lines += ["## Files", "", f"- `{COMPARE_CSV}`: one row per task and run (accuracies as fractions)",
              f"- `{RUN_COSTS_CSV}`: one row per run, accuracy and cost (empty: unknown)",
              f"- `{PLOT_PNG}`: difference to the baseline per task/language with its interval", ""]
    return "\n".join(lines)


def _shared_docs(compared: list[dict]) -> int:
    """Docs behind the comparison, for the largest run: its ``overall`` row's count, or with one task (no
    ``overall`` row) the sum of its task rows."""
    totals: dict[str, int] = {}
    for run in dict.fromkeys(r["run"] for r in compared):
        mine = [r for r in compared if r["run"] == run]
        overall = [r["shared_docs"] for r in mine if r["task"] == OVERALL]
        totals[run] = overall[0] if overall else sum(r["shared_docs"] for r in mine)
    return max(totals.values(), default=0)


def plot_figure(rows: list[dict], baseline_label: str):
    """The matplotlib figure of :func:`plot_png` (the caller closes it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    compared = [r for r in rows if not r["is_baseline"] and r["shared_docs"]]
    tasks = list(dict.fromkeys(r["task"] for r in compared))
    runs = list(dict.fromkeys(r["run"] for r in compared))
    # constrained layout keeps the legend (below, outside the axes) clear of the x-axis label
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(tasks) * len(runs) ** 0.5 + 2 + 0.25 * len(runs)),
                           layout="constrained")
    for j, run in enumerate(runs):
        mine = [r for r in compared if r["run"] == run]
        offset = (j - (len(runs) - 1) / 2) * 0.7 / len(runs)
        x = np.array([100 * r["difference"] for r in mine])
        low, high = np.array([100 * r["ci_low"] for r in mine]), np.array([100 * r["ci_high"] for r in mine])
        ax.errorbar(x, [tasks.index(r["task"]) + offset for r in mine], xerr=[x - low, high - x], fmt="o",
                    capsize=3, label=run)
    lang = {r["task"]: r["lang"] for r in compared}
    ax.set_yticks(range(len(tasks)), [f"{t} ({lang[t]})" if lang[t] and t != OVERALL else t for t in tasks])
    ax.invert_yaxis()
    ax.axvline(0, color="grey", linewidth=1)
    if not compared:
        ax.text(0.5, 0.5, "no docs shared with the baseline", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="difference to the baseline (percentage points), 95% paired bootstrap interval",
           title=f"Paired difference to {baseline_label}\n({_shared_docs(compared)} docs shared with the baseline)")
    ax.grid(alpha=0.3, axis="x")
    if runs:
        fig.legend(fontsize=7, loc="outside lower center")
    return fig


def plot_png(rows: list[dict], baseline_label: str) -> bytes:
    """Per task/language difference to the baseline (percentage points) with its bootstrap interval."""
    return _figure_bytes(plot_figure(rows, baseline_label))


def csv_bytes(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")
