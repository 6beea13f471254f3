"""Issue 5's done-when: a real `bestofl` run (n=8 over 4 languages), then `bestofl-report` on its store.

The tiny random generator rarely hits MGSM's gold answers, so the run is made twice on a task with the same
questions: the second time the gold answers are ones the first run produced, so pass@k is neither 0 nor 1.
The same seed and settings give the same candidates, which this also checks.
"""

from __future__ import annotations

import collections
import csv
import json
import math
import os
from pathlib import Path

import pytest

from bestofl_models.report.cli import main as report_main
from fixtures import DATA_DIR
from bestofl_tasks import data

POOL = ["en", "de", "fr", "ru"]
PROBLEMS = 4

TASK_YAML = """\
task: xling_probe
dataset_path: json
dataset_kwargs:
  data_files: {data_file}
test_split: train
output_type: generate_until
doc_to_text: !function bestofl_tasks.task_hooks.doc_to_text
doc_to_target: answer
process_results: !function bestofl_tasks.task_hooks.process_results
filter_list:
  - name: numeric
    filter:
      - function: custom
        filter_fn: !function bestofl_tasks.task_hooks.extract_answers
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
generation_kwargs:
  until: ["</s>"]
"""


def write_task(folder: Path, golds: dict[str, str] | None) -> None:
    """A task over the first MGSM problems in English, with every pool language as parallel versions."""
    os.environ[data.DATA_DIR_ENV] = str(DATA_DIR)
    docs = data.load_docs("mgsm", "en")[:PROBLEMS]
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for doc in docs:
        parallel = {lang: doc["parallel"][lang] for lang in POOL}
        gold = (golds or {}).get(doc["problem_id"], doc["answer"])
        rows.append({**doc, "parallel": parallel, "answer": gold})
    data_file = folder / "docs.jsonl"
    data_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    (folder / "xling_probe.yaml").write_text(TASK_YAML.format(data_file=data_file), encoding="utf-8")


def run_bestofl(tmp_path: Path, name: str, golds, generator: Path, verifier: Path) -> Path:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    folder = tmp_path / name
    write_task(folder / "task", golds)
    store = folder / "store"
    simple_evaluate(
        model="bestofl",
        model_args={
            "pretrained": str(generator), "verifier": str(verifier), "languages": ":".join(POOL), "n": 8,
            "store": str(store), "max_gen_toks": 24, "batch_size": 16,
        },
        tasks=["xling_probe"],
        task_manager=TaskManager(include_path=str(folder / "task")),
    )
    return store


def export(store: Path, out: Path) -> list[dict]:
    assert report_main(["export", "--store", str(store), "--out", str(out)]) in (0, None)
    return [json.loads(line) for line in out.read_bytes().splitlines()]


def unbiased_pass_at_k(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@pytest.mark.slow
def test_report_after_a_bestofl_run(tmp_path, tiny_generator_dir, tiny_verifier_dir):
    first = export(run_bestofl(tmp_path, "first", None, tiny_generator_dir, tiny_verifier_dir), tmp_path / "1.jsonl")
    answers = collections.defaultdict(list)
    for row in first:
        if row["answer"] is not None:
            answers[row["problem_id"]].append(row["answer"])
    assert answers, "the tiny generator produced no extractable answer at all"
    golds = {pid: collections.Counter(a).most_common(1)[0][0] for pid, a in answers.items()}

    store = run_bestofl(tmp_path, "second", golds, tiny_generator_dir, tiny_verifier_dir)
    rows = export(store, tmp_path / "2.jsonl")
    assert len(rows) == PROBLEMS * 8
    assert {(r["lang"], r["sample_idx"]) for r in rows} == {(lang, i) for lang in POOL for i in range(2)}
    assert sorted(r["text"] for r in rows) == sorted(r["text"] for r in first), "same seed, different samples"
    assert all(r["score"] is not None for r in rows)

    out = tmp_path / "report"
    assert report_main(["--store", str(store), "--out", str(out), "--languages", ":".join(POOL)]) in (0, None)
    for name in ("budget_curves.csv", "pass_at_k.csv", "selected_language.csv", "pool_ablation.csv", "summary.md"):
        assert (out / name).stat().st_size > 0, name
    pngs = list(out.glob("*.png"))
    assert len(pngs) >= 3 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)

    curves = list(csv.DictReader((out / "budget_curves.csv").open(encoding="utf-8")))
    budgets = collections.defaultdict(set)
    for row in curves:
        budgets[row["method"]].add(int(row["n"]))
    for method in ("cross_orm", "cross_self_consistency", "weighted_vote", "cross_oracle", "cross_random"):
        assert budgets[method] == set(range(1, 9)), method
    for method in ("multi_orm", "self_consistency", "oracle", "random"):
        assert budgets[method] == {1, 2}, method  # 2 samples per language in the store

    # pass@k per language and across the pool, recomputed from the export with the unbiased estimator
    by_scope = collections.defaultdict(lambda: collections.defaultdict(lambda: [0, 0]))
    for r in rows:
        for scope in (r["lang"], "pool"):
            counts = by_scope[scope][r["problem_id"]]
            counts[0] += 1
            counts[1] += bool(r["correct"])
    reported = {(row["scope"], int(row["k"])): float(row["pass_at_k"])
                for row in csv.DictReader((out / "pass_at_k.csv").open(encoding="utf-8"))}
    checked = 0
    for (scope, k), value in reported.items():
        if scope not in by_scope or scope == "pool":
            continue
        problems = by_scope[scope].values()
        expected = sum(unbiased_pass_at_k(n, c, k) for n, c in problems) / len(problems)
        assert value == pytest.approx(expected, abs=1e-9), (scope, k)
        checked += 1
    assert checked == len(POOL) * 2

    # across the pool, a budget k is spread like plan_samples: language i gets k // L + (i < k % L) samples
    for k in range(1, 9):
        per_problem = []
        for pid in by_scope["pool"]:
            miss = 1.0
            for i, lang in enumerate(POOL):
                n, c = by_scope[lang][pid]
                taken = k // len(POOL) + (i < k % len(POOL))
                miss *= math.comb(n - c, taken) / math.comb(n, taken)
            per_problem.append(1.0 - miss)
        expected = sum(per_problem) / len(per_problem)
        assert reported[(f"pool {':'.join(POOL)}", k)] == pytest.approx(expected, abs=1e-9), k
    assert 0.0 < sum(reported[(lang, 1)] for lang in POOL) / len(POOL) < 1.0, "pass@k should not be trivial"
