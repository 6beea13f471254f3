"""``lm_eval --model bestofl --tasks gsm8k_cot`` (lm-eval's own task, on local data) through the stock CLI: every
pool language sampled from translated questions, lm-eval's strict-match parses the output, a rerun translates and
generates nothing, and ``bestofl-report`` and its export read the translated candidates."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from store_tables import row_count, snapshot
from translation_fixtures import copy_mt_model, local_task_dir

from bestofl_models.store import STORE_FILE
from fixtures import DATA_DIR
from bestofl_tasks.answers import extract_answer

BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.slow]
POOL = ("en", "de", "fr")


def lm_eval(model_args: dict, task_dir: Path, out: Path) -> tuple[dict, list[dict], str]:
    """Results, the ``gsm8k_cot`` sample rows and stderr of one CLI run."""
    args = ",".join(f"{key}={value}" for key, value in model_args.items())
    result = subprocess.run(
        [str(BIN / "lm_eval"), "--model", "bestofl", "--model_args", args, "--tasks", "gsm8k_cot", "--include_path",
         str(task_dir), "--limit", "2", "--output_path", str(out), "--log_samples"],
        check=False, capture_output=True, text=True, timeout=300, cwd=out.parent,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-4000:]
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    rows = [json.loads(line) for line in next(out.rglob("samples_gsm8k_cot_*.jsonl")).read_bytes().splitlines()]
    return results, rows, result.stderr


def translations(store_dir: Path) -> set[tuple]:
    with contextlib.closing(sqlite3.connect(f"file:{store_dir / STORE_FILE}?mode=ro", uri=True)) as db:
        return set(db.execute("SELECT key, target_lang, text, missing_numbers, created FROM translations"))


def test_gsm8k_cot_samples_every_pool_language_parses_and_reruns_for_free(
        tiny_generator_dir, tiny_verifier_adapter_dir, tmp_path):
    model_args = {"pretrained": tiny_generator_dir, "verifier": tiny_verifier_adapter_dir, "languages": ":".join(POOL),
                  "n": 3, "max_gen_toks": 16, "store": tmp_path / "store",
                  "translator": copy_mt_model(tmp_path / "copy-mt")}
    task_dir = local_task_dir(tmp_path / "tasks", DATA_DIR, ("gsm8k_cot",))
    results, rows, stderr = lm_eval(model_args, task_dir, tmp_path / "first")

    info = results["config"]["bestofl"]
    assert info["translation"]["translator"] == str(model_args["translator"])
    assert {k: info["translation"][k] for k in ("planned", "translated", "reused", "refused_number_check")} == {
        "planned": 4, "translated": 4, "reused": 0, "refused_number_check": 0}
    assert info["candidates"]["generated"] == 2 * 3
    assert "2 questions translated by translator=" in stderr
    strict = [row for row in rows if row["filter"] == "strict-match"]
    assert len(strict) == 2
    for row in strict:
        assert sorted(c["lang"] for c in row["candidates"]) == sorted(POOL)  # one sample per pool language
        text = row["resps"][0][0]
        assert text.rstrip().rsplit("\n", 1)[-1] == f"The answer is {extract_answer(text)}."
        assert row["filtered_resps"][0].rstrip(".") == extract_answer(text)  # lm-eval's own strict-match
    assert info["translation"]["answer_lines"] == {"{final_line}": 2}

    before = {table: snapshot(model_args["store"], table) for table in ("candidates", "scores")}
    made = translations(model_args["store"])
    results, rows, _ = lm_eval(model_args, task_dir, tmp_path / "second")
    info = results["config"]["bestofl"]
    assert (info["translation"]["translated"], info["translation"]["reused"]) == (0, 4)
    assert (info["candidates"]["generated"], info["scores"]["scored"]) == (0, 0)
    assert {table: snapshot(model_args["store"], table) for table in before} == before
    assert translations(model_args["store"]) == made and row_count(model_args["store"], "translations") == 4

    export = subprocess.run([str(BIN / "bestofl-report"), "export", "--store", str(model_args["store"])],
                            capture_output=True, text=True, timeout=120, check=True)
    exported = [json.loads(line) for line in export.stdout.splitlines()]
    assert sorted((r["problem_id"], r["lang"]) for r in exported) == sorted(
        (f"gsm8k_cot-000{doc}", lang) for doc in (0, 1) for lang in POOL)
    report = subprocess.run([str(BIN / "bestofl-report"), "--store", str(model_args["store"]), "--out",
                             str(tmp_path / "report"), "--no-progress"], check=False, capture_output=True, text=True,
                            timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    with open(tmp_path / "report" / "pass_at_k.csv", newline="") as f:  # per-language rows: translated ones too
        problems = {row["scope"]: row["problems"] for row in csv.DictReader(f) if row["k"] == "1"}
    assert {lang: problems.get(lang) for lang in POOL} == dict.fromkeys(POOL, "2")
