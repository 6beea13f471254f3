"""``bestofl-report compare`` on real lm-eval output: ``--model hf`` and ``--model bestofl`` through the stock CLI
(subprocesses, tiny fixtures, offline), on our task and on lm-eval's own ``mgsm_native_cot_de``, checked against
numbers computed straight from the samples files."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from test_harness_cli import env, lm_eval_mgsm_offline, run

from fixtures import DATA_DIR

pytestmark = pytest.mark.slow
TASKS = {"mgsm_xling_de": "numeric", "mgsm_native_cot_de": "strict-match"}  # task -> its first filter


def scores(out: Path, task: str, filter_name: str) -> dict[int, float]:
    """doc_id -> exact_match under ``filter_name``, read directly from lm-eval's samples file."""
    (path,) = out.rglob(f"samples_{task}_*.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {row["doc_id"]: row["exact_match"] for row in rows if row["filter"] == filter_name}


def two_sided_binomial(b: int, c: int) -> float:
    n = b + c
    pmf = [math.comb(n, k) / 2**n for k in range(n + 1)]
    return min(1.0, sum(q for q in pmf if q <= pmf[b] * (1 + 1e-9)))


def test_compare_hf_and_bestofl_runs_from_the_lm_eval_cli(tiny_generator_dir, tiny_verifier_dir, tmp_path):
    include = tmp_path / "tasks"
    include.mkdir()
    lm_eval_mgsm_offline(include, "de")
    tasks = ",".join(TASKS)
    hf = run("hf", {"pretrained": tiny_generator_dir, "max_length": 512}, tasks, tmp_path / "hf", "--limit", "3",
             "--gen_kwargs", "max_gen_toks=16", "--include_path", str(include))
    bestofl = {"pretrained": tiny_generator_dir, "verifier": tiny_verifier_dir, "languages": "en:de", "n": 2,
               "max_gen_toks": 16, "store": tmp_path / "store"}
    run("bestofl", bestofl, tasks, tmp_path / "bol", "--limit", "2", "--include_path", str(include))

    out = tmp_path / "cmp"
    result = subprocess.run([str(Path(sys.executable).parent / "bestofl-report"), "compare", str(tmp_path / "hf"),
                             str(tmp_path / "bol"), "--out", str(out)], capture_output=True, text=True, env=env(), check=False,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    with open(out / "compare.csv", newline="") as f:
        rows = {(r["task"], r["is_baseline"]): r for r in csv.DictReader(f)}
    label = f"bestofl {tiny_generator_dir.name} verifier={tiny_verifier_dir.name} n=2 pool=en:de"
    assert {r["run"] for r in rows.values()} == {f"hf {tiny_generator_dir.name}", label}

    pooled = {"base": [], "run": []}
    for task, filter_name in TASKS.items():
        base, other = scores(tmp_path / "hf", task, filter_name), scores(tmp_path / "bol", task, filter_name)
        shared = sorted(base.keys() & other.keys())
        assert (len(base), len(other), len(shared)) == (3, 2, 2)
        b = sum(base[d] == 1 and other[d] == 0 for d in shared)
        c = sum(other[d] == 1 and base[d] == 0 for d in shared)
        baseline, row = rows[task, "True"], rows[task, "False"]
        assert row["metric"] == f"exact_match,{filter_name}" and row["lang"] == "de"
        assert float(baseline["accuracy"]) == pytest.approx(hf["results"][task][f"exact_match,{filter_name}"])
        assert float(baseline["accuracy"]) == pytest.approx(sum(base.values()) / 3)
        assert int(row["shared_docs"]) == 2 and int(row["docs"]) == 2
        assert float(row["baseline_accuracy"]) == pytest.approx(sum(base[d] for d in shared) / 2)
        assert float(row["run_accuracy"]) == pytest.approx(sum(other[d] for d in shared) / 2)
        difference = sum(other[d] - base[d] for d in shared) / 2
        assert float(row["difference"]) == pytest.approx(difference)
        assert float(row["ci_low"]) <= difference + 1e-12 and difference - 1e-12 <= float(row["ci_high"])
        assert (int(row["baseline_only_correct"]), int(row["run_only_correct"])) == (b, c)
        assert float(row["mcnemar_p"]) == pytest.approx(two_sided_binomial(b, c))
        pooled["base"] += [base[d] for d in shared]
        pooled["run"] += [other[d] for d in shared]
    overall = rows["overall", "False"]
    assert int(overall["shared_docs"]) == 4
    assert float(overall["difference"]) == pytest.approx((sum(pooled["run"]) - sum(pooled["base"])) / 4)
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "scored 2 docs and the baseline 3; compared on the 2 docs both scored only" in summary
    assert (out / "difference_to_baseline.png").read_bytes().startswith(b"\x89PNG")
