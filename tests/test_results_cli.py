"""Leaderboard-ready output through the stock ``lm_eval`` CLI (subprocesses, tiny fixtures): the results JSON's
``bestofl`` block and the ``--log_samples`` rows, for a chat reward model and for the default judge."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import fixtures  # tests/ is on sys.path (rootdir conftest)
import pytest

from bestofl_models import testing

LM_EVAL = str(Path(sys.executable).parent / "lm_eval")
pytestmark = pytest.mark.slow


def lm_eval(cwd: Path, model_args: dict, out: str, *extra: str) -> tuple[dict, list[dict], str]:
    """Run ``lm_eval`` in ``cwd``; return the results JSON, the samples rows of mgsm_xling_de and stderr."""
    args = ",".join(f"{key}={value}" for key, value in model_args.items())
    env = {**os.environ, "BESTOFL_DATA_DIR": str(fixtures.DATA_DIR), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run([LM_EVAL, "--model", "bestofl", "--model_args", args, "--tasks", "mgsm_xling_de",
                             "--limit", "2", "--output_path", out, "--log_samples", *extra],
                            capture_output=True, text=True, env=env, timeout=900, cwd=cwd)
    assert result.returncode == 0, result.stderr[-4000:]
    results = sorted((cwd / out).rglob("results_*.json"), key=lambda p: p.stat().st_mtime)
    rows = sorted((cwd / out).rglob("samples_mgsm_xling_de_*.jsonl"), key=lambda p: p.stat().st_mtime)
    return (json.loads(results[-1].read_text()), [json.loads(line) for line in rows[-1].read_text().splitlines()],
            result.stderr)


def check_rows(rows: list[dict], n: int, scored: bool) -> None:
    assert len(rows) == 2
    for row in rows:
        assert len(row["candidates"]) == n
        assert all(set(c) == {"lang", "answer", "score"} and c["lang"] in ("en", "de") for c in row["candidates"])
        assert row["bestofl_selected_lang"] in ("en", "de")
        assert all((c["score"] is not None) == scored for c in row["candidates"])
        if scored:
            assert row["bestofl_selected_score"] in [c["score"] for c in row["candidates"]]


def test_chat_reward_model_results_and_samples_carry_what_was_used(tmp_path):
    generator = tmp_path / ".models" / "generator"  # lm-eval names the folder after it: ._models would hide it
    shutil.copytree(testing.tiny_generator(), generator)
    chat_rm = fixtures.tiny_chat_reward_model()
    args = {"pretrained": ".models/generator", "verifier": chat_rm, "languages": "en:de", "n": 4,
            "max_gen_toks": 8, "store": tmp_path / "store"}
    results, rows, stderr = lm_eval(tmp_path, args, "out", "--gen_kwargs", "temperature=0.1", "--seed", "5",
                                    "--apply_chat_template")
    info = results["config"]["bestofl"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["_models__generator"]  # not hidden
    assert (info["verifier_kind"], info["verifier_format"], info["verifier_format_version"]) == (
        "classifier", "chat", "chat-rm-1")
    assert "chat template" in info["verifier_format_reason"] and info["verifier_defaulted"] is False
    assert info["generator_fingerprint"].startswith("sha256:") and info["verifier_fingerprint"].startswith("sha256:")
    assert info["generator_fingerprint"] != info["verifier_fingerprint"]
    assert info["verifier_id"].startswith("verifier-") and info["generator_id"].startswith("generator-")
    assert (info["pretrained"], info["verifier"]) == (str(generator), str(chat_rm))
    assert (info["dtype"], info["device"], info["backend"]) == ("auto", "cpu", "hf")
    assert (info["batch_size"], info["verifier_batch_size"], info["largest_generation_batch"]) == (1, 16, 2)
    assert (info["pool"], info["n"], info["selection"], info["preset"]) == (["en", "de"], 4, "cross_orm", "bestofl")
    assert (info["temperature"], info["top_p"], info["max_gen_toks"], info["seed"]) == (0.7, 1.0, 8, 1234)
    assert info["applied_settings"]["temperature"] == 0.7
    assert info["data_source"] == {"mgsm": f"local:{fixtures.DATA_DIR}"}
    assert info["candidates"] == {"planned": 8, "generated": 8, "reused": 0}
    assert info["scores"] == {"scored": 8, "scores_reused": 0}
    assert info["bestofl_version"] and info["prompt_format"] == "chat template"
    ignored = info["ignored_lm_eval_options"]
    assert set(ignored) == {"gen_kwargs", "seed", "apply_chat_template"}
    assert ignored["seed"]["random_seed"] == 5
    for warning in ("--gen_kwargs", "--seed 5,5,5,5 seeds lm-eval's own", "--apply_chat_template: bestofl",
                    "the tasks' decoding settings"):
        assert stderr.count(warning) == 1, warning
    check_rows(rows, 4, scored=True)


def test_the_default_judge_through_the_cli_and_a_rerun_that_reuses_everything(tmp_path):
    judge = fixtures.tiny_judge()
    args = {"pretrained": judge, "languages": "en:de", "n": 2, "max_gen_toks": 8, "store": tmp_path / "store"}
    results, rows, stderr = lm_eval(tmp_path, args, "out")
    info = results["config"]["bestofl"]
    assert stderr.count("no verifier= given") == 1
    assert (info["verifier"], info["verifier_kind"], info["verifier_model"], info["verifier_format"]) == (
        "self", "judge", str(judge), "judge")
    assert info["verifier_defaulted"] is True and info["verifier_format_version"] == "bestofl-judge-1"
    assert info["verifier_fingerprint"] == info["generator_fingerprint"]  # the generator judges itself
    assert info["verifier_id"] != info["generator_id"] and info["ignored_lm_eval_options"] == {}
    check_rows(rows, 2, scored=True)
    again, rows_again, _ = lm_eval(tmp_path, args, "out")
    assert again["config"]["bestofl"]["candidates"] == {"planned": 4, "generated": 0, "reused": 4}
    assert again["config"]["bestofl"]["scores"] == {"scored": 0, "scores_reused": 4}
    assert [r["candidates"] for r in rows_again] == [r["candidates"] for r in rows]
