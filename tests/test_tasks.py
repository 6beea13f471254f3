"""The task pack: generated YAMLs, parallel docs, data errors, prompts, and the stock lm-eval CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures import DATA_DIR
from bestofl_tasks import data, task_hooks
from bestofl_tasks.answers import extract_answer
from bestofl_tasks.languages import LANGUAGES, MGSM_LANGUAGES, final_answer_line
from bestofl_tasks.prompts import user_prompt

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def local_data(monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(DATA_DIR))
    return DATA_DIR


def test_task_yamls_match_the_generator():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import generate_task_yamls
    finally:
        sys.path.pop(0)
    rendered = generate_task_yamls.render()
    on_disk = {p for p in (REPO / "task_yamls").rglob("*") if p.is_file()}
    assert on_disk == set(rendered), "task_yamls/ out of date: run scripts/generate_task_yamls.py"
    for path, text in rendered.items():
        assert path.read_text(encoding="utf-8") == text, f"{path} differs: run scripts/generate_task_yamls.py"


def test_mgsm_docs_are_parallel_in_all_languages(local_data):
    by_lang = {lang: data.load_docs("mgsm", lang) for lang in MGSM_LANGUAGES}
    for lang, docs in by_lang.items():
        assert len(docs) == 250
        assert docs[42]["problem_id"] == "mgsm-0042"
        assert docs[42]["lang"] == lang
        assert set(docs[42]["parallel"]) == set(MGSM_LANGUAGES)
        assert docs[42]["parallel"][lang] == docs[42]["question"]
    for row in range(250):
        assert len({by_lang[lang][row]["answer"] for lang in MGSM_LANGUAGES}) == 1
        assert by_lang["de"][row]["parallel"]["bn"] == by_lang["bn"][row]["question"]
    # thousands separators in the TSVs are canonicalised
    assert by_lang["en"][146]["answer"] == "2125"


def test_gsm8k_train_docs_skip_missing_translations(local_data):
    english = data.load_docs("gsm8k_train", "en")
    german = data.load_docs("gsm8k_train", "de")
    assert len(english) == 560  # the slice in tests/data: row 447 has no German translation
    assert len(german) == 559
    assert set(english[0]["parallel"]) == {"en", "de", "es", "fr", "ja", "ru", "sw", "zh"}
    missing_de = [d for d in english if d["parallel"]["de"] is None]
    assert [d["problem_id"] for d in missing_de] == ["gsm8k-train-0447"]
    ids = {d["problem_id"] for d in german}
    assert not ids & {d["problem_id"] for d in missing_de}
    assert english[0]["answer"] == "72"


def test_gsm8k_test_english_offline_and_missing_translation_names_the_file(local_data):
    english = data.load_docs("gsm8k_test", "en")
    assert len(english) == 150 and english[0]["problem_id"] == "gsm8k-test-0000"  # the slice in tests/data
    with pytest.raises(FileNotFoundError, match=r"gsm8kx/gsm8k_DE_test\.jsonl"):
        data.load_docs("gsm8k_test", "de")


def test_unknown_language_lists_supported_codes(local_data):
    with pytest.raises(ValueError, match=r"Unknown language code 'xx'.*en, es, fr"):
        data.load_docs("mgsm", "xx")
    with pytest.raises(ValueError, match="Unknown source"):
        data.load_docs("mgsm2", "en")


def test_misaligned_translation_fails_loudly(tmp_path, monkeypatch):
    shutil.copytree(DATA_DIR / "mgsm", tmp_path / "mgsm")
    german = tmp_path / "mgsm" / "mgsm_de.tsv"
    lines = german.read_text(encoding="utf-8").split("\n")
    lines[0], lines[1] = lines[1], lines[0]
    german.write_text("\n".join(lines), encoding="utf-8")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(data.DataAlignmentError, match="de row 0 has gold answer"):
        data.load_docs("mgsm", "en")


def test_missing_local_file_names_the_expected_path(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"mgsm/mgsm_en\.tsv does not exist"):
        data.load_docs("mgsm", "en")


def test_train_translations_without_local_data_say_what_to_do(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="BESTOFL_DATA_DIR"):
        data._train_translation_rows("de", ["1"])


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_prompts_are_written_in_the_language(lang):
    spec = LANGUAGES[lang]
    prompt = user_prompt("  Q?  ", lang)
    assert prompt.startswith(spec.instruction)
    assert spec.question_prefix in prompt and prompt.endswith(spec.cot_cue)
    assert "Q?" in prompt and "  Q?" not in prompt
    # the final line the instruction asks for is the one the extractor and lm-eval parse
    assert spec.final_line.format(answer="N").rstrip(".。।") in spec.instruction


def test_filter_and_metric_compare_numbers():
    docs = [{"lang": "bn", "answer": "18"}, {"lang": "de", "answer": "3.5"}]
    filtered = task_hooks.extract_answers([["… উত্তর হল ১৮।"], ["Die Antwort lautet 35."]], docs)
    assert filtered == [["18"], ["35"]]
    assert task_hooks.process_results(docs[0], filtered[0]) == {"exact_match": 1.0}
    assert task_hooks.process_results(docs[1], filtered[1]) == {"exact_match": 0.0}
    assert task_hooks.process_results(docs[1], ["[invalid]"]) == {"exact_match": 0.0}


def run_lm_eval(args: list[str], tmp_path: Path) -> dict:
    env = {**os.environ, "BESTOFL_DATA_DIR": str(DATA_DIR), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = tmp_path / "results"
    cmd = [str(Path(sys.executable).parent / "lm_eval"), *args, "--output_path", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    files = sorted(out.rglob("results_*.json"))
    assert files, f"no results file under {out}"
    return json.loads(files[-1].read_text())


def test_mgsm_exemplars_become_worked_examples_in_every_language(local_data):
    for lang in MGSM_LANGUAGES:
        exemplars = data.load_exemplars(lang)
        assert len(exemplars) == 8 and {e["lang"] for e in exemplars} == {lang}
        for exemplar in exemplars:
            assert not exemplar["question"].startswith(LANGUAGES[lang].question_prefix)
            assert not exemplar["solution"].startswith(LANGUAGES[lang].cot_cue)
            target = task_hooks.fewshot_target(exemplar)
            final = final_answer_line(exemplar["answer"], lang)
            reasoning, last_line = target.rsplit("\n", 1)
            assert last_line == final, (lang, target)
            assert final not in reasoning, target  # the exemplar's closing sentence became that line
            assert extract_answer(target, lang) == exemplar["answer"]
    assert task_hooks.fewshot_target(data.load_exemplars("de")[0]).endswith("5 + 6 = 11.\nDie Antwort lautet 11.")


def test_num_fewshot_puts_the_languages_exemplars_before_the_question(local_data):
    import lm_eval

    def prompt(**kwargs) -> str:
        results = lm_eval.simple_evaluate(model="dummy", tasks=["mgsm_xling_de"], limit=1, log_samples=True, **kwargs)
        return results["samples"]["mgsm_xling_de"][0]["arguments"][0][0]

    exemplars, doc = data.load_exemplars("de"), data.load_docs("mgsm", "de")[0]
    shots = [user_prompt(e["question"], "de") + " " + task_hooks.fewshot_target(e) for e in exemplars[:2]]
    assert prompt(num_fewshot=2) == "\n\n".join([*shots, user_prompt(doc["question"], "de")])
    assert prompt() == user_prompt(doc["question"], "de")  # zero-shot stays the default


def test_without_exemplars_zero_shot_still_runs_and_few_shot_says_why(tmp_path, monkeypatch, caplog):
    import lm_eval

    (tmp_path / "mgsm").mkdir()
    for tsv in (DATA_DIR / "mgsm").glob("mgsm_*.tsv"):  # every language (parallel docs), no exemplars
        shutil.copy(tsv, tmp_path / "mgsm")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"mgsm/mgsm_exemplars\.jsonl does not exist"):
        data.load_exemplars("de")
    with caplog.at_level("WARNING", logger="bestofl_tasks.data"):
        results = lm_eval.simple_evaluate(model="dummy", tasks=["mgsm_xling_de"], limit=1)
    assert "exact_match,numeric" in results["results"]["mgsm_xling_de"]
    assert "mgsm de: no few-shot examples" in caplog.text and "mgsm_exemplars.jsonl" in caplog.text
    with pytest.raises(AssertionError, match="exceeds the 0 that are available"):  # lm-eval's own check
        lm_eval.simple_evaluate(model="dummy", tasks=["mgsm_xling_de"], limit=1, num_fewshot=1)


@pytest.mark.slow
def test_stock_cli_hf_model_on_our_tasks(smollm2_dir, tmp_path):
    results = run_lm_eval(
        [
            "--model", "hf",
            "--model_args", f"pretrained={smollm2_dir},dtype=float32",
            "--tasks", "mgsm_xling_en,mgsm_xling_bn",
            "--limit", "2",
            "--apply_chat_template",
            "--gen_kwargs", "max_gen_toks=96",
            "--log_samples",
        ],
        tmp_path,
    )
    for task in ("mgsm_xling_en", "mgsm_xling_bn"):
        row = results["results"][task]
        assert 0.0 <= row["exact_match,numeric"] <= 1.0
    samples = sorted((tmp_path / "results").rglob("samples_mgsm_xling_bn_*.jsonl"))
    first = json.loads(samples[-1].read_bytes().splitlines()[0])
    assert first["doc"]["problem_id"] == "mgsm-0000" and first["doc"]["parallel"]["en"]
    assert "প্রশ্ন:" in json.dumps(first["arguments"], ensure_ascii=False)


@pytest.mark.slow  # the lm_eval CLI in a subprocess: ~11 s
def test_stock_cli_group_mean_over_languages(tiny_generator_dir, tmp_path):
    results = run_lm_eval(
        [
            "--model", "hf",
            "--model_args", f"pretrained={tiny_generator_dir}",
            "--tasks", "mgsm_xling",
            "--limit", "1",
            "--gen_kwargs", "max_gen_toks=4",
        ],
        tmp_path,
    )
    per_language = [results["results"][f"mgsm_xling_{lang}"]["exact_match,numeric"] for lang in MGSM_LANGUAGES]
    assert results["results"]["mgsm_xling"]["exact_match,numeric"] == pytest.approx(sum(per_language) / 11)


def test_gsm8kx_translation_aligns_with_german_number_format(tmp_path, monkeypatch):
    """A local gsm8kx file joins the English test set; `1.250` is read the German way."""
    (tmp_path / "gsm8k").mkdir()
    shutil.copy(DATA_DIR / "gsm8k" / "test.jsonl", tmp_path / "gsm8k" / "test.jsonl")
    rows = [json.loads(line) for line in (DATA_DIR / "gsm8k" / "test.jsonl").read_text().splitlines()]
    german = []
    for row in rows:
        gold = int(row["answer"].rsplit("####", 1)[-1].strip().replace(",", ""))
        german.append({"question": "DE: " + row["question"], "answer": f"… #### {gold:,}".replace(",", ".")})
    (tmp_path / "gsm8kx").mkdir()
    (tmp_path / "gsm8kx" / "gsm8k_DE_test.jsonl").write_text("\n".join(json.dumps(r) for r in german) + "\n")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    docs = data.load_docs("gsm8k_test", "de")
    english = data.load_docs("gsm8k_test", "en")
    assert len(docs) == len(rows) and docs[0]["question"].startswith("DE: ")
    assert set(docs[0]["parallel"]) == {"en", "de"}
    assert english[5]["parallel"]["de"] == docs[5]["question"]
    assert any(int(d["answer"]) >= 1000 for d in docs)


def test_train_docs_from_the_hub_are_english_only(monkeypatch):
    """Without local data the English train docs still load (Hub), with no translated parallel versions."""
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(data, "_gsm8k_rows", lambda split: (["Q0", "Q1"], ["3", "4"]))
    data._parallel_table.cache_clear()  # the stubbed loader must not be served from (or left in) the cache
    try:
        docs = data.load_docs("gsm8k_train", "en")
        assert [d["parallel"] for d in docs] == [{"en": "Q0"}, {"en": "Q1"}]
        with pytest.raises(FileNotFoundError, match="BESTOFL_DATA_DIR"):
            data.load_docs("gsm8k_train", "de")
    finally:
        data._parallel_table.cache_clear()


def test_the_eleven_mgsm_tasks_share_one_table(local_data, monkeypatch):
    reads = []
    original = data._mgsm_rows
    monkeypatch.setattr(data, "_mgsm_rows", lambda lang: reads.append(lang) or original(lang))
    data._parallel_table.cache_clear()
    for lang in MGSM_LANGUAGES:
        data.load_docs("mgsm", lang)
    assert sorted(reads) == sorted(MGSM_LANGUAGES)
