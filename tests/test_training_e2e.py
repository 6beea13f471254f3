"""bestofl-train through its CLI: the tiny-cpu config end to end (then used by ``lm_eval --model bestofl``),
and stages killed with SIGKILL mid-way that resume without redoing or losing work."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest

from fixtures import DATA_DIR  # tests/ is on sys.path (rootdir conftest)

from bestofl_models import testing
from bestofl_models.store import CandidateStore
from training.cli import main, run_stages
from training.common import read_jsonl
from training.config import load_config

from store_tables import row_count
from test_training import TINY, write_candidates

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    return {**os.environ, "BESTOFL_DATA_DIR": str(DATA_DIR), "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(autouse=True)
def _local_data(monkeypatch):
    monkeypatch.setenv("BESTOFL_DATA_DIR", str(DATA_DIR))


def _command(name: str) -> list[str]:
    script = BIN / name
    return [str(script)] if script.is_file() else [sys.executable, "-m", "training.cli"]


def _kill_when(process: subprocess.Popen, ready, timeout: float = 180) -> None:
    """SIGKILL ``process`` as soon as ``ready()``; fail if it finished first."""
    deadline = time.time() + timeout
    while not ready():
        assert process.poll() is None, "the stage finished before it could be killed"
        assert time.time() < deadline, "timed out waiting for the stage to make progress"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_tiny_cpu_config_end_to_end_and_lm_eval_uses_the_adapter(tmp_path, tiny_generator_dir):
    out = tmp_path / "OUT"
    args = ["run", "--config", str(TINY), "--output-dir", str(out),
            "--set", f"generator={tiny_generator_dir}", "--set", f"verifier_base={tiny_generator_dir}"]
    done = subprocess.run(_command("bestofl-train") + args, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for path in ("adapter/adapter_config.json", "merged/config.json", "metrics.json", "README.md"):
        assert (out / path).is_file(), path
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"auc", "accuracy", "per_language"} <= set(metrics)
    questions = json.loads((out / "translate" / "manifest.json").read_text())["counts"]["per_language"]
    counts = json.loads((out / "generate" / "manifest.json").read_text())["counts"]
    assert counts["problems"] == 8 and questions["en"]["rows"] == 8
    assert counts["per_language"] == {lang: 2 * questions[lang]["rows"] for lang in ("en", "de", "fr")}

    for name in ("translate/questions", "generate/candidates", "label/labeled", "balance/train", "balance/problems",
                 "fit/log_history"):
        assert len(datasets.load_dataset("json", data_files=str(out / f"{name}.jsonl"), split="train")) > 0, name
    # evaluate scored the validation pool into the generate stage's store, under the verifier's identity
    generated = CandidateStore(out / "generate" / "store", read_only=True)
    assert len(generated.scores(metrics["verifier_id"])) == metrics["pool_candidates"] > 0
    assert generated.models()[metrics["verifier_id"]]["name"] == str((out / "fit" / "adapter").resolve())

    again = subprocess.run(_command("bestofl-train") + args, env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stderr.count("up to date") == 7

    store = tmp_path / "store"
    model_args = (f"pretrained={tiny_generator_dir},verifier={out / 'adapter'},languages=en:de:fr,n=3,"
                  f"max_gen_toks=16,store={store}")
    lm_eval = subprocess.run(
        [str(BIN / "lm_eval"), "--model", "bestofl", "--model_args", model_args, "--tasks", "mgsm_xling_de",
         "--limit", "2"], env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert lm_eval.returncode == 0, lm_eval.stderr[-3000:]
    candidates = CandidateStore(store, read_only=True)
    adapter = str((out / "adapter").resolve())
    [verifier_id] = candidates.verifiers()
    assert candidates.models()[verifier_id]["name"] == adapter
    assert len(candidates.scores(verifier_id)) == len(candidates) == 6


def test_killed_generate_resumes_without_regenerating(tmp_path, tiny_generator_dir, caplog):
    sets = ["limit=6", f"generator={tiny_generator_dir}", "generate.batch_size=1", "generate.max_gen_toks=32"]
    run_stages(load_config(TINY, sets), tmp_path, ("translate",))
    args = ["generate", "--config", str(TINY), "--output-dir", str(tmp_path)] + [x for s in sets for x in ("--set", s)]
    store_dir = tmp_path / "generate" / "store"

    def some_stored() -> bool:
        return row_count(store_dir, "candidates") >= 4

    _kill_when(subprocess.Popen(_command("bestofl-train") + args, env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL), some_stored)
    before = {c.key: c.text for c in CandidateStore(store_dir, read_only=True).candidates()}
    assert 4 <= len(before) < 36

    with caplog.at_level(logging.INFO, logger="bestofl_models.harness.generate"):
        assert main(args) == 0
    assert f"{36 - len(before)} to generate" in caplog.text
    rows = read_jsonl(tmp_path / "generate" / "candidates.jsonl")
    assert len(rows) == 36 and len({r["key"] for r in rows}) == 36
    assert {r["key"]: r["response"] for r in rows if r["key"] in before} == before
    assert row_count(store_dir, "candidates") == 36  # nothing generated twice


def test_killed_fit_resumes_from_its_last_checkpoint(tmp_path, tiny_generator_dir):
    write_candidates(tmp_path, problems=20)
    sets = [f"verifier_base={tiny_generator_dir}", "balance.enabled=true", "fit.max_steps=100", "fit.save_steps=5",
            "fit.per_device_train_batch_size=4", "fit.save_total_limit=3"]
    run_stages(load_config(TINY, sets), tmp_path, ("label", "balance"))
    args = ["fit", "--config", str(TINY), "--output-dir", str(tmp_path)] + [x for s in sets for x in ("--set", s)]
    checkpoints = tmp_path / "fit" / "checkpoints"

    def first_checkpoint_saved() -> bool:
        return (checkpoints / "checkpoint-5" / "trainer_state.json").is_file()

    _kill_when(subprocess.Popen(_command("bestofl-train") + args, env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL), first_checkpoint_saved)
    assert not (tmp_path / "fit" / "manifest.json").exists()

    assert main(args) == 0
    counts = json.loads((tmp_path / "fit" / "manifest.json").read_text())["counts"]
    assert 5 <= counts["resumed_from_step"] < 100
    assert counts["global_step"] == 100
    assert counts["steps_this_run"] == 100 - counts["resumed_from_step"]
    assert (tmp_path / "fit" / "adapter" / "adapter_model.safetensors").is_file()
