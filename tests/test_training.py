"""bestofl-train stages on small data, offline: config checks, translate (tiny MT model), label, balance,
fit/evaluate/export on a learnable synthetic signal (tiny backbone and the real SmolLM2-135M-Instruct)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from fixtures import DATA_DIR  # tests/ is on sys.path (rootdir conftest)

from bestofl_models import testing
from bestofl_models.selection.methods import METHODS
from bestofl_models.store import Candidate, CandidateStore
from bestofl_tasks.answers import extract_answer
from training import label, translate
from training.cli import main, run_stages
from training.common import read_jsonl
from training.config import ConfigError, load_config, validate

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"
TINY = CONFIGS / "tiny-cpu.yaml"


@pytest.fixture(autouse=True)
def _local_data(monkeypatch):
    monkeypatch.setenv("BESTOFL_DATA_DIR", str(DATA_DIR))


def tiny_config(*overrides: str, base: Path | None = None):
    sets = list(overrides)
    if base is not None:
        sets.append(f"verifier_base={base}")
    return load_config(TINY, sets)


# --------------------------------------------------------------------------------------------------- synthetic data


def write_candidates(out: Path, problems: int, languages=("en", "de", "fr"), seed: int = 0) -> list[dict]:
    """A generate-stage output whose correctness is learnable from wording.

    Per problem and language: one correct response ("Checked every step carefully ..."), three incorrect
    ones ("rough guess ..."; two share a wrong answer, so majority voting fails), one exact duplicate and
    one unparsable response (no number).
    """
    rng = random.Random(seed)
    rows = []
    for p in range(problems):
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        for lang in languages:
            wrong = a + b + rng.randint(1, 9)
            texts = [f"Checked every step carefully twice. Result {a + b}.\nThe answer is {a + b}."]
            texts += [f"Hmm, rough guess only, not sure. Result {w}.\nThe answer is {w}." for w in (wrong, wrong, wrong + 1)]
            texts[2] = texts[2].replace("Hmm,", "Well,")
            texts += [texts[1], "Hmm, rough guess only, I cannot tell."]
            for i, text in enumerate(texts):
                rows.append({"key": f"syn-{p}-{lang}-{i}", "problem_id": f"syn-{p:03d}", "lang": lang, "sample_idx": i,
                             "generator": "synthetic", "question": f"{a} + {b} = ?", "response": text,
                             "gold": str(a + b)})
    (out / "generate").mkdir(parents=True, exist_ok=True)
    store = CandidateStore(out / "generate" / "store")
    store.add_candidates(Candidate(r["key"], r["problem_id"], f"synthetic_{r['lang']}", r["problem_id"], r["lang"],
                                   r["lang"], r["sample_idx"], "synthetic", "prompt", {}, r["response"],
                                   extract_answer(r["response"], r["lang"]), r["gold"]) for r in rows)
    store.close()
    with open(out / "generate" / "candidates.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows)
    (out / "generate" / "manifest.json").write_text(json.dumps({"fingerprint": f"synthetic-{problems}-{seed}"}))
    return rows


# --------------------------------------------------------------------------------------------------- config


def test_paper_config_is_the_recipe():
    config = load_config(CONFIGS / "paper.yaml")
    assert config.verifier_base == "Qwen/Qwen2.5-3B-Instruct"
    assert (config.fit.lora_r, config.fit.lora_alpha) == (16, 32)
    assert config.languages == ["en", "de", "es", "fr", "ru", "zh", "ja", "th"]
    assert config.balance.enabled and config.generate.backend == "vllm" and len(config.generators) == 2


def test_fit_section_errors_name_the_key_and_what_exists():
    """The fit section is TrainingArguments plus LoRA/length fields: every problem is reported at once, an unknown
    key with the closest known one and where the known ones are listed, transformers' own checks as fit errors."""
    with pytest.raises(ConfigError) as err:
        load_config(TINY, ["fit.learning_rat=1e-4", "fit.lora.rank=8", "fit.output_dir=/tmp/x",
                           "fit.per_device_train_batch_size=four", "fit.bf16=maybe"])
    message = str(err.value)
    assert "fit.learning_rat: unknown setting (did you mean 'fit.learning_rate'?)" in message
    assert "known: lora (r, alpha, dropout, target_modules), max_length, model_dtype and any field of " \
           "transformers.TrainingArguments" in message
    assert "fit.lora.rank: unknown setting; known: r, alpha, dropout, target_modules" in message
    assert "fit.output_dir: set by the fit stage" in message
    assert "fit.per_device_train_batch_size: expected int, got 'four'" in message
    with pytest.raises(ConfigError, match="fit: bf16 must be auto, true or false"):
        load_config(TINY, ["fit.bf16=maybe"])
    with pytest.raises(ConfigError, match="fit: sometimes is not a valid SchedulerType, please select one of"):
        load_config(TINY, ["fit.lr_scheduler_type=sometimes"])
    config = load_config(TINY, ["fit.lora.r=4", "fit.weight_decay=0.1", "fit.optim=adamw_torch"])
    assert (config.fit.lora_r, config.fit.weight_decay, config.fit.optim) == (4, 0.1, "adamw_torch")


def test_config_errors_say_what_to_change(tmp_path):
    with pytest.raises(ConfigError, match="learning_rate"):
        load_config(TINY, ["fit.learning_rat=1e-4"])
    with pytest.raises(ConfigError, match="generate.k: expected int"):
        load_config(TINY, ["generate.k=two"])
    assert load_config(TINY, ["fit.learning_rate=2e-3"]).fit.learning_rate == 0.002  # YAML 1.1 string
    assert load_config(TINY, ["languages=en:de"]).languages == ["en", "de"]

    with pytest.raises(ConfigError) as err:
        validate(tiny_config(
            "verifier_base=someone/not-downloaded", "generate.temperature=0", "languages=en:th:xx",
            f"generator={tmp_path / 'missing'}",
        ))
    message = str(err.value)
    assert "generator:" in message and "is not a directory" in message
    assert "HF_HUB_OFFLINE=1" in message  # Hub id, offline, not cached
    assert message.count("greedy") == 1  # one problem, one message (the harness's own check)
    assert "n is generate.k" in message and "temperature=0 is greedy decoding" in message
    assert "unknown code(s) xx" in message

    with pytest.raises(ConfigError, match="tensor_parallel_size applies to backend=vllm only"):
        validate(tiny_config(f"generator={tmp_path}", "generate.model_args.tensor_parallel_size=2"), ("generate",))
    with pytest.raises(ConfigError, match="languages: The language pool en:de:en names en more than once"):
        validate(tiny_config("languages=en:de:en"), ("label",))
    with pytest.raises(ConfigError, match="source must be gsm8k_train"):
        validate(tiny_config("source=mgsm"), ("translate",))
    no_mt = tmp_path / "no-mt.yaml"  # a null in the file is "no MT model" (--set translate.model=null: the default)
    no_mt.write_text(yaml.safe_dump({**yaml.safe_load(TINY.read_text()), "translate": {"model": None}}))
    with pytest.raises(ConfigError, match="th need MT"):
        validate(load_config(no_mt, ["languages=en:th"]), ("translate",))


def test_cli_rejects_a_bad_config_before_any_work(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--config", str(TINY), "--output-dir", str(out)]) == 2
    assert "--set generator=" in capsys.readouterr().err
    assert not out.exists()
    assert main(["check", "--config", str(TINY), "--set", f"generator={tmp_path}", "--set", f"verifier_base={tmp_path}"]) == 0
    assert "verifier_base: " in capsys.readouterr().out


def test_run_until_stops_after_that_stage(tmp_path):
    out = tmp_path / "out"
    assert main(["run", "--config", str(TINY), "--output-dir", str(out), "--until", "translate", "--set", "limit=2"]) == 0
    assert (out / "translate" / "manifest.json").is_file() and not (out / "generate").exists()
    assert load_config(out / "config.yaml").limit == 2


# --------------------------------------------------------------------------------------------------- translate


def test_number_check():
    assert translate.missing_numbers("It costs $1,250.50 for 3 kg.", "Es kostet 1.250,50 $ für 3 kg.") == []
    assert translate.missing_numbers("18 eggs and 3 ducks", "ไข่ ๑๘ ฟอง เป็ดสามตัว") == ["3"]
    assert translate.missing_numbers("two ducks", "2 Enten") == []  # extra numbers are fine


@pytest.fixture(scope="module")
def tiny_mt(tmp_path_factory):
    """A random-weight M2M100 (NLLB's architecture) with NLLB language tokens: plumbing, not quality."""
    import torch
    from transformers import AutoTokenizer, M2M100Config, M2M100ForConditionalGeneration

    from training.config import NLLB_CODES

    path = tmp_path_factory.mktemp("tiny-mt")
    tokenizer = AutoTokenizer.from_pretrained(testing.tiny_tokenizer())
    tokenizer.add_special_tokens({"additional_special_tokens": sorted(set(NLLB_CODES.values()))})
    torch.manual_seed(0)
    config = M2M100Config(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
    )
    M2M100ForConditionalGeneration(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_translate_uses_existing_translations_and_caches_machine_translation(tmp_path, tiny_mt):
    sets = ["limit=3", "languages=en:de:th", f"translate.model={tiny_mt}", "translate.max_new_tokens=8",
            "translate.num_beams=1", "translate.batch_size=2"]
    manifest = translate.run(tmp_path, tiny_config(*sets, "translate.number_check=report"))
    rows = read_jsonl(tmp_path / "translate" / "questions.jsonl")
    origin = {(r["problem_id"], r["lang"]): r["origin"] for r in rows}
    assert len(rows) == 9 and manifest["counts"]["machine_translated_new"] == 3
    assert {origin[p, "en"] for p, _ in origin} == {"source"}
    assert {origin[p, "de"] for p, _ in origin} == {"existing"} and {origin[p, "th"] for p, _ in origin} == {"mt"}
    mismatches = read_jsonl(tmp_path / "translate" / "number_mismatches.jsonl")
    assert mismatches and all(m["lang"] == "th" and m["missing"] and m["action"] == "kept" for m in mismatches)

    # A run killed after one cached translation (and half a line) continues from the cache.
    cache = tmp_path / "translate" / "mt_cache.jsonl"
    lines = cache.read_text(encoding="utf-8").splitlines(keepends=True)
    cache.write_text(lines[0] + lines[1][:20], encoding="utf-8")
    config = tiny_config(*sets)  # number_check=drop: settings changed, stage reruns
    manifest = translate.run(tmp_path, config)
    counts = manifest["counts"]
    assert (counts["machine_translated_cached"], counts["machine_translated_new"]) == (1, 2)
    assert counts["per_language"]["th"]["dropped"] == counts["number_mismatches"] == len(mismatches)
    assert len(read_jsonl(cache)) == 3
    assert translate.stage(tmp_path, config).is_done()


# --------------------------------------------------------------------------------------------------- label, balance


def test_label_rule_for_unparsable_responses(tmp_path):
    rows = write_candidates(tmp_path, problems=2, languages=("en",))
    labeled, stats = label.label_rows(rows, "incorrect")
    assert len(labeled) == len(rows)
    assert stats["en"]["unparsable"] == 2 and stats["en"]["correct"] == 2
    assert all(r["label"] == 0 for r in labeled if not r["parsable"])
    dropped, stats = label.label_rows(rows, "drop")
    assert len(dropped) == len(rows) - 2 and stats["en"]["dropped"] == 2


def test_balance_dedups_splits_by_problem_and_balances_per_language(tmp_path):
    write_candidates(tmp_path, problems=20)
    config = tiny_config("balance.enabled=true", "balance.validation_fraction=0.25", "languages=en:de:fr")
    run_stages(config, tmp_path, ("label", "balance"))
    train = read_jsonl(tmp_path / "balance" / "train.jsonl")
    validation = read_jsonl(tmp_path / "balance" / "validation.jsonl")
    assert not {r["problem_id"] for r in train} & {r["problem_id"] for r in validation}
    assert len({r["problem_id"] for r in validation}) == 5
    for rows in (train, validation):
        for lang in ("en", "de", "fr"):
            labels = [r["label"] for r in rows if r["lang"] == lang]
            assert labels and sum(labels) * 2 == len(labels)
        texts = [(r["problem_id"], r["lang"], r["response"]) for r in rows]
        assert len(texts) == len(set(texts))
    stats = json.loads((tmp_path / "balance" / "manifest.json").read_text())["counts"]
    assert stats["duplicates_removed"] == 60 and stats["per_language"]["de"]["train"]["kept_correct"] == 15
    first = (tmp_path / "balance" / "train.jsonl").read_text()
    (tmp_path / "balance" / "manifest.json").unlink()
    run_stages(config, tmp_path, ("balance",))
    assert (tmp_path / "balance" / "train.jsonl").read_text() == first  # seeded


# --------------------------------------------------------------------------------------------------- fit, evaluate, export


def _harness_scores(adapter: Path, rows: list[dict]) -> list[float]:
    from bestofl_models.verifiers.classifier import load_verifier, score_responses
    from bestofl_models.verifiers.config import VerifierConfig

    verifier = load_verifier(VerifierConfig(str(adapter)))
    try:
        return score_responses(verifier, [(r["question"], r["response"], r["lang"]) for r in rows], progress=False)
    finally:
        verifier.close()


def _check_outputs(out: Path, base: Path) -> dict:
    from transformers import AutoConfig

    metrics = json.loads((out / "metrics.json").read_text())
    assert {"auc", "accuracy", "per_language", "best_of_n", "top_language_distribution"} <= set(metrics)
    adapter_config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str(base) and "score" in adapter_config["modules_to_save"]
    merged = AutoConfig.from_pretrained(out / "merged")
    assert merged.num_labels == 1 and merged.problem_type == "multi_label_classification"
    assert merged.pad_token_id is not None
    export = json.loads((out / "export" / "manifest.json").read_text())
    assert export["merged_max_abs_score_diff"] < 1e-4  # the harness verifier on merged/ vs on adapter/
    assert "| lang | AUC |" in (out / "README.md").read_text()
    assert not (out / "adapter" / "training_args.bin").exists()

    # The harness verifier (what lm_eval --model bestofl loads) scores exactly as evaluate stored it.
    store = CandidateStore(out / "generate" / "store", read_only=True)
    scored = {key: score for (key, verifier), score in store.scores().items() if verifier == metrics["verifier_id"]}
    pool = [r for r in read_jsonl(out / "label" / "labeled.jsonl") if r["key"] in scored][:6]
    for row, score in zip(pool, _harness_scores(out / "adapter", pool)):
        assert score == pytest.approx(scored[row["key"]], abs=1e-4)
    return metrics


def test_fit_evaluate_export_learn_a_learnable_signal(tmp_path, tiny_generator_dir):
    write_candidates(tmp_path, problems=40)
    config = tiny_config(
        "balance.enabled=true", "balance.validation_fraction=0.25", "fit.max_steps=40", "fit.learning_rate=2e-3",
        "fit.per_device_train_batch_size=8", "fit.save_steps=20", "fit.lora.target_modules=[q_proj,k_proj,v_proj,o_proj]",
        base=tiny_generator_dir,
    )
    run_stages(config, tmp_path, ("label", "balance", "fit", "evaluate", "export"))
    metrics = _check_outputs(tmp_path, tiny_generator_dir)
    assert metrics["auc"] > 0.8
    assert all(m["auc"] > 0.8 for m in metrics["per_language"].values())
    bon = metrics["best_of_n"]
    assert bon["problems"] == 10 and bon["verifier"] > bon["random"] and bon["verifier"] >= bon["majority"]
    # Every selection of the registry is evaluated: pool methods over the pool, target-only ones per language.
    assert {name for name, m in METHODS.items() if not m.target_only} <= set(bon["methods"])
    assert {name for name, m in METHODS.items() if m.target_only} <= set(bon["per_language"]["de"]["methods"])
    assert bon["methods"]["cross_orm"] == bon["verifier"] and 0 <= bon["methods"]["top_k_weighted_vote"] <= 1
    shares = metrics["top_language_distribution"]
    assert sum(d["top_count"] for d in shares.values()) == 10
    fit = json.loads((tmp_path / "fit" / "manifest.json").read_text())["counts"]
    assert fit["global_step"] == 40 and fit["train_rows"] == 180


@pytest.mark.slow
def test_real_pretrained_backbone(tmp_path, smollm2_dir):
    """SmolLM2-135M-Instruct as the verifier base: fit, evaluate, export, harness loading (short run)."""
    write_candidates(tmp_path, problems=8, languages=("en", "de"))
    config = tiny_config(
        "languages=en:de", "balance.enabled=true", "balance.validation_fraction=0.25", "fit.max_steps=6",
        "fit.learning_rate=3e-3", "fit.per_device_train_batch_size=2", "fit.lora.target_modules=[v_proj]",
        base=smollm2_dir,
    )
    run_stages(config, tmp_path, ("label", "balance", "fit", "evaluate", "export"))
    metrics = _check_outputs(tmp_path, smollm2_dir)
    assert metrics["n"] == 8 and metrics["pool_candidates"] == 24
    assert metrics["pool_auc"] > 0.6  # measured 1.0 here; the signal is learnable in 6 steps
    losses = [e["loss"] for e in read_jsonl(tmp_path / "fit" / "log_history.jsonl") if "loss" in e]
    assert len(losses) == 3 and all(loss == loss for loss in losses)  # logged, finite


# --------------------------------------------------------------------------------------------------- caches


def test_append_log_cuts_a_torn_tail_in_place(tmp_path):
    """A torn last line is truncated away; the complete records before it are never rewritten."""
    import os

    from training.common import AppendLog

    path = tmp_path / "cache.jsonl"
    complete = b'{"key":"a","score":0.25}\n{"key": "b",  "score": NaN}\n'  # not json.dumps' own spelling
    path.write_bytes(complete + b'{"key": "c", "sco')
    inode = path.stat().st_ino
    log = AppendLog(path)
    assert [r["key"] for r in log.records] == ["a", "b"]
    assert path.read_bytes() == complete and path.stat().st_ino == inode  # cut in place, bytes untouched
    log.append([{"key": "c", "score": 0.5}])
    assert [r["key"] for r in AppendLog(path).records] == ["a", "b", "c"]
    assert os.path.getsize(path) == len(complete) + len(b'{"key": "c", "score": 0.5}\n')


def test_balance_dedup_false_keeps_duplicates(tmp_path):
    rows = write_candidates(tmp_path, problems=4, languages=("en",))
    config = tiny_config("balance.enabled=false", "balance.dedup=false", "languages=en")
    run_stages(config, tmp_path, ("label", "balance"))
    kept = read_jsonl(tmp_path / "balance" / "train.jsonl") + read_jsonl(tmp_path / "balance" / "validation.jsonl")
    assert len(kept) == len(rows)  # the duplicate of each problem is still there
    assert json.loads((tmp_path / "balance" / "manifest.json").read_text())["counts"]["duplicates_removed"] == 0
    run_stages(tiny_config("balance.enabled=false", "balance.dedup=true", "languages=en"), tmp_path, ("balance",))
    assert json.loads((tmp_path / "balance" / "manifest.json").read_text())["counts"]["duplicates_removed"] == 4


def test_evaluate_leaves_non_finite_scores_out_and_counts_them(tmp_path, monkeypatch):
    """NaN scores (the verifier produced none) must not crash roc_auc_score; they rank last in Best-of-N."""
    from training import evaluate

    write_candidates(tmp_path, problems=8)
    config = tiny_config("balance.enabled=true", "balance.validation_fraction=0.5", "languages=en:de:fr")
    run_stages(config, tmp_path, ("label", "balance"))
    (tmp_path / "fit").mkdir()
    (tmp_path / "fit" / "manifest.json").write_text(json.dumps({"fingerprint": "fake-fit"}))

    def fake_scores(out_dir, config, store, rows):
        # A perfect verifier, except that every correct "en" candidate and one "de" candidate per problem
        # have no score (NaN, or inf as a broken head might give).
        scores = {}
        for r in rows:
            scores[r["key"]] = 0.9 if r["label"] else 0.1
            if r["lang"] == "en" and r["label"]:
                scores[r["key"]] = float("nan")
            elif r["lang"] == "de" and r["sample_idx"] == 1:
                scores[r["key"]] = float("inf")
        store.add_scores("verifier-fake", scores)
        return "verifier-fake"

    monkeypatch.setattr(evaluate, "score_rows", fake_scores)
    evaluate.run(tmp_path, config)
    metrics = json.loads((tmp_path / "evaluate" / "metrics.json").read_text())
    pool = [r for r in read_jsonl(tmp_path / "label" / "labeled.jsonl")
            if r["problem_id"] in {p["problem_id"] for p in read_jsonl(tmp_path / "balance" / "problems.jsonl")
                                   if p["split"] == "validation"}]
    dropped = sum(1 for r in pool if (r["lang"] == "en" and r["label"]) or (r["lang"] == "de" and r["sample_idx"] == 1))
    assert metrics["pool_dropped_non_finite"] == dropped > 0
    assert metrics["pool_auc"] == 1.0 and metrics["auc"] == 1.0
    assert metrics["dropped_non_finite"] == metrics["per_language"]["en"]["dropped_non_finite"] + \
        metrics["per_language"]["de"]["dropped_non_finite"] > 0
    assert metrics["per_language"]["en"]["auc"] is None  # only incorrect "en" rows have scores
    bon = metrics["best_of_n"]
    assert bon["verifier"] == 1.0  # the de/fr correct candidates win; NaN/inf never rank first
    assert bon["per_language"]["en"]["verifier"] == 0.0  # all en correct ones are unscored: they rank last


def test_the_recipes_fit_keys_reach_the_trainer(tmp_path):
    """The YAML's fit keys reach the Trainer's arguments under the installed transformers' names (5.x renamed
    group_by_length, dropped warmup_ratio and deprecated gradient_checkpointing; only the installed version is
    run here): a warmup_ratio of 0.03 is ceil(total * 0.03) warmup steps, and no FutureWarning is raised."""
    import warnings

    from training import fit

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        config = tiny_config("fit.warmup_ratio=0.03", "fit.group_by_length=false", "fit.gradient_checkpointing=true",
                             "fit.eval_steps=5")
        args = fit.training_arguments(config, tmp_path, has_validation=True)
    assert args.get_warmup_steps(1000) == 30 and args.get_warmup_steps(10) == 1
    assert args.gradient_checkpointing and args.gradient_checkpointing_kwargs == {"use_reentrant": False}
    assert getattr(args, "train_sampling_strategy", "random") == "random" and not getattr(args, "group_by_length", False)
    assert (args.output_dir, args.seed, args.data_seed) == (str(tmp_path), config.seed, config.seed)
    assert (args.eval_strategy, args.eval_steps) == ("steps", 5)
    assert fit.training_arguments(config, tmp_path, has_validation=False).eval_strategy == "no"


def test_fit_settings_round_trip_through_the_written_config(tmp_path):
    """config.yaml (what every run writes and later stage commands read) gives the same fit settings back."""
    from training.config import dump_config

    config = load_config(CONFIGS / "paper.yaml", ["fit.bf16=false"])
    saved = tmp_path / "config.yaml"
    saved.write_text(dump_config(config))
    again = load_config(saved)
    assert again.to_dict() == config.to_dict() and again.section_hash("fit") == config.section_hash("fit")
    assert (again.fit.lora_r, again.fit.learning_rate, again.fit.num_train_epochs) == (16, 1e-4, 2.0)


def test_fit_never_cuts_an_input_it_drops_over_long_rows(tiny_tokenizer_dir):
    """Train = serve: the harness verifier scores whole texts, so fit trains on whole texts only (no left cut
    that would remove the chat template's start)."""
    from transformers import AutoTokenizer

    from bestofl_models.generation.backends import add_special_tokens
    from bestofl_models.verifiers.checkpoint import prepare_verifier_tokenizer
    from bestofl_tasks.prompts import verifier_text
    from training import fit

    tokenizer = prepare_verifier_tokenizer(AutoTokenizer.from_pretrained(tiny_tokenizer_dir))
    rows = [{"question": "What is 2 + 2?", "response": "Two and two. The answer is 4.", "lang": "en", "label": 1},
            {"question": "What is 2 + 3?", "response": "Let me think. " * 60 + "The answer is 5.", "lang": "en",
             "label": 0},
            {"question": "Was ist 2 + 2?", "response": "Die Antwort ist 5.", "lang": "de", "label": 0}]
    served = [tokenizer(verifier_text(tokenizer, r["question"], r["response"], r["lang"]),
                        add_special_tokens=add_special_tokens(tokenizer))["input_ids"] for r in rows]
    max_length = max(len(served[0]), len(served[2]))
    assert len(served[1]) > max_length
    data, dropped = fit.encode(tokenizer, rows, max_length)
    assert dropped == [rows[1]]
    assert data["input_ids"] == [served[0], served[2]]  # exactly what the harness verifier tokenizes
    assert data["labels"] == [[1.0], [0.0]] and all(ids[0] == served[0][0] for ids in data["input_ids"])
    empty, none = fit.encode(tokenizer, [], max_length)
    assert len(empty) == 0 and none == []
