"""lm-eval's own options with our models (issue #28), through ``simple_evaluate`` and the ``lm_eval`` CLI on the tiny
fixtures and the MGSM copy the package ships (``BESTOFL_DATA_DIR`` unset): no stale ``--use_cache`` answers, the docs'
own ids under ``--samples``, ``--system_instruction`` in every pool language's prompt, ``--gen_kwargs`` caps honoured,
per-call counts on one model object, and top-level results fields that describe the run."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import lm_eval
import pytest

from bestofl_models.harness import model as harness
from bestofl_models import testing
from bestofl_models.errors import LmEvalOptionError
from bestofl_models.harness.lm_eval_options import BEFORE_PLAIN_PROMPT, SYSTEM_TURN, USER_TURN_START, prompt_with_system
from bestofl_models.store import CandidateStore

TASK = "mgsm_xling_de"


@pytest.fixture(autouse=True)
def packaged_mgsm(monkeypatch):
    monkeypatch.delenv("BESTOFL_DATA_DIR", raising=False)


@pytest.fixture(scope="module")
def task_manager():
    """Our tasks only (indexing lm-eval's thousands of YAMLs costs ~7 s per ``simple_evaluate``)."""
    from lm_eval.tasks import TaskManager

    from bestofl_tasks import task_yamls_dir

    return TaskManager(include_defaults=False, include_path=task_yamls_dir())


@pytest.fixture
def evaluate(task_manager):
    """``simple_evaluate`` of ``model`` on ``tasks`` (default: mgsm_xling_de) with the module's task manager."""
    def run(model, tasks=(TASK,), **kwargs):
        return lm_eval.simple_evaluate(model=model, tasks=list(tasks), task_manager=task_manager, **kwargs)

    return run


def model_args(tmp_path: Path, **extra) -> dict:
    return {"pretrained": str(testing.tiny_generator()), "verifier": str(testing.tiny_verifier()),
            "languages": "en:de", "n": 2, "max_gen_toks": 16, "store": str(tmp_path / "store"), **extra}


def capture_prompts(lm, monkeypatch) -> list[str]:
    """Every prompt ``lm``'s generator samples from, as rendered."""
    prompts: list[str] = []
    original = lm._generator

    def recording():
        backend = original()
        if not getattr(backend.generate, "_recording", False):
            real = backend.generate

            def generate(batch, *rest):
                prompts.extend(batch)
                return real(batch, *rest)

            generate._recording = True
            backend.generate = generate
        return backend

    monkeypatch.setattr(lm, "_generator", recording)
    return prompts


def count_new_tokens(lm, monkeypatch) -> list[int]:
    """Per generated row, the tokens ``lm``'s transformers model produced (the output's length past the prompt)."""
    counts: list[int] = []
    original = lm._generator

    def counting():
        backend = original()
        model = backend.model
        if not getattr(model.generate, "_counting", False):
            real = model.generate

            def generate(*args, **kwargs):
                out = real(*args, **kwargs)
                counts.extend([out.shape[1] - kwargs["input_ids"].shape[1]] * out.shape[0])
                return out

            generate._counting = True
            model.generate = generate
        return backend

    monkeypatch.setattr(lm, "_generator", counting)
    return counts


# ----------------------------------------------------------------------------------------------- 1. --use_cache


def test_use_cache_is_refused_before_anything_runs_and_a_rerun_with_other_n_uses_the_store(tmp_path, evaluate):
    """lm-eval's cache would serve an ``n=4`` run the ``n=2`` answers: both runs are refused before the model is
    built (no store, no cache db); without it, the ``n=4`` rerun records and uses 4 samples (2 of them stored)."""
    for n in (2, 4):
        with pytest.raises(LmEvalOptionError, match=r"--use_cache cannot be used with --model bestofl: lm-eval's "
                                                    r"cache is keyed by the request alone.*drop --use_cache"):
            evaluate("bestofl", model_args=model_args(tmp_path, n=n), limit=1,
                                    use_cache=str(tmp_path / "cache" / "lm"))
    assert not (tmp_path / "store").exists() and not (tmp_path / "cache").exists()

    first = evaluate("bestofl", model_args=model_args(tmp_path, n=2), limit=1)
    again = evaluate("bestofl", model_args=model_args(tmp_path, n=4), limit=1)
    assert first["config"]["bestofl"]["samples_used"]["total"] == 2
    block = again["config"]["bestofl"]
    assert block["n"] == 4 and block["samples_used"]["total"] == 4
    assert block["candidates"] == {"planned": 4, "generated": 2, "reused": 2}
    assert len(again["samples"][TASK][0]["candidates"]) == 4


@pytest.mark.slow  # the lm_eval CLI in a subprocess (~8 s): the refusal is one line and exit 2
def test_use_cache_on_the_cli_is_one_line_and_exit_2(tmp_path):
    args = ",".join(f"{k}={v}" for k, v in model_args(tmp_path).items())
    env = {key: value for key, value in os.environ.items() if key != "BESTOFL_DATA_DIR"}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    done = subprocess.run([str(Path(sys.executable).parent / "lm_eval"), "--model", "bestofl", "--model_args", args,
                           "--tasks", TASK, "--limit", "1", "--use_cache", str(tmp_path / "cache")],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("lm_eval: error: --use_cache cannot be used")
    assert not (tmp_path / "store").exists() and not list(tmp_path.glob("cache*"))


# ----------------------------------------------------------------------------------------------- 2. --samples


def test_samples_keep_the_docs_own_ids_in_rows_store_and_export(tmp_path, evaluate):
    """``--samples`` docs 7 and 3 (lm-eval numbers their requests 0 and 1): the rows, the store, the export and a
    later ``--limit 8`` run all see docs 3 and 7; a fractional ``--limit`` keeps the ids too."""
    results = evaluate("bestofl", model_args=model_args(tmp_path),
                                      samples={TASK: [7, 3]}, log_samples=True)
    rows = results["samples"][TASK]
    assert sorted(row["doc_id"] for row in rows) == [3, 7]
    for row in rows:
        assert row["doc"]["problem_id"] == f"mgsm-{row['doc_id']:04d}"  # the row shows the doc it names
        assert len(row["candidates"]) == 2 and row["bestofl_selected_lang"] in ("en", "de")

    store = CandidateStore(tmp_path / "store", read_only=True)
    stored = store.candidates()
    assert sorted({(c.doc_id, c.problem_id) for c in stored}) == [(3, "mgsm-0003"), (7, "mgsm-0007")]

    from bestofl_models.report.cli import main as report

    assert report(["export", "--store", str(tmp_path / "store"), "--out", str(tmp_path / "export.jsonl")]) == 0
    exported = [json.loads(line) for line in (tmp_path / "export.jsonl").read_text().splitlines()]
    assert sorted({(r["task"], r["doc_id"], r["problem_id"]) for r in exported}) == [
        (TASK, 3, "mgsm-0003"), (TASK, 7, "mgsm-0007")]

    limited = evaluate("bestofl", model_args=model_args(tmp_path), limit=8)
    assert limited["config"]["bestofl"]["candidates"] == {"planned": 16, "generated": 12, "reused": 4}
    fraction = evaluate("bestofl", model_args=model_args(tmp_path), limit=0.02, log_samples=True)  # 5 of 250 docs
    assert fraction["config"]["bestofl"]["candidates"] == {"planned": 10, "generated": 0, "reused": 10}
    assert [(row["doc_id"], row["doc"]["problem_id"], len(row["candidates"])) for row in fraction["samples"][TASK]] == [
        (i, f"mgsm-{i:04d}", 2) for i in range(5)]


# ----------------------------------------------------------------------------------------------- 3. --system_instruction


def test_system_instruction_is_in_every_pool_languages_prompt_and_recorded(tmp_path, evaluate, monkeypatch):
    lm = harness.BestOfL(**model_args(tmp_path, languages="en:de:fr", n=3))
    prompts = capture_prompts(lm, monkeypatch)
    results = evaluate(lm, limit=1, system_instruction="Answer like a pirate.")
    assert len(prompts) == 3
    for prompt, prefix in zip(sorted(prompts, key=lambda p: ("Frage:" in p, "Question :" in p)),
                              ("Question:", "Question :", "Frage:")):
        assert prompt.startswith("<|im_start|>system\nAnswer like a pirate.<|im_end|>\n<|im_start|>user\n")
        assert prefix in prompt
    applied = results["config"]["bestofl"]["applied_settings"]["system_instruction"]
    assert applied == {"text": "Answer like a pirate.", "languages": "the same text in every pool language",
                       "applied_as": [SYSTEM_TURN]}

    # translated as the user chooses: a JSON object gives each language its own text; new prompts, new candidates
    prompts.clear()
    own = {"en": "Be brief.", "de": "Sei kurz.", "fr": "Sois bref."}
    results = evaluate(lm, limit=1, system_instruction=json.dumps(own))
    assert sorted(p.split("<|im_end|>")[0] for p in prompts) == sorted(f"<|im_start|>system\n{t}" for t in own.values())
    assert results["config"]["bestofl"]["candidates"] == {"planned": 3, "generated": 3, "reused": 0}
    assert results["config"]["bestofl"]["applied_settings"]["system_instruction"]["text"] == own

    # without one: the prompts carry no system turn, and no candidate made with an instruction is reused
    prompts.clear()
    results = evaluate(lm, limit=1)
    assert len(prompts) == 3 and not any("system" in p for p in prompts)
    assert results["config"]["bestofl"]["candidates"]["reused"] == 0
    assert "system_instruction" not in results["config"]["bestofl"]["applied_settings"]
    assert len(CandidateStore(tmp_path / "store", read_only=True)) == 9

    with pytest.raises(LmEvalOptionError, match="not for pool language.s. fr"):
        evaluate(lm, limit=1, system_instruction='{"en": "a", "de": "b"}')


def test_system_instruction_without_a_system_turn_or_chat_template():
    """A plain prompt gets the instruction before it (as lm-eval does); a template that refuses a system role gets
    it at the start of the user turn."""
    tokenizer = testing.load_tiny_tokenizer()
    prompt, how = prompt_with_system(tokenizer, "Wie viel ist 2+2?", "de", "Sei kurz.")
    assert how == SYSTEM_TURN and prompt.startswith("<|im_start|>system\nSei kurz.<|im_end|>")
    tokenizer.chat_template = testing.CHAT_TEMPLATE.replace("'system', ", "")
    prompt, how = prompt_with_system(tokenizer, "Wie viel ist 2+2?", "de", "Sei kurz.")
    assert how == USER_TURN_START and prompt.startswith("<|im_start|>user\nSei kurz.\n\n")
    tokenizer.chat_template = None
    prompt, how = prompt_with_system(tokenizer, "Wie viel ist 2+2?", "de", "Sei kurz.")
    assert how == BEFORE_PLAIN_PROMPT and prompt.startswith("Sei kurz.\n\n") and "Frage: Wie viel ist 2+2?" in prompt


# ----------------------------------------------------------------------------------------------- 4. --gen_kwargs


def test_gen_kwargs_max_gen_toks_caps_the_candidates_and_temperature_0_is_warned_about(tmp_path, evaluate, caplog,
                                                                                        monkeypatch):
    lm = harness.BestOfL(**model_args(tmp_path, max_gen_toks=512))  # the random tiny generator rarely stops early
    new_tokens = count_new_tokens(lm, monkeypatch)
    with caplog.at_level(logging.WARNING):
        results = evaluate(lm, limit=1, gen_kwargs="max_gen_toks=32,temperature=0")
    candidates = CandidateStore(tmp_path / "store", read_only=True).candidates()
    assert len(candidates) == 2 and all(c.settings["max_gen_toks"] == 32 for c in candidates)
    assert new_tokens == [32, 32]  # tokens the generator produced per candidate: the cap bounded them
    block = results["config"]["bestofl"]
    applied = block["applied_settings"]
    assert applied["max_gen_toks"] == 32 and applied["temperature"] == 0.7
    assert applied["gen_kwargs"] == {"max_gen_toks": {"gen_kwargs": 32, "model_args": 512, "applied": 32}}
    assert block["ignored_lm_eval_options"]["gen_kwargs"] == {"temperature": 0}
    assert any("would make every sample of a problem the same" in r.getMessage() for r in caplog.records)
    assert not any("decoding settings (max_gen_toks" in r.getMessage() for r in caplog.records)

    # the smaller cap wins: max_gen_toks=16 in --model_args beats --gen_kwargs max_gen_toks=32
    results = evaluate("bestofl", model_args=model_args(tmp_path), limit=1,
                       gen_kwargs={"max_gen_toks": 32, "until": "\n\n"})
    applied = results["config"]["bestofl"]["applied_settings"]
    assert applied["max_gen_toks"] == 16 and applied["stop_added"] == ["\n\n"]
    assert all("\n\n" not in c.text for c in CandidateStore(tmp_path / "store", read_only=True).candidates()
               if c.settings["max_gen_toks"] == 16)


# ----------------------------------------------------------------------------------------------- 5. one model, two calls


def test_two_calls_on_one_model_object_report_their_own_counts(tmp_path, evaluate):
    lm = harness.BestOfL(**model_args(tmp_path))
    first = evaluate(lm, limit=1)["config"]["bestofl"]
    second = evaluate(lm, tasks=["mgsm_xling_fr"], limit=2)["config"]["bestofl"]
    third = evaluate(lm, limit=1)["config"]["bestofl"]
    assert first["candidates"] == {"planned": 2, "generated": 2, "reused": 0}
    # mgsm_xling_fr doc 0 is the same problem in the pool en:de: its 2 candidates are the first call's
    assert second["candidates"] == {"planned": 4, "generated": 2, "reused": 2}
    assert third["candidates"] == {"planned": 2, "generated": 0, "reused": 2}
    assert (third["samples_used"]["requests"], third["samples_used"]["total"]) == (1, 2)
    assert (second["samples_used"]["requests"], second["samples_used"]["total"]) == (2, 4)
    assert third["scores"] == {"scored": 0, "scores_reused": 2}


# ----------------------------------------------------------------------------------------------- 6. top-level fields


def test_top_level_fields_describe_the_run_or_are_named(tmp_path, evaluate):
    results = evaluate("bestofl", model_args=model_args(tmp_path, batch_size=2),
                                      limit=1, num_fewshot=2, device="cuda:0", batch_size=1)
    config, block = results["config"], results["config"]["bestofl"]
    assert results["n-shot"][TASK] == 0  # the models sampled their own zero-shot prompts
    assert config["device"] == block["device"] == "cpu"
    assert config["batch_size"] == 2 and config["batch_sizes"] == [2, 16]  # generator, verifier
    assert block["top_level_fields_corrected"] == {
        "config.device": {"lm_eval_flag": "cuda:0", "run": "cpu"},
        "config.batch_size": {"lm_eval_flag": 1, "run": 2},
        f"n-shot.{TASK}": {"lm_eval_flag": 2, "run": 0},
    }
    assert results["configs"][TASK]["num_fewshot"] == 2  # the task's own setting, named as such
    assert f"configs.{TASK}.num_fewshot" in block["top_level_fields_not_describing_the_run"]


# ----------------------------------------------------------------------------------------------- the small model


@pytest.mark.slow  # SmolLM2-135M on the CPU: ~15 s
def test_system_instruction_and_max_gen_toks_on_smollm2(smollm2_dir, tmp_path, evaluate, monkeypatch):
    """SmolLM2's own chat template: the instruction replaces its default system turn in every pool language, and
    ``--gen_kwargs max_gen_toks=8`` bounds what it generates."""
    lm = harness.BestOfL(**model_args(tmp_path, pretrained=str(smollm2_dir), languages="en:de:fr", n=3,
                                      max_gen_toks=64))
    prompts = capture_prompts(lm, monkeypatch)
    new_tokens = count_new_tokens(lm, monkeypatch)
    results = evaluate(lm, limit=1, system_instruction="Answer like a pirate.", gen_kwargs="max_gen_toks=8")
    assert len(prompts) == 3
    for prompt in prompts:
        assert prompt.startswith("<|im_start|>system\nAnswer like a pirate.<|im_end|>\n<|im_start|>user\n")
        assert "SmolLM" not in prompt
    assert sum("Frage:" in p for p in prompts) == sum("Question :" in p for p in prompts) == 1  # de, fr, en
    assert len(new_tokens) == 3 and max(new_tokens) <= 8
    applied = results["config"]["bestofl"]["applied_settings"]
    assert applied["max_gen_toks"] == 8 and applied["system_instruction"]["applied_as"] == [SYSTEM_TURN]
