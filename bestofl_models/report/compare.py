"""``bestofl-report compare``: lm-eval runs paired doc by doc against a baseline run (never re-runs anything).

    bestofl-report compare OUTPUT_PATH [OUTPUT_PATH ...] [--out DIR] [--baseline LABEL_OR_POSITION]
                           [--seed S] [--bootstrap-iters N]

Every ``results_<stamp>.json`` under an OUTPUT_PATH (lm-eval's ``--output_path``) is one run; its per-doc scores
come from the ``samples_<task>_<stamp>.jsonl`` beside it (``--log_samples``). A task's score is its primary metric
(the first of ``metric_list``) under its first filter (``filter_list``), e.g. ``exact_match`` under ``numeric``.
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Sequence

import numpy as np

from .compare_render import (
    COMPARE_CSV,
    CSV_FIELDS,
    OVERALL,
    PLOT_PNG,
    RUN_COSTS_CSV,
    SUMMARY_MD,
    csv_bytes,
    run_costs_csv,
    plot_png,
    summary_markdown,
)
from .lm_eval_runs import Run, TaskRun, load_runs, pick_baseline, unique_labels
from .paired import discordant, is_binary, mcnemar_exact, paired_bootstrap
from .render import check_out_dir, write_folder
from .run_costs import run_cost

# ------------------------------------------------------------------------------------------------ comparing


def check_setups(runs: Sequence[Run]) -> None:
    """Refuse runs that score a task differently (its metric_list or filter_list differ)."""
    for task in dict.fromkeys(task for run in runs for task in run.tasks):
        having = [run for run in runs if task in run.tasks]
        for other in having[1:]:
            for key in ("metric_list", "filter_list"):
                mine, theirs = having[0].tasks[task].setup[key], other.tasks[task].setup[key]
                if mine != theirs:
                    raise ValueError(
                        f"cannot compare {task}: its {key} differs between {having[0].label!r} ({having[0].path}) "
                        f"and {other.label!r} ({other.path}): {mine[:300]} vs {theirs[:300]}. Compare runs that "
                        "score the task the same way (same task version, metric and filter settings).")


def shared_docs(base: TaskRun, run: TaskRun, base_label: str, run_label: str) -> list[int]:
    """Doc ids both runs scored; a doc id naming different docs in the two runs is refused."""
    ids = sorted(base.values.keys() & run.values.keys())
    for doc_id in ids:
        if base.docs[doc_id] != run.docs[doc_id]:
            raise ValueError(f"cannot compare {run.task}: doc {doc_id} is not the same doc in {base_label!r} and "
                             f"{run_label!r} (doc_hash differs); the runs read different data (e.g. another dataset "
                             "version or BESTOFL_DATA_DIR); compare runs evaluated on the same docs.")
    return ids


def paired_row(base: np.ndarray, run: np.ndarray, *, iters: int, seed: int, strata=None) -> dict:
    """Paired numbers on the shared docs (empty strings where there is none, or no 0/1 outcome for McNemar)."""
    row = {"shared_docs": len(base), **dict.fromkeys(CSV_FIELDS[CSV_FIELDS.index("shared_docs") + 1:], "")}
    if len(base):
        low, high = paired_bootstrap(base, run, iters=iters, seed=seed, strata=strata)
        row.update(baseline_accuracy=float(base.mean()), run_accuracy=float(run.mean()),
                   difference=float(run.mean() - base.mean()), ci_low=low, ci_high=high)
        if is_binary(base) and is_binary(run):
            b, c = discordant(base, run)
            row.update(baseline_only_correct=b, run_only_correct=c, mcnemar_p=mcnemar_exact(b, c))
    return row


def _mean(values: np.ndarray) -> float | str:
    return float(values.mean()) if len(values) else ""


def compare_runs(runs: Sequence[Run], baseline: int, *, iters: int = 10_000, seed: int = 0) -> tuple[list, list]:
    """CSV rows (per task and run, then overall) and notes (shared-doc subsets, tasks a run lacks)."""
    base = runs[baseline]
    tasks = list(dict.fromkeys([*base.tasks, *(task for run in runs for task in run.tasks)]))
    rows, notes = [], []
    own = collections.defaultdict(list)  # run index -> its values per task
    pairs = collections.defaultdict(list)  # run index -> (task index, baseline values, run values) on shared docs
    for t, task in enumerate(tasks):
        for i, run in enumerate(runs):
            mine = run.tasks.get(task)
            if mine is None:
                if task in base.tasks:
                    notes.append(f"{task}: {run.label!r} did not evaluate it.")
                continue
            values = np.array(list(mine.values.values()))
            own[i].append(values)
            row = {"task": task, "lang": mine.lang, "metric": f"{mine.metric},{mine.filter}", "run": run.label,
                   "is_baseline": i == baseline, "docs": len(values), "accuracy": _mean(values)}
            theirs = base.tasks.get(task)
            if i != baseline:
                ids = [] if theirs is None else shared_docs(theirs, mine, base.label, run.label)
                pair = (np.array([theirs.values[d] for d in ids]), np.array([mine.values[d] for d in ids]))
                row.update(paired_row(*pair, iters=iters, seed=seed))
                pairs[i].append((np.full(len(ids), t), *pair))
                if theirs is None:
                    notes.append(f"{task}: the baseline did not evaluate it, so {run.label!r} is not compared on it.")
                elif len(ids) < max(len(theirs.values), len(values)):
                    notes.append(f"{task}: {run.label!r} scored {len(values)} docs and the baseline "
                                 f"{len(theirs.values)}; compared on the {len(ids)} docs both scored only.")
            rows.append(row)
    if len(tasks) > 1:
        for i, run in enumerate(runs):
            metrics = {row["metric"] for row in rows if row["run"] == run.label}
            values = np.concatenate(own[i])
            row = {"task": OVERALL, "lang": "all", "metric": metrics.pop() if len(metrics) == 1 else "mixed",
                   "run": run.label, "is_baseline": i == baseline, "docs": len(values), "accuracy": _mean(values)}
            if i != baseline:
                strata, base_values, run_values = (np.concatenate(part) for part in zip(*pairs[i]))
                row.update(paired_row(base_values, run_values, iters=iters, seed=seed, strata=strata))
            rows.append(row)
    return rows, notes


def run_cost_rows(runs: Sequence[Run], rows: Sequence[dict]) -> list[dict]:
    """One row per run: its docs and accuracy over every doc it scored (its ``overall`` row, or its one task's)
    beside what it cost (:func:`.run_costs.run_cost`)."""
    table = []
    for run in runs:
        mine = [r for r in rows if r["run"] == run.label]
        pooled = next((r for r in mine if r["task"] == OVERALL), mine[0] if len(mine) == 1 else None)
        table.append({"run": run.label, "docs": pooled["docs"] if pooled else "",
                      "accuracy": pooled["accuracy"] if pooled else "", **run_cost(run.results)})
    return table


# ------------------------------------------------------------------------------------------------ command


def compare_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bestofl-report compare",
        description="Pair lm-eval runs (--output_path ... --log_samples) doc by doc against a baseline run: "
        "accuracy, paired difference with a bootstrap interval and an exact McNemar p-value per task and overall.")
    parser.add_argument("paths", nargs="+", metavar="OUTPUT_PATH",
                        help="lm-eval output folder (every results_*.json under it is a run) or results file")
    parser.add_argument("--out", default="bestofl-compare", metavar="DIR",
                        help=f"output folder ({COMPARE_CSV}, {SUMMARY_MD}, {PLOT_PNG}; default ./bestofl-compare)")
    parser.add_argument("--baseline", metavar="LABEL_OR_POSITION",
                        help="the baseline run: its label or its position among the runs from 1 (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--bootstrap-iters", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    return parser


def main(argv: Sequence[str]) -> int:
    parser = compare_parser()
    args = parser.parse_args(argv)
    if args.bootstrap_iters < 1:
        parser.error(f"--bootstrap-iters must be >= 1, got {args.bootstrap_iters}")
    try:
        check_out_dir(args.out)
        runs, skipped = load_runs(args.paths)
        for note in skipped:
            print(f"warning: {note}", file=sys.stderr)
        for run, label in zip(runs, unique_labels(runs)):
            run.label = label
        check_setups(runs)
        baseline = pick_baseline(runs, args.baseline)
        rows, notes = compare_runs(runs, baseline, iters=args.bootstrap_iters, seed=args.seed)
        notes = [*skipped, *notes]
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    costs = run_cost_rows(runs, rows)
    files = {COMPARE_CSV: csv_bytes(rows), RUN_COSTS_CSV: run_costs_csv(costs),
             PLOT_PNG: plot_png(rows, runs[baseline].label),
             SUMMARY_MD: summary_markdown(runs, baseline, rows, notes, iters=args.bootstrap_iters,
                                          seed=args.seed, costs=costs).encode("utf-8")}
    paths = write_folder(files, args.out)
    print(f"bestofl-report compare: {len(runs)} runs, baseline {runs[baseline].label!r} -> {len(paths)} files in "
          f"{args.out}", file=sys.stderr)
    for note in notes[len(skipped):]:  # the skipped files were warned about as they were read
        print(f"note: {note}", file=sys.stderr)
    return 0
