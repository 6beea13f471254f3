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
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bestofl_tasks.languages import LANGUAGES

from ..config import PRESETS
from ..embedded import ALIASES
from .compare_render import (
    COMPARE_CSV,
    CSV_FIELDS,
    OVERALL,
    PLOT_PNG,
    SUMMARY_MD,
    csv_bytes,
    plot_png,
    summary_markdown,
)
from .paired import discordant, is_binary, mcnemar_exact, paired_bootstrap
from .render import check_out_dir, write_folder

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # lm-eval writes custom filter functions as "<function f at 0x..>"


class MissingSamplesError(ValueError):
    """A results file whose per-doc samples file is not beside it (lm-eval wrote it without ``--log_samples``)."""


@dataclass(frozen=True)
class TaskRun:
    """One task of one run: its primary metric per doc, and what identifies each doc."""

    task: str
    lang: str
    metric: str
    filter: str
    setup: dict[str, str]  # normalized metric_list / filter_list, compared across runs
    values: dict[int, float]  # doc_id -> metric value
    docs: dict[int, str]  # doc_id -> doc_hash (the target where lm-eval wrote none)


@dataclass
class Run:
    path: str
    results: dict
    tasks: dict[str, TaskRun]
    label: str = field(default="")


# ------------------------------------------------------------------------------------------------ reading


def find_results(paths: Sequence[str]) -> list[str]:
    """Every lm-eval results file in ``paths`` (results files, or folders searched recursively)."""
    found: list[str] = []
    for path in paths:
        if os.path.isfile(path):
            found.append(path)
        elif os.path.isdir(path):
            inside = sorted(os.path.join(d, f) for d, _, files in os.walk(path) for f in files
                            if f.startswith("results_") and f.endswith(".json"))
            if not inside:
                raise ValueError(f"no results_*.json under {path}: give folders lm-eval wrote with --output_path")
            found += inside
        else:
            raise ValueError(f"{path}: no such file or folder")
    return list(dict.fromkeys(os.path.abspath(p) for p in found))


def _language(task: str, rows: list[dict]) -> str:
    doc = rows[0].get("doc") if rows else None
    if isinstance(doc, dict) and isinstance(doc.get("lang"), str):
        return doc["lang"]
    suffix = task.rsplit("_", 1)[-1]
    return suffix if suffix in LANGUAGES else ""


def _task_run(samples_path: str, task: str, config: dict) -> TaskRun:
    if not os.path.isfile(samples_path):
        raise MissingSamplesError(f"{samples_path} is missing: compare needs lm-eval's per-doc samples; "
                                  "re-run with --log_samples (lm-eval writes them beside results_*.json)")
    rows = []
    with open(samples_path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{samples_path} line {number} is not JSON ({exc}); compare needs the samples file "
                                 "lm-eval wrote with --log_samples, unedited") from None
            if not isinstance(row, dict) or "doc_id" not in row:
                raise ValueError(f"{samples_path} line {number} has no doc_id; compare needs the per-doc rows "
                                 "lm-eval writes with --log_samples (each names its doc_id)")
            rows.append(row)
    metrics, filters = config.get("metric_list") or [], config.get("filter_list") or []
    if metrics:
        metric = metrics[0]["metric"]
    else:  # a task without a metric_list scores with its output type's defaults; each row lists them
        metric = next(iter(rows[0].get("metrics") or []), None) if rows else None
    filter_name = filters[0]["name"] if filters else "none"
    rows = [row for row in rows if row.get("filter", "none") == filter_name]
    values, docs = {}, {}
    for row in rows:
        doc_id, value = row["doc_id"], row.get(metric)
        if not isinstance(value, (int, float)):
            raise ValueError(f"{samples_path}: doc {doc_id} has no number under {metric!r} (filter {filter_name!r}); "
                             "compare needs a per-doc metric such as exact_match or acc")
        if doc_id in values:
            raise ValueError(f"{samples_path}: doc {doc_id} appears twice under filter {filter_name!r}")
        values[doc_id] = float(value)
        docs[doc_id] = row.get("doc_hash") or json.dumps(row.get("target"), sort_keys=True)
    setup = {key: _ADDRESS.sub("", json.dumps(config.get(key), sort_keys=True, default=str))
             for key in ("metric_list", "filter_list")}
    return TaskRun(task, _language(task, rows), str(metric), filter_name, setup, values, docs)


def load_run(path: str) -> Run:
    """A results file and the samples files of its tasks."""
    name = os.path.basename(path)
    if not (name.startswith("results_") and name.endswith(".json")):
        raise ValueError(f"{path} is not an lm-eval results_<date>.json file")
    stamp = name[len("results_"):-len(".json")]
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    configs = results.get("configs") if isinstance(results, dict) else None
    if not configs:
        raise ValueError(f"{path} holds no task configs; is it a results file lm-eval wrote?")
    directory = os.path.dirname(path)
    tasks = {task: _task_run(os.path.join(directory, f"samples_{task}_{stamp}.jsonl"), task, config)
             for task, config in sorted(configs.items())}
    return Run(path, results, tasks)


def load_runs(paths: Sequence[str]) -> tuple[list[Run], list[str]]:
    """The runs of every OUTPUT_PATH, and notes on the results files skipped.

    A folder's results file without its samples (a run made without ``--log_samples``, e.g. an earlier try in the
    same ``--output_path``) is skipped with a note when another results file of that folder has them; a folder where
    none has them, or such a results file given by name, is an error."""
    runs: list[Run] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for path in paths:
        mine, missing = [], []
        for results in find_results([path]):
            if results in seen:
                continue
            seen.add(results)
            try:
                mine.append(load_run(results))
            except MissingSamplesError as exc:
                missing.append((results, exc))
        if missing and not mine:
            if len(missing) == 1:
                raise missing[0][1]
            raise ValueError(f"none of the {len(missing)} results files under {path} has lm-eval's per-doc samples "
                             "(samples_<task>_<date>.jsonl beside it); re-run with --log_samples")
        skipped += [f"skipped {results}: no samples beside it ({os.path.basename(str(exc).split(' is missing')[0])} "
                    "is missing; lm-eval writes it only with --log_samples)" for results, exc in missing]
        runs += mine
    return runs, skipped


# ------------------------------------------------------------------------------------------------ labels


def _short(name: object) -> str:
    """A local path's folder name; a Hub id as it is."""
    text = str(name)
    return os.path.basename(text.rstrip("/")) if text.startswith(("/", "./", "../", "~")) else text


def describe(results: dict) -> tuple[str, dict]:
    """A run's label from lm-eval's model info, and the details that may tell two equal labels apart."""
    config = results.get("config") or {}
    args = config.get("model_args") or {}
    if isinstance(args, str):
        args = dict(item.split("=", 1) for item in args.split(",") if "=" in item)
    block = config.get("bestofl") or {}
    if block:
        # the embedded alias as given (pretrained=smollm2-135m), as lm-eval's own runs of it are labelled
        given = args.get("pretrained")
        parts = [block["preset"], given if given in ALIASES else _short(block["pretrained"])]
        if block.get("verifier"):
            parts.append(f"verifier={_short(block['verifier'])}")
        preset = PRESETS.get(block["preset"])
        if preset is not None and block.get("selection") != preset.selection:
            parts.append(f"selection={block['selection']}")
        parts.append(f"n={block['n']}")
        if isinstance(block.get("pool"), list):
            parts.append("pool=" + ":".join(block["pool"]))
    else:
        name = args.get("pretrained") or args.get("model") or results.get("model_name")
        parts = [str(config.get("model", "unknown")), *([_short(name)] if name else [])]
    details = {**{f"model_args.{k}": v for k, v in args.items()}, **{f"bestofl.{k}": v for k, v in block.items()},
               "gen_kwargs": config.get("gen_kwargs"), "limit": config.get("limit"), "n-shot": results.get("n-shot"),
               "chat_template": results.get("chat_template_sha"), "system_instruction":
               results.get("system_instruction_sha"), "fewshot_as_multiturn": results.get("fewshot_as_multiturn")}
    return " ".join(parts), details


def _value(value: object) -> str:
    text = _short(value) if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def unique_labels(runs: Sequence[Run]) -> list[str]:
    """Labels from model info; equal ones get the details that differ, then the results file's date."""
    described = [describe(run.results) for run in runs]
    labels = [label for label, _ in described]
    for label, count in collections.Counter(labels).items():
        group = [i for i, other in enumerate(labels) if other == label] if count > 1 else []
        keys = sorted({key for i in group for key in described[i][1]})
        differing = [k for k in keys if len({json.dumps(described[i][1].get(k), default=str) for i in group}) > 1]
        for i in group:
            extra = dict.fromkeys(f"{k.rsplit('.', 1)[-1]}={_value(described[i][1].get(k))}" for k in differing)
            labels[i] = " ".join([label, *extra])
    for fallback in (lambda run: os.path.basename(run.path)[len("results_"):-len(".json")], lambda run: run.path):
        counts = collections.Counter(labels)
        labels = [f"{label} @{fallback(run)}" if counts[label] > 1 else label for label, run in zip(labels, runs)]
    return labels


def pick_baseline(runs: Sequence[Run], choice: str | None) -> int:
    """Index of the baseline run: a label, or a position among the runs counted from 1 (default: the first)."""
    if choice is None:
        return 0
    labels = [run.label for run in runs]
    if choice in labels:
        return labels.index(choice)
    if choice.isdigit() and 1 <= int(choice) <= len(runs):
        return int(choice) - 1
    listing = "; ".join(f"{i} = {label!r}" for i, label in enumerate(labels, 1))
    raise ValueError(f"--baseline {choice!r} names no run; give a label or a position: {listing}")


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
    files = {COMPARE_CSV: csv_bytes(rows), PLOT_PNG: plot_png(rows, runs[baseline].label),
             SUMMARY_MD: summary_markdown(runs, baseline, rows, notes, iters=args.bootstrap_iters,
                                          seed=args.seed).encode("utf-8")}
    paths = write_folder(files, args.out)
    print(f"bestofl-report compare: {len(runs)} runs, baseline {runs[baseline].label!r} -> {len(paths)} files in "
          f"{args.out}", file=sys.stderr)
    for note in notes[len(skipped):]:  # the skipped files were warned about as they were read
        print(f"note: {note}", file=sys.stderr)
    return 0
