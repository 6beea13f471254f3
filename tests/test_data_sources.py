"""Where the task data comes from: the embedded MGSM, the Hub datasets (as local folders in the Hub repositories'
layouts, loaded by the same ``datasets.load_dataset`` call), MSVAMP and AfriMGSM as parallel task families, the
offline error, and the new languages' answer phrases."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import pytest

from fixtures import DATA_DIR
from bestofl_tasks import data
from bestofl_tasks.answers import extract_answer
from bestofl_tasks.languages import (
    AFRIMGSM_LANGUAGES,
    GSM8K_TEST_LANGUAGES,
    LANGUAGES,
    MGSM_LANGUAGES,
    MSVAMP_LANGUAGES,
    final_answer_line,
)



@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No data switches from the environment; a private datasets cache; a fresh parallel-table cache."""
    import datasets

    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(data.DATA_SOURCE_ENV, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets-cache"))
    data._parallel_table.cache_clear()
    yield
    data._parallel_table.cache_clear()


@pytest.fixture
def load_calls(monkeypatch):
    """Every ``datasets.load_dataset`` call as (path, config, split, revision)."""
    import datasets

    calls, original = [], datasets.load_dataset

    def spy(path, name=None, **kwargs):
        calls.append((path, name, kwargs.get("split"), kwargs.get("revision")))
        return original(path, name, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", spy)
    return calls


def write_card(root: Path, files: dict[str, dict[str, str]]) -> None:
    """README.md whose ``configs`` map each config's splits to files, as on the Hub."""
    lines = ["---", "configs:"]
    for config, splits in files.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        lines += [f"  - split: {split}\n    path: {path}" for split, path in splits.items()]
    (root / "README.md").write_text("\n".join([*lines, "---", ""]), encoding="utf-8")


def write_parquet_repo(root: Path, tables: dict[str, dict[str, list[dict]]]) -> Path:
    """A dataset repository with one parquet file per config and split (``{config}/{split}-00000-of-00001``)."""
    import datasets

    files = {}
    for config, splits in tables.items():
        for split, rows in splits.items():
            relative = f"{config}/{split}-00000-of-00001.parquet"
            (root / config).mkdir(parents=True, exist_ok=True)
            datasets.Dataset.from_list(rows).to_parquet(str(root / relative))
            files.setdefault(config, {})[split] = relative
    write_card(root, files)
    return root


def use_hub_folder(monkeypatch, name: str, folder: Path) -> None:
    monkeypatch.setitem(data.HUB_DATASETS, name, data.HubDataset(str(folder), None))


def de_number(value: int) -> str:
    return f"{value:,}".replace(",", ".")


GOLDS = [18, 1250, 3]


# --------------------------------------------------------------------------- embedded MGSM


def test_embedded_mgsm_loads_with_no_env_var():
    assert data.data_source("mgsm").startswith("embedded:bestofl_tasks/mgsm_data")
    docs = {lang: data.load_docs("mgsm", lang) for lang in MGSM_LANGUAGES}
    assert {len(d) for d in docs.values()} == {250}
    assert docs["de"][146]["answer"] == "2125" and docs["de"][146]["problem_id"] == "mgsm-0146"
    assert docs["te"][7]["parallel"]["en"] == docs["en"][7]["question"]
    assert len(data.load_exemplars("ja")) == 8
    assert {"LICENSE", "SOURCE.md"} <= {p.name for p in data.EMBEDDED_MGSM.iterdir()}
    assert "CC BY 4.0" in (data.EMBEDDED_MGSM / "SOURCE.md").read_text(encoding="utf-8")


def test_embedded_mgsm_is_the_upstream_files():
    for path in sorted((DATA_DIR / "mgsm").glob("mgsm_*")):
        embedded = data.EMBEDDED_MGSM / path.name
        assert hashlib.sha256(embedded.read_bytes()).digest() == hashlib.sha256(path.read_bytes()).digest(), path.name


def test_mgsm_xling_builds_through_the_task_manager_with_no_env_var():
    task = load_tasks("mgsm_xling_sw")["mgsm_xling_sw"]
    docs = list(task.test_docs())
    assert len(docs) == 250 and docs[0]["lang"] == "sw" and set(docs[0]["parallel"]) == set(MGSM_LANGUAGES)
    assert len(list(task.fewshot_docs())) == 8


def test_unknown_data_source_value_says_what_is_allowed(monkeypatch):
    monkeypatch.setenv(data.DATA_SOURCE_ENV, "github")
    with pytest.raises(ValueError, match="BESTOFL_DATA_SOURCE='github'.*'hub'"):
        data.load_docs("mgsm", "de")


# --------------------------------------------------------------------------- Hub layouts, loaded like the Hub


def test_mgsm_hub_layout(tmp_path, monkeypatch, load_calls):
    """juletxara/mgsm: a config per language, ``train`` (exemplars) and ``test``, answer_number as the gold."""
    tables = {
        lang: {
            "train": [{"question": f"{LANGUAGES[lang].question_prefix} E{lang}", "answer": f"{LANGUAGES[lang].cot_cue} "
                       f"5 + 6 = 11. {final_answer_line('11', lang)}", "answer_number": 11,
                       "equation_solution": "5 + 6 = 11."}],
            "test": [{"question": f"{lang} Q{i}", "answer": None, "answer_number": gold, "equation_solution": None}
                     for i, gold in enumerate(GOLDS)],
        }
        for lang in MGSM_LANGUAGES
    }
    use_hub_folder(monkeypatch, "mgsm", write_parquet_repo(tmp_path / "mgsm", tables))
    monkeypatch.setenv(data.DATA_SOURCE_ENV, "hub")
    docs = data.load_docs("mgsm", "bn")
    assert [d["answer"] for d in docs] == ["18", "1250", "3"]
    assert docs[1]["parallel"]["zh"] == "zh Q1" and docs[1]["question"] == "bn Q1"
    exemplar = data.load_exemplars("de")[0]
    assert exemplar["question"] == "Ede" and exemplar["answer"] == "11"
    assert (str(tmp_path / "mgsm"), "de", "train", None) in load_calls
    assert (str(tmp_path / "mgsm"), "te", "test", None) in load_calls


def gsm8k_hub_folders(tmp_path: Path, german_gold: str | None = None) -> tuple[Path, Path]:
    english = [{"question": f"Q{i}", "answer": f"step <<1+1=2>>\n#### {gold:,}"} for i, gold in enumerate(GOLDS)]
    gsm8k = write_parquet_repo(tmp_path / "gsm8k", {"main": {"test": english, "train": english[:1]}})
    tables = {}
    for config in data.GSM8KX_CONFIGS.values():
        rows = [{"question": f"{config} Q{i}", "answer": f"… #### {de_number(gold)}", "id": i}
                for i, gold in enumerate(GOLDS)]
        tables[config] = {"test": rows, "train": rows[:1]}
    if german_gold is not None:
        tables["DE"]["test"][2]["answer"] = f"… #### {german_gold}"
    return gsm8k, write_parquet_repo(tmp_path / "gsm8kx", tables)


def test_gsm8kx_hub_layout_by_config(tmp_path, monkeypatch, load_calls):
    """openai/gsm8k ``main`` plus openGPT-X/gsm8kx, one config per language (``PT-PT`` for Portuguese)."""
    gsm8k, gsm8kx = gsm8k_hub_folders(tmp_path)
    use_hub_folder(monkeypatch, "gsm8k", gsm8k)
    use_hub_folder(monkeypatch, "gsm8kx", gsm8kx)
    portuguese = data.load_docs("gsm8k_test", "pt")
    assert [d["answer"] for d in portuguese] == ["18", "1250", "3"]  # "1.250" read with Portuguese conventions
    assert portuguese[0]["question"] == "PT-PT Q0" and portuguese[0]["problem_id"] == "gsm8k-test-0000"
    assert set(portuguese[0]["parallel"]) == set(GSM8K_TEST_LANGUAGES)
    assert portuguese[2]["parallel"]["el"] == "EL Q2" and portuguese[2]["parallel"]["en"] == "Q2"
    assert (str(gsm8kx), "PT-PT", "test", None) in load_calls and (str(gsm8k), "main", "test", None) in load_calls
    assert len(load_calls) == 21  # English once, each translation once, shared by every target language
    assert data.load_docs("gsm8k_test", "hu")[1]["parallel"]["pt"] == "PT-PT Q1"
    assert len(load_calls) == 21


def test_gsm8kx_hub_layout_misaligned_config_fails_loudly(tmp_path, monkeypatch):
    gsm8k, gsm8kx = gsm8k_hub_folders(tmp_path, german_gold="4")
    use_hub_folder(monkeypatch, "gsm8k", gsm8k)
    use_hub_folder(monkeypatch, "gsm8kx", gsm8kx)
    with pytest.raises(data.DataAlignmentError, match="de row 2 has gold answer 4 but en has 3"):
        data.load_docs("gsm8k_test", "fi")


def msvamp_rows(lang: str) -> list[dict]:
    return [{"query": f"q{i}", "m_query": f"{lang} M{i}", "equation": "+ number0 number1", "response": f"{gold}.0"}
            for i, gold in enumerate(GOLDS)]


def test_msvamp_hub_layout(tmp_path, monkeypatch, load_calls):
    folder = write_parquet_repo(tmp_path / "msvamp", {lang: {"test": msvamp_rows(lang)} for lang in MSVAMP_LANGUAGES})
    use_hub_folder(monkeypatch, "msvamp", folder)
    docs = data.load_docs("msvamp", "th")
    assert [d["answer"] for d in docs] == ["18", "1250", "3"] and docs[0]["problem_id"] == "msvamp-0000"
    assert docs[1]["parallel"] == {lang: f"{lang} M1" for lang in MSVAMP_LANGUAGES}
    assert (str(folder), "bn", "test", None) in load_calls


def write_afrimgsm_repo(root: Path, gold_of=lambda lang, gold: gold) -> Path:
    """masakhane/afrimgsm as published at the pinned revision: ``data/{config}/test.tsv`` with a header."""
    files = {}
    for lang, config in data.AFRIMGSM_CONFIGS.items():
        relative = f"data/{config}/test.tsv"
        (root / relative).parent.mkdir(parents=True)
        with open(root / relative, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t")
            writer.writerow(["question", "answer", "answer_number"])
            writer.writerows([f"{config} Q{i}", "", gold_of(lang, gold)] for i, gold in enumerate(GOLDS))
        files[config] = {"test": relative}
    write_card(root, files)
    return root


def test_afrimgsm_hub_layout(tmp_path, monkeypatch, load_calls):
    folder = write_afrimgsm_repo(tmp_path / "afrimgsm", lambda lang, gold: f"{gold:,}")  # "1,250" as in MGSM
    use_hub_folder(monkeypatch, "afrimgsm", folder)
    docs = data.load_docs("afrimgsm", "yo")
    assert [d["answer"] for d in docs] == ["18", "1250", "3"] and docs[2]["problem_id"] == "afrimgsm-0002"
    assert docs[0]["question"] == "yor Q0" and docs[0]["parallel"]["rw"] == "kin Q0"
    assert set(docs[0]["parallel"]) == set(AFRIMGSM_LANGUAGES)
    assert (str(folder), "vai", "test", None) in load_calls


def test_afrimgsm_from_a_copy_under_the_data_dir(tmp_path, monkeypatch):
    write_afrimgsm_repo(tmp_path / data.LOCAL_AFRIMGSM)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    assert data.load_docs("afrimgsm", "zu")[1]["parallel"]["am"] == "amh Q1"
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match=r"elsewhere/afrimgsm does not exist.*git clone"):
        data.load_docs("afrimgsm", "zu")


def test_afrimgsm_xling_builds_through_the_task_manager(tmp_path, monkeypatch):
    use_hub_folder(monkeypatch, "afrimgsm", write_afrimgsm_repo(tmp_path / "afrimgsm"))
    tasks = load_tasks("afrimgsm_xling")
    assert set(tasks) == {f"afrimgsm_xling_{lang}" for lang in AFRIMGSM_LANGUAGES}
    by_lang = {name.rsplit("_", 1)[1]: list(task.test_docs()) for name, task in tasks.items()}
    for row in range(len(GOLDS)):
        assert len({docs[row]["answer"] for docs in by_lang.values()}) == 1
        assert len({docs[row]["problem_id"] for docs in by_lang.values()}) == 1
        assert by_lang["ha"][row]["parallel"] == by_lang["en"][row]["parallel"]


def test_gsm8k_xling_builds_through_the_task_manager(tmp_path, monkeypatch):
    gsm8k, gsm8kx = gsm8k_hub_folders(tmp_path)
    use_hub_folder(monkeypatch, "gsm8k", gsm8k)
    use_hub_folder(monkeypatch, "gsm8kx", gsm8kx)
    tasks = load_tasks("gsm8k_xling")
    assert set(tasks) == {f"gsm8k_xling_{lang}" for lang in GSM8K_TEST_LANGUAGES}
    slovak = tasks["gsm8k_xling_sk"]
    assert "Otázka: SK Q0" in slovak.doc_to_text(next(iter(slovak.test_docs())))


def load_tasks(name: str) -> dict:
    """lm-eval's tasks (by name) for a task or group of ours, built by the stock TaskManager."""
    from lm_eval.tasks import TaskManager

    return TaskManager().load([name])["tasks"]


# --------------------------------------------------------------------------- MSVAMP from local files (tests/data)


def test_msvamp_docs_are_parallel_in_all_languages(monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(DATA_DIR))
    by_lang = {lang: data.load_docs("msvamp", lang) for lang in MSVAMP_LANGUAGES}
    assert {len(docs) for docs in by_lang.values()} == {40}  # the slice in tests/data
    for row in (0, 19, 39):
        assert len({by_lang[lang][row]["answer"] for lang in MSVAMP_LANGUAGES}) == 1
        assert by_lang["ja"][row]["parallel"]["de"] == by_lang["de"][row]["question"]
    assert by_lang["en"][0]["answer"] == "8" and by_lang["de"][0]["question"].startswith("Julia spielte")


def test_msvamp_xling_builds_through_the_task_manager(monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(DATA_DIR))
    task = load_tasks("msvamp_xling_bn")["msvamp_xling_bn"]
    doc = list(task.test_docs())[3]
    assert doc["problem_id"] == "msvamp-0003" and doc["lang"] == "bn" and set(doc["parallel"]) == set(MSVAMP_LANGUAGES)
    assert task.doc_to_text(doc).startswith(LANGUAGES["bn"].instruction)


# --------------------------------------------------------------------------- offline without data


@pytest.mark.parametrize("source, lang", [("gsm8k_test", "de"), ("msvamp", "de"), ("afrimgsm", "ha")])
def test_offline_without_data_names_the_switch(monkeypatch, source, lang):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(data.DataUnavailableError, match=r"set BESTOFL_DATA_DIR=DIR to a folder holding the files.*docs/TASKS.md"):
        data.load_docs(source, lang)


def test_offline_task_build_fails_early_naming_the_switch(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(data.DataUnavailableError, match=r"openai/gsm8k .*BESTOFL_DATA_DIR=DIR.*DIR/gsm8k/test\.jsonl"):
        load_tasks("gsm8k_xling_de")


def test_data_source_names_the_pinned_revisions(monkeypatch, tmp_path):
    assert data.data_source("gsm8k_test") == (
        "hub:openai/gsm8k@740312add88f781978c0658806c59bc2815b9866"
        "+openGPT-X/gsm8kx@363d87617cd417b731dc860194a6935fd5ff49ae"
    )
    assert data.data_source("afrimgsm") == "hub:masakhane/afrimgsm@8e4268d2b94941f18f63f694cf48e4ae26fbec65"
    monkeypatch.setenv(data.DATA_SOURCE_ENV, "hub")
    assert data.data_source("mgsm") == "hub:juletxara/mgsm@main"
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    assert data.data_source("msvamp") == f"local:{tmp_path}"


# --------------------------------------------------------------------------- the new languages' answers


def test_prompt_table_marks_what_no_native_speaker_checked():
    written_here = set(GSM8K_TEST_LANGUAGES + AFRIMGSM_LANGUAGES) - set(MGSM_LANGUAGES) - {"it"}
    assert {code for code, spec in LANGUAGES.items() if spec.prompt_unchecked} == written_here


@pytest.mark.parametrize("lang", sorted(set(AFRIMGSM_LANGUAGES) - {"en", "fr", "sw", "vai"}))
def test_final_line_matches_lm_evals_afrimgsm_strict_regex(lang):
    from lm_eval.tasks.afrimgsm.utils import languages_REGEX

    config = data.AFRIMGSM_CONFIGS[lang]
    match = re.search(languages_REGEX[config], "… 7 * 2 = 14.\n" + final_answer_line("1250", lang))
    assert match is not None and match.group(1).rstrip(".") == "1250"


@pytest.mark.parametrize("text, lang, answer", [
    ("Έχει 3,5 κιλά. Η απάντηση είναι 3,5.", "el", "3.5"),
    ("Razem 1.250 zł.\nOdpowiedź to 1.250.", "pl", "1250"),
    ("2 + 3 = 5 … A válasz 1 250.", "hu", "1250"),
    ("Kuna 7 na 11. Karabo ke 18.", "st", "18"),
    ("7 * 2 = 14\nÌdáhùn náà ni 14.", "yo", "14"),
    ("መልሱ 18 ነው።", "am", "18"),
    ("Tontu li 1,5 la.", "wo", "1.5"),
    ("The answer is ꘡꘨.", "vai", "18"),
    ("4 + 5 = 9. Impendulo ithi 9, hhayi 4.", "zu", "9"),
])
def test_new_languages_answers_are_extracted(text, lang, answer):
    assert extract_answer(text, lang) == answer
