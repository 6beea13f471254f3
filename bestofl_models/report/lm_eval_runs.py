"""lm-eval runs as ``bestofl-report compare`` reads them: every ``results_<stamp>.json`` under an OUTPUT_PATH with the
per-doc scores of the ``samples_<task>_<stamp>.jsonl`` beside it, and a short label per run."""

from __future__ import annotations

import collections
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bestofl_tasks.languages import LANGUAGES

from ..generation.embedded import ALIASES
from ..harness.presets import PRESETS


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
