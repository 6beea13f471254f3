"""Robustness (issue 5, section 3): kill -9, torn store lines, bad inputs, determinism, no code from data.

What other test files already show is not repeated here (docs/ROBUSTNESS.md maps every case to its test):
kill -9 during sampling (test_harness_cli), the store's own torn-line/full-disk/read-only units (test_store),
``--model_args`` value checks (test_config), misaligned translations (test_tasks, test_problems), tasks
without parallel docs (test_harness). This file covers the rest, mostly through the harness model itself on
the tiny fixtures (in-process, ``n`` and ``limit`` small), and in subprocesses where a process must die.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lm_eval.api.instance import Instance

from bestofl_models.generation.backends import Generation
from bestofl_models.harness import model as harness
from bestofl_models.harness import choose as choose_stage
from bestofl_models.harness import run_log
from bestofl_models.store import store as store_module
from bestofl_models.store import STORE_FILE, CandidateStore, StoreNotWritableError
from fixtures import DATA_DIR
from bestofl_tasks.data import load_docs
from bestofl_tasks.languages import get_language
from bestofl_tasks.prompts import user_prompt
from store_tables import row_count, snapshot

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def offline_data(monkeypatch):
    monkeypatch.setenv("BESTOFL_DATA_DIR", str(DATA_DIR))


def request(doc, task: str, doc_id: int) -> Instance:
    return Instance("generate_until", doc, ("ignored", {"until": ["Frage:"]}), 0, (task, doc_id, 1))


def requests(lang: str = "de", problems: int = 2) -> list[Instance]:
    return [request(doc, f"mgsm_xling_{lang}", i) for i, doc in enumerate(load_docs("mgsm", lang)[:problems])]


@pytest.fixture
def args(tiny_generator_dir, tiny_verifier_dir, tmp_path) -> dict:
    """bestofl over en:de, 4 samples per problem, short generations, a fresh store."""
    return {"pretrained": str(tiny_generator_dir), "verifier": str(tiny_verifier_dir), "languages": "en:de",
            "n": 4, "max_gen_toks": 12, "store": str(tmp_path / "store")}


def run(model_args: dict, reqs: list[Instance] | None = None, preset=harness.BestOfL) -> tuple[list[str], object]:
    lm = preset(**model_args)
    outputs = lm.generate_until(reqs if reqs is not None else requests(), disable_tqdm=True)
    lm.close()
    return outputs, lm


def assert_exact(store_dir: Path, keys: int, verifiers: int = 0) -> list:
    """Exactly ``keys`` candidates and, for each of ``verifiers`` verifiers, one score row per candidate text."""
    store = CandidateStore(store_dir, read_only=True)
    candidates = store.candidates()
    assert len(candidates) == len({c.key for c in candidates}) == keys
    if verifiers:
        scores = store.scores()
        ids = {verifier for _, verifier in scores}
        assert len(ids) == verifiers and set(scores) == {(c.key, v) for c in candidates for v in ids}
        assert row_count(store_dir, "scores") == keys * verifiers  # no stale or duplicate score rows
    return candidates


# ================================================================================================ kill -9

DRIVER = """
import json, sys, time
from lm_eval.api.instance import Instance
from bestofl_models.harness import model as harness
from bestofl_models.harness import score as score_stage
from bestofl_models.verifiers import classifier as verifier
from bestofl_tasks.data import load_docs

spec = json.loads(sys.argv[1])
score_stage.SCORE_CHUNK = 1  # append each score at once, so the store shows progress while scoring
original = verifier.HFVerifier.score

def slow_score(self, texts, progress=True):  # a slow verifier: time to kill the process while it scores
    time.sleep(spec["score_delay"])
    return original(self, texts, progress)

verifier.HFVerifier.score = slow_score
docs = load_docs("mgsm", "de")[: spec["problems"]]
reqs = [Instance("generate_until", d, ("", {"until": []}), 0, ("mgsm_xling_de", i, 1)) for i, d in enumerate(docs)]
print(json.dumps(harness.BestOfL(**spec["model_args"]).generate_until(reqs, disable_tqdm=True)))
"""


def wait_for(predicate, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.poll() is not None:
            pytest.fail(f"the process ended (exit {process.returncode}) before it could be killed mid-way")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("no progress to kill in")
        time.sleep(0.01)


@pytest.mark.slow
def test_kill_9_while_scoring_then_rerun_scores_each_candidate_once(args, tmp_path, monkeypatch):
    store = Path(args["store"])
    total = 2 * args["n"]
    spec = {"model_args": args, "problems": 2, "score_delay": 0.4}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(spec)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: row_count(store, "scores") >= 2, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    scored = row_count(store, "scores")
    assert row_count(store, "candidates") == total  # sampling had finished
    assert 2 <= scored < total, f"not killed while scoring ({scored} of {total} scores)"
    candidates_before, scores_before = snapshot(store, "candidates"), snapshot(store, "scores")

    lm = harness.BestOfL(**args)
    monkeypatch.setattr(lm, "_generator", lambda: pytest.fail("the rerun must not generate anything"))
    resumed = lm.generate_until(requests(), disable_tqdm=True)

    assert snapshot(store, "candidates") == candidates_before  # nothing regenerated
    assert snapshot(store, "scores") >= scores_before  # no score lost or rewritten
    assert_exact(store, total, 1)
    # ... and the answers are those of a run that was never interrupted.
    clean, _ = run({**args, "store": str(tmp_path / "clean")})
    assert resumed == clean


def test_a_lost_candidate_is_regenerated_and_rescored_never_paired_with_its_old_score(args, monkeypatch):
    """A candidate row lost from the store (here: deleted) is regenerated; its new text gets its own score, and
    the old text's score, still in the store, is never read for it."""
    from bestofl_models.generation.backends import hf
    from bestofl_models.verifiers.classifier import score_responses

    store = Path(args["store"])
    _, lm = run(args)
    lost = lm.store.candidates()[0]
    old_score = lm.store.score(lost.key, lm.verifier_id)
    with contextlib.closing(sqlite3.connect(store / STORE_FILE)) as db, db:
        db.execute("DELETE FROM uses WHERE key = ?", (lost.key,))
        db.execute("DELETE FROM candidates WHERE key = ?", (lost.key,))
    original = hf.HFBackend.generate
    monkeypatch.setattr(hf.HFBackend, "generate",
                        lambda self, *a: [dataclasses.replace(g, text=g.text + " Anyway, 41.") for g in original(self, *a)])
    _, lm = run(args)
    again = lm.store.get(lost.key)
    assert again.text.endswith(" Anyway, 41.") and again.text != lost.text and again.answer == "41"
    assert row_count(store, "candidates") == 2 * args["n"]
    assert row_count(store, "scores") == 2 * args["n"] + 1  # the old text's score stays, unread
    verifier = lm._load_verifier()
    question = load_docs("mgsm", "de")[int(lost.doc_id)]["parallel"][lost.lang]
    expected = score_responses(verifier, [(question, again.text, lost.lang)], progress=False)[0]
    assert lm.store.score(lost.key, lm.verifier_id) == pytest.approx(expected, abs=1e-6)
    assert lm.store.score(lost.key, lm.verifier_id) != old_score
    lm.close()


# ================================================================================================ bad inputs


@pytest.mark.parametrize(
    "arg_string, message",
    [
        # lists use ':' -- a ',' splits the value into a stray key
        ("languages=en,de", r"Unknown --model_args key\(s\) for --model bestofl: de\. Valid keys"),
        ("n", r"n must be an integer, got ''"),
        ("n=4.5", r"n must be an integer, got 4\.5"),
        ("n=-2", r"n is the total number of samples per problem and must be >= 1, got -2"),
        ("temperature=warm", r"temperature must be a finite number, got 'warm'"),
        ("temperature=nan", r"temperature must be a finite number"),
        ("temperature=-0.1", r"temperature must be >= 0 \(0 = greedy\), got -0\.1"),
        ("languages=en:german", r"unknown language code\(s\) german\. Supported: en"),
        ("languages=", r"languages is empty; give language codes separated by ':'"),
        ("backend=hf,dtype=", r"dtype must be a non-empty string"),
    ],
)
def test_malformed_model_args_fail_before_anything_is_loaded(arg_string, message, tmp_path):
    # The generator path does not exist: any attempt to load it would raise OSError, not the ValueError.
    full = f"pretrained={tmp_path}/no-generator,verifier={tmp_path}/no-verifier,{arg_string}"
    with pytest.raises(ValueError, match=message):
        harness.BestOfL.create_from_arg_string(full, {"batch_size": 1})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_bad_model_args_on_the_cli_exit_early_with_the_message(tiny_generator_dir, tmp_path):
    lm_eval = str(Path(sys.executable).parent / "lm_eval")
    store = tmp_path / "store"
    result = subprocess.run(
        [lm_eval, "--model", "bestofl", "--model_args",
         f"pretrained={tiny_generator_dir},verifier=x,languages=en:xx,store={store}",
         "--tasks", "mgsm_xling_de", "--limit", "1"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "BESTOFL_DATA_DIR": str(DATA_DIR), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode != 0
    assert "languages: unknown language code(s) xx. Supported: en" in result.stderr
    assert "bestofl: sampling" not in result.stderr and not store.exists()


def test_missing_verifier_fails_before_sampling(args, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for verifier in (str(tmp_path / "no-such-verifier"), "nobody-cached/no-such-verifier"):
        with pytest.raises(OSError, match=re.escape(f"verifier={verifier}")):
            harness.BestOfL(**{**args, "verifier": verifier})
    assert not (Path(args["store"]) / STORE_FILE).exists()


def test_verifier_with_more_than_one_logit_fails_before_sampling(args, tmp_path):
    from transformers import AutoTokenizer, LlamaForSequenceClassification

    from bestofl_models.testing import tiny_config

    tokenizer = AutoTokenizer.from_pretrained(args["verifier"])
    two = tmp_path / "two-logit-classifier"
    LlamaForSequenceClassification(tiny_config(tokenizer, num_labels=2)).save_pretrained(two)
    tokenizer.save_pretrained(two)
    with pytest.raises(ValueError, match="classifier with 2 outputs; bestofl needs a one-logit"):
        harness.BestOfL(**{**args, "verifier": str(two)})
    assert not (Path(args["store"]) / STORE_FILE).exists()


def test_verifiers_are_checked_by_what_they_are_before_sampling(args, tmp_path):
    """Issue #8 case 5: a causal LM whose config says one label, a causal-LM LoRA adapter, a SEQ_CLS adapter on
    a two-label base and one that saved no head all fail when the model is built, before any sampling."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaForCausalLM, LlamaForSequenceClassification

    from bestofl_models.testing import tiny_config

    tokenizer = AutoTokenizer.from_pretrained(args["verifier"])
    causal = tmp_path / "causal-one-label"
    LlamaForCausalLM(tiny_config(tokenizer, num_labels=1)).save_pretrained(causal)
    tokenizer.save_pretrained(causal)
    two_labels = tmp_path / "two-label-base"
    LlamaForSequenceClassification(tiny_config(tokenizer, num_labels=2)).save_pretrained(two_labels)

    def adapter(name, model, base, **lora):
        path = tmp_path / name
        get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], **lora)).save_pretrained(path)
        config = json.loads((path / "adapter_config.json").read_text())
        (path / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(base)}))
        return path

    cases = {
        causal: "is not a sequence classifier (LlamaForCausalLM): loaded as one, its score head would be random",
        adapter("causal-adapter", LlamaForCausalLM(tiny_config(tokenizer)), causal, task_type="CAUSAL_LM"):
            "is a CAUSAL_LM LoRA adapter, not a reward model",
        adapter("on-two-labels", LlamaForSequenceClassification.from_pretrained(two_labels), two_labels,
                task_type="SEQ_CLS"): "classifier with 2 outputs",
        adapter("headless", LlamaForCausalLM(tiny_config(tokenizer)), causal, task_type="SEQ_CLS"):
            "saved no classification head",
    }
    for verifier, message in cases.items():
        with pytest.raises(ValueError, match=re.escape(message)):
            harness.BestOfL(**{**args, "verifier": str(verifier)})
    assert not (Path(args["store"]) / STORE_FILE).exists()


def test_generator_without_chat_template_samples_the_plain_prompt(args, tmp_path, caplog):
    plain = tmp_path / "plain-generator"
    shutil.copytree(args["pretrained"], plain)
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(config))

    with caplog.at_level(logging.WARNING):
        outputs, lm = run({**args, "pretrained": str(plain)}, requests(problems=1))
    assert "has no chat template; using the plain prompt format" in caplog.text
    doc = load_docs("mgsm", "de")[0]
    for c in lm.store.candidates():
        question = doc["parallel"][c.lang]
        assert c.prompt_hash == hashlib.sha256((user_prompt(question, c.lang) + "\n").encode()).hexdigest()
        prefix = get_language(c.lang).question_prefix
        assert c.settings["stop"] == [prefix] and prefix not in c.text  # stops before a next question
    assert len(outputs) == 1 and isinstance(outputs[0], str)


def test_empty_generations_are_candidates_without_an_answer(args, monkeypatch):
    from bestofl_models.generation.backends import hf

    original = hf.HFBackend.generate

    def half_empty(self, prompts, seeds, stops, settings):
        made = original(self, prompts, seeds, stops, settings)
        return [dataclasses.replace(g, text="" if i % 2 else g.text + "\nThe answer is 7.") for i, g in enumerate(made)]

    monkeypatch.setattr(hf.HFBackend, "generate", half_empty)
    outputs, lm = run(args)
    empty = [c for c in lm.store.candidates() if c.text == ""]
    assert len(empty) == len(lm.store) // 2 and all(c.answer is None for c in empty)
    assert all(lm.store.score(c.key, lm.verifier_id) is not store_module.MISSING for c in empty)
    for output in outputs:  # an empty candidate never wins over one with an answer
        assert output.strip() and output.rstrip().endswith("Die Antwort lautet 7.")

    monkeypatch.setattr(hf.HFBackend, "generate",
                        lambda self, prompts, *a: [Generation("", 10, 0, False) for _ in prompts])
    outputs, lm = run({**args, "store": str(Path(args["store"]).parent / "all-empty")})
    assert outputs == ["", ""]  # nothing to answer with: an empty answer, scored as wrong
    assert len(lm.store) == 2 * args["n"]
    monkeypatch.setattr(hf.HFBackend, "generate", lambda *a: pytest.fail("empty candidates are not regenerated"))
    assert run({**args, "store": str(Path(args["store"]).parent / "all-empty")})[0] == outputs


@pytest.mark.parametrize("selection", ["cross_orm", "multi_orm", "weighted_vote"])
def test_nan_scores_never_crash_and_never_beat_a_real_score(args, selection, monkeypatch):
    from bestofl_models.verifiers import classifier as verifier_module

    original = verifier_module.HFVerifier.score
    monkeypatch.setattr(verifier_module.HFVerifier, "score",
                        lambda self, texts, progress=True: [math.nan] * len(texts))
    outputs, lm = run({**args, "selection": selection})  # every score NaN: no usable score at all
    assert len(outputs) == 2
    assert all(s is None for s in lm.store.scores(lm.verifier_id).values())  # stored as null, not NaN
    assert len(lm.store.scores(lm.verifier_id)) == 2 * args["n"]

    def some_nan(self, texts, progress=True):
        return [math.nan if i % 2 else p for i, p in enumerate(original(self, texts, progress))]

    monkeypatch.setattr(verifier_module.HFVerifier, "score", some_nan)
    monkeypatch.setattr(choose_stage, "select", _recording_select(chosen := []))
    run({**args, "selection": selection, "store": str(Path(args["store"]).parent / "some-nan")})
    for winner, pool in chosen:
        rivals = [c for c in pool if c.answer is not None and c.score is not None and not math.isnan(c.score)]
        if selection == "multi_orm":
            rivals = [c for c in rivals if c.lang == winner.lang]
        if rivals:
            assert winner.score is not None and not math.isnan(winner.score), (winner, pool)


def _recording_select(log: list):
    from bestofl_models.selection.methods import select

    def recording(method, candidates, target_lang, pool):
        candidates = list(candidates)
        winner = select(method, candidates, target_lang, pool)
        log.append((winner, candidates))
        return winner

    return recording


def test_docs_without_parallel_versions_sample_what_exists(args, caplog):
    doc = dict(load_docs("mgsm", "de")[0])
    doc["parallel"] = {"de": doc["question"], "en": None, "fr": None}  # no translations of this problem
    _, lm = run({**args, "languages": "en:de:fr", "n": 3}, [request(doc, "mgsm_xling_de", 0)])
    assert sorted((c.lang, c.sample_idx) for c in lm.store.candidates()) == [("de", 0), ("de", 1), ("de", 2)]

    other = dict(doc, problem_id="mgsm-9999")
    run_log.warn_no_pool.cache_clear()
    with caplog.at_level(logging.WARNING):  # the target is not in the pool and no pool language exists
        outputs, lm = run({**args, "languages": "en:fr", "n": 2, "store": None},
                          [request(other, "mgsm_xling_de", 0)])
    assert {c.lang for c in lm.store.candidates()} == {"de"} and len(outputs) == 1
    assert "no version in any pool language (en:fr)" in caplog.text


def test_another_verifier_or_generator_never_reuses_foreign_candidates_or_scores(
    args, tiny_verifier_adapter_dir, tmp_path
):
    store = Path(args["store"])
    run(args)
    first = snapshot(store, "candidates")

    # another verifier on the same store: same candidates, its own scores, its own selection
    other_verifier = {**args, "verifier": str(tiny_verifier_adapter_dir)}
    shared, lm = run(other_verifier)
    assert snapshot(store, "candidates") == first
    assert_exact(store, 2 * args["n"], 2)
    alone, _ = run({**other_verifier, "store": str(tmp_path / "alone")})
    assert shared == alone

    # the same weights under another path are the same generator: everything is reused
    moved = tmp_path / "moved-generator"
    shutil.copytree(args["pretrained"], moved)
    run({**args, "pretrained": str(moved)})
    assert snapshot(store, "candidates") == first


def _retrain_in_place(path: Path, cls_name: str) -> None:
    """Replace the checkpoint at ``path`` by one with other weights (same name, same config)."""
    import torch
    import transformers

    model = getattr(transformers, cls_name).from_pretrained(path)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.5, alpha=1.0)
    model.save_pretrained(path)


def test_models_replaced_in_place_or_run_differently_are_never_reused_silently(args, tmp_path):
    """Issue #8 case 2: identity is the content and the settings, not the path string."""
    generator, verifier = tmp_path / "generator", tmp_path / "verifier"
    shutil.copytree(args["pretrained"], generator)
    shutil.copytree(args["verifier"], verifier)
    local = {**args, "pretrained": str(generator), "verifier": str(verifier)}
    store = Path(args["store"])
    total = 2 * args["n"]
    _, lm = run(local)
    first_verifier = lm.verifier_id

    _retrain_in_place(verifier, "AutoModelForSequenceClassification")  # the verifier retrained in place
    _, lm = run(local)
    assert lm.verifier_id != first_verifier
    assert_exact(store, total, 2)  # same candidates, scored again by the new weights
    new = lm.store.scores(lm.verifier_id)
    old = lm.store.scores(first_verifier)
    assert {k for k, _ in new} == {k for k, _ in old} and [new[k, lm.verifier_id] for k, _ in new] != [
        old[k, first_verifier] for k, _ in new]

    run({**local, "dtype": "float32"})  # a setting that changes outputs: new candidates
    assert row_count(store, "candidates") == 2 * total
    _retrain_in_place(generator, "AutoModelForCausalLM")  # the generator retrained in place: new candidates
    run(local)
    assert row_count(store, "candidates") == 3 * total


def test_unwritable_store_fails_before_loading_the_generator(args, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")  # root ignores chmod; a path below a file fails for everyone
    monkeypatch.setattr("bestofl_models.generation.backends.load_backend", lambda c: pytest.fail("generator loaded"))
    with pytest.raises(StoreNotWritableError, match=r"store directory .*a-file/store is not writable.*pass store="):
        harness.BestOfL(**{**args, "store": str(blocker / "store")})


def test_disk_full_mid_run_is_a_clear_error_and_the_rerun_completes(args, monkeypatch):
    store = Path(args["store"])
    lm = harness.BestOfL(**{**args, "batch_size": 4})  # two generation batches of 4

    real_insert, calls = store_module.CandidateStore._insert, []

    def fill_up(self, candidates):
        real_insert(self, candidates)  # the rows are in the open transaction ...
        calls.append(len(candidates))
        if len(calls) > 1:  # ... the first batch fits, the second does not: SQLite's own error
            raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store_module.CandidateStore, "_insert", fill_up)
    with pytest.raises(StoreNotWritableError, match="not writable: No space left on device; pass store="):
        lm.generate_until(requests(), disable_tqdm=True)
    monkeypatch.setattr(store_module.CandidateStore, "_insert", real_insert)
    assert row_count(store, "candidates") == 4  # the first batch, whole; the second rolled back

    run(args)  # space freed: the rerun adds exactly what is missing
    assert_exact(store, 2 * args["n"], 1)


# ================================================================================================ determinism


def test_same_seed_and_settings_give_the_same_candidates_and_selections(args, tmp_path):
    first, a = run({**args, "store": str(tmp_path / "a")})
    second, b = run({**args, "store": str(tmp_path / "b")})
    assert first == second

    def content(lm):
        return {c.key: (c.text, c.answer, lm.store.score(c.key, lm.verifier_id)) for c in lm.store.candidates()}

    assert content(a) == content(b)
    _, c = run({**args, "seed": 99, "store": str(tmp_path / "c")})
    assert {t for t, _, _ in content(c).values()} != {t for t, _, _ in content(a).values()}  # the seed matters

    # ... and the same report: every table, the summary (up to the store's own path) and every plot.
    from bestofl_models.report import cli

    reports = {}
    for name in ("a", "b"):
        assert cli.main(["--store", str(tmp_path / name), "--out", str(tmp_path / f"report-{name}"),
                         "--no-progress"]) == 0
        files = report_files(tmp_path / f"report-{name}")
        files["summary.md"] = files["summary.md"].replace(str(tmp_path / name).encode(), b"STORE")
        reports[name] = files
    assert len(reports["a"]) >= 10 and reports["a"] == reports["b"]



def test_a_candidates_text_does_not_depend_on_limit_or_batch_size(args, tmp_path):
    """hf samples each candidate from its own seed: the first 2 problems' candidates are the same text under
    ``--limit 2`` and ``--limit 5`` and batch sizes 8 and 3 (other batch mates, other padding), in fresh stores."""
    def texts(problems: int, batch_size: int, name: str) -> dict:
        _, lm = run({**args, "batch_size": batch_size, "store": str(tmp_path / name)}, requests(problems=problems))
        return {c.key: c.text for c in lm.store.candidates()}

    small, large = texts(2, 8, "limit2"), texts(5, 3, "limit5")
    assert len(small) == 2 * args["n"] and len(large) == 5 * args["n"] and len(set(small.values())) > 1
    assert {key: large[key] for key in small} == small

# ================================================================================================ no code from data

PACKAGES = ("bestofl_tasks", "bestofl_models", "training")
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}


def _sources():
    for package in PACKAGES:
        yield from sorted((REPO / package).rglob("*.py"))


def _safe_loaders(tree: ast.Module) -> set[str]:
    """Classes in the module that derive from yaml.SafeLoader (or CSafeLoader)."""
    names = {"SafeLoader", "CSafeLoader"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(ast.unparse(base).split(".")[-1] in names for base in node.bases):
            names.add(node.name)
    return names


def test_no_pickle_eval_or_exec_in_the_package_sources():
    problems = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        safe = _safe_loaders(tree)
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import):
                problems += [f"{where} imports {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
                problems.append(f"{where} imports from {node.module}")
            elif isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in UNSAFE_CALLS or name.endswith(("pickle.load", "pickle.loads")):
                    problems.append(f"{where} calls {name}")
                elif name == "torch.load" and not any(
                    k.arg == "weights_only" and getattr(k.value, "value", None) is True for k in node.keywords
                ):
                    problems.append(f"{where} calls torch.load without weights_only=True")
                elif name in ("yaml.load", "yaml.load_all", "yaml.unsafe_load", "yaml.full_load"):
                    loader = next((ast.unparse(k.value) for k in node.keywords if k.arg == "Loader"), "")
                    if name != "yaml.load" or loader.split(".")[-1] not in safe:
                        problems.append(f"{where} calls {name} with Loader={loader or 'default'}")
                for k in node.keywords:
                    if k.arg == "trust_remote_code" and isinstance(k.value, ast.Constant) and k.value.value:
                        problems.append(f"{where} hard-codes trust_remote_code=True")
    assert not problems, "\n".join(problems)
    # The one exec is the start-up hook's .pth line: a constant string, no data.
    pth = (REPO / "bestofl_tasks" / "bestofl_autoload.pth").read_text()
    calls = [n for n in ast.walk(ast.parse(pth)) if isinstance(n, ast.Call) and ast.unparse(n.func) == "exec"]
    assert len(calls) == 1 and isinstance(calls[0].args[0], ast.Constant)
    assert "import bestofl_tasks._autoload" in calls[0].args[0].value


def test_the_store_reader_runs_no_code_from_the_data(tmp_path):
    # A record that would run code if the reader were pickle- or eval-based is just text here.
    run_me = tmp_path / "ran"
    payload = f"__import__('pathlib').Path({str(run_me)!r}).touch()"
    (tmp_path / "candidates.jsonl").write_text(
        json.dumps({"key": payload, "text": payload}) + "\n" + payload + "\n", encoding="utf-8"
    )
    CandidateStore(tmp_path, read_only=True).candidates()
    assert not run_me.exists()


def test_trust_remote_code_only_when_requested(args, monkeypatch):
    import transformers

    seen = []
    for cls in (transformers.AutoTokenizer, transformers.AutoConfig, transformers.AutoModelForCausalLM,
                transformers.AutoModelForSequenceClassification):
        original = cls.from_pretrained.__func__

        def recording(klass, *a, _original=original, _name=cls.__name__, **kw):
            seen.append((_name, kw.get("trust_remote_code", False)))
            return _original(klass, *a, **kw)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(recording))

    run({**args, "n": 2}, requests(problems=1))
    assert {name for name, _ in seen} >= {"AutoTokenizer", "AutoModelForCausalLM",
                                           "AutoModelForSequenceClassification"}
    assert not any(trusted for _, trusted in seen), seen
    seen.clear()
    run({**args, "n": 2, "trust_remote_code": "true", "store": None}, requests(problems=1))
    ours = [trusted for name, trusted in seen]
    assert ours and all(ours), seen


# ================================================================================================ reports

REPORT_DRIVER = """
import os, sys, time
from bestofl_models.report import cli

real_fsync = os.fsync

def slow_fsync(fd):  # each report file takes a while to write: time to kill mid-way
    time.sleep(float(sys.argv[1]))
    real_fsync(fd)

os.fsync = slow_fsync
sys.exit(cli.main(sys.argv[2:]))
"""


def report_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.mark.slow
def test_kill_9_while_writing_the_report_then_rerun_writes_exactly_the_report(tmp_path):
    """Issue #8 case 8: a report is staged beside --out and swapped in whole, so a writer killed (or failing)
    mid-way leaves the previous report exactly as it was, never a mix of old and new files."""
    from bestofl_models.report import cli
    from bestofl_models.report.synthetic import build_synthetic_store

    store, previous_store = tmp_path / "store", tmp_path / "previous-store"
    build_synthetic_store(str(store), problems=12, languages=("en", "de", "fr"), samples_per_language=4)
    build_synthetic_store(str(previous_store), problems=6, languages=("en", "de"), samples_per_language=2)
    before = snapshot(store, "candidates"), snapshot(store, "scores")
    clean, out = tmp_path / "clean", tmp_path / "out"
    assert cli.main(["--store", str(store), "--out", str(clean), "--no-progress"]) == 0
    expected = report_files(clean)
    assert len(expected) >= 10
    assert cli.main(["--store", str(previous_store), "--out", str(out), "--no-progress"]) == 0
    previous = report_files(out)
    assert previous != expected

    process = subprocess.Popen(
        [sys.executable, "-c", REPORT_DRIVER, "0.5", "--store", str(store), "--out", str(out), "--no-progress"],
        env={**os.environ, "MPLBACKEND": "Agg"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )

    def staging() -> list[Path]:
        return [p for p in tmp_path.iterdir() if p.name.startswith(".out.") and p.name.endswith(".tmp")]

    wait_for(lambda: any(len(list(p.iterdir())) >= 2 for p in staging()), process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert staging(), "not killed while staging"
    assert report_files(out) == previous  # the previous report, untouched and unmixed

    assert cli.main(["--store", str(store), "--out", str(out), "--no-progress"]) == 0
    assert report_files(out) == expected  # every file, byte for byte, and nothing else
    assert not staging() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    assert (snapshot(store, "candidates"), snapshot(store, "scores")) == before  # reports never write to stores


def test_a_bad_out_folder_is_refused_before_any_computation(tmp_path, monkeypatch, capsys):
    from bestofl_models.report import build, cli
    from bestofl_models.report.synthetic import build_synthetic_store

    store = tmp_path / "store"
    build_synthetic_store(str(store), problems=2, languages=("en", "de"), samples_per_language=2)
    monkeypatch.setattr(build, "build_report", lambda *a, **k: pytest.fail("computed before checking --out"))
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my own notes")
    for out, message in ((tmp_path / "a-file", "exists and is not a folder"),
                         (tmp_path / "a-file" / "below", "cannot write in"),
                         (tmp_path / "mine", "holds files that are not a bestofl report")):
        with pytest.raises(SystemExit):
            cli.main(["--store", str(store), "--out", str(out), "--no-progress"])
        assert message in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "my own notes"
