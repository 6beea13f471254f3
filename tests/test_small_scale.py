"""experiments/small_scale/run.py end to end at a tiny size with tiny random models: every stage runs through the
real CLIs, the table holds a number for every accuracy, and a rerun skips every stage and rebuilds the same table."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _run(out: Path, generator: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "experiments.small_scale.run", "--quick", "--out", str(out),
               "--generator", str(generator), "--languages", "en:zh", "--train-problems", "4", "--k", "2",
               "--fit-steps", "2", "--test-problems", "2", "--n", "2", "--max-gen-toks", "8",
               "--train-set", "balance.validation_fraction=0.5", *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)


def test_tiny_experiment_writes_a_table_and_resumes(tmp_path, tiny_generator_dir):
    out = tmp_path / "run"
    first = _run(out, tiny_generator_dir)
    assert first.returncode == 0, first.stderr[-4000:]
    result = json.loads((out / "results.json").read_text())
    table = result["table"]
    costs = result["costs"]
    # header + one line per row, then the cost table: header + one line per method
    assert (out / "results.md").read_text().count("\n| ") == len(table) + 1 + 1 + len(costs)
    assert set(costs) == {"greedy", "self-consistency", "multi-orm", "bestofl"}
    for method, cost in costs.items():  # 2 test problems x 2 languages; n=2 samples of at most 8 tokens
        # greedy's are recounted from decoded random tokens, which encode again into more tokens: no upper bound
        assert cost["problems"] == 4 and 0 < cost["gen_tokens_per_problem"] <= (float("inf") if method == "greedy"
                                                                                 else 16)
        assert (cost["verifier_tokens_per_problem"] is None) == (method in ("greedy", "self-consistency"))

    numbers = [name for name in table if name.startswith(("accuracy", "single-sample", "oracle", "share"))]
    assert len(numbers) == 8
    for name in numbers:
        for lang, value in table[name].items():
            if not (name.startswith("share") and lang == "mean"):
                assert isinstance(value, float) and 0.0 <= value <= 1.0, (name, lang, value)
    shares = dict(table["share of Best-of-L picks from this language (n=2)"])
    assert math.isclose(shares.pop("en") + shares.pop("zh"), 1.0, abs_tol=1e-3) and shares == {"mean": None}

    # AUC: a number, or undefined because that language's scored candidates hold one class only.
    candidates = [json.loads(line) for line in (out / "report" / "candidates.jsonl").read_text().splitlines()]
    assert candidates and all(c["score"] is not None for c in candidates)
    for lang, auc in table["verifier AUC, test candidates"].items():
        if lang == "mean":
            continue
        classes = {c["correct"] for c in candidates if c["lang"] == lang}
        assert (auc is None) == (len(classes) < 2), (lang, auc, classes)
    everything = {c["correct"] for c in candidates}
    assert (result["auc_all_languages"]["test_candidates"] is None) == (len(everything) < 2)
    assert set(table["verifier AUC, validation (held-out train problems)"]) == {"en", "zh", "mean"}

    # the same n and store for the three harness models; greedy has one answer per problem and language
    for method in ("bestofl", "multi-orm", "self-consistency", "greedy"):
        [results] = (out / "eval" / method).rglob("results_*.json")
        rows = json.loads(results.read_text())["results"]
        assert {f"arith_xling_{lang}" for lang in ("en", "zh")} <= set(rows)
    assert len({c["key"] for c in candidates}) == 2 * 2 * 2  # problems x target languages x n, shared by all
    assert set(result["stage_seconds"]) == {"train", "bestofl", "multi-orm", "self-consistency", "greedy", "report",
                                            "export"}

    again = _run(out, tiny_generator_dir)
    assert again.returncode == 0, again.stderr[-4000:]
    assert again.stderr.count("done already, skipped") == 7
    assert json.loads((out / "results.json").read_text()) == result

    other = _run(out, tiny_generator_dir, "--n", "4")
    assert other.returncode != 0 and "holds an experiment with other settings" in other.stderr
