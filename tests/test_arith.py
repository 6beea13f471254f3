"""The generated arithmetic problems (``bestofl_tasks.arith``): deterministic, disjoint splits, parallel in every
language with the same numbers and answers, parsed by the extractor, and usable as a training source."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from bestofl_models.generation.translation import number_values
from bestofl_tasks import arith, data
from bestofl_tasks.answers import extract_answer
from bestofl_tasks.languages import ARITH_LANGUAGES, final_answer_line
from training.cli import run_stages
from training.common import read_jsonl
from training.config import load_config, validate

from test_training import TINY


def _fresh(split: str, seed: int = arith.SEED) -> tuple:
    return arith.problems.__wrapped__(split, seed)  # bypass the cache


def test_same_seed_same_problems_other_seed_other_problems():
    for split in ("test", "train"):
        assert _fresh(split) == _fresh(split) == arith.problems(split)
        assert [arith.question(p, "ru") for p in _fresh(split)] == [arith.question(p, "ru") for p in _fresh(split)]
    assert _fresh("test", seed=7) != _fresh("test")


def test_splits_are_disjoint_by_template_and_numbers_and_weighted():
    test, train = arith.problems("test"), arith.problems("train")
    assert not {(p.template, p.numbers) for p in test} & {(p.template, p.numbers) for p in train}
    assert len({(p.template, p.numbers) for p in test}) == len(test)
    assert len({(p.template, p.numbers) for p in train}) == len(train)
    assert Counter(p.template for p in test) == {t: w * arith.TEST_PER_WEIGHT for t, w in arith.WEIGHTS.items()}
    assert len(train) > 3 * len(test)
    with pytest.raises(ValueError, match="unknown split"):
        arith.problems("validation")


def test_answers_are_positive_integers_from_the_numbers():
    for problem in arith.problems("test") + arith.problems("train"):
        assert problem.answer > 0
        assert min(problem.numbers) >= 2
    add = next(p for p in arith.problems("test") if p.template == "mul_add")
    a, b, c = add.numbers
    assert add.answer == a * b + c


@pytest.mark.parametrize("source", ["arith_test", "arith_train"])
def test_docs_are_parallel_with_equal_answers_in_every_language(source):
    by_lang = {lang: data.load_docs(source, lang) for lang in ARITH_LANGUAGES}
    english = by_lang["en"]
    prefix = "arith-test" if source == "arith_test" else "arith-train"
    assert english[0]["problem_id"] == f"{prefix}-0000" and len({d["problem_id"] for d in english}) == len(english)
    for lang, docs in by_lang.items():
        assert [d["problem_id"] for d in docs] == [d["problem_id"] for d in english]
        assert [d["answer"] for d in docs] == [d["answer"] for d in english]
        for doc in docs:
            assert set(doc) == {"problem_id", "lang", "question", "answer", "parallel", "source"}
            assert doc["lang"] == lang and doc["source"] == source
            assert doc["question"] == doc["parallel"][lang]
            assert set(doc["parallel"]) == set(ARITH_LANGUAGES) and all(doc["parallel"].values())


def test_every_language_states_the_same_numbers_in_its_own_script():
    scripts = {"ru": "[а-яё]", "zh": "[\u4e00-\u9fff]", "ja": "[\u3040-\u30ff]", "th": "[\u0e00-\u0e7f]"}
    for problem in arith.problems("test")[:60] + arith.problems("train")[:60]:
        english = arith.question(problem, "en")
        for lang in ARITH_LANGUAGES:
            text = arith.question(problem, lang)
            assert number_values(text, lang) == number_values(english, "en") == Counter(map(str, problem.numbers)), (lang, text)
            assert "{" not in text and "}" not in text
            if lang in scripts:
                assert re.search(scripts[lang], text, re.IGNORECASE), (lang, text)


@pytest.mark.parametrize("lang", ARITH_LANGUAGES)
def test_the_extractor_reads_the_gold_answer_line_after_the_question(lang):
    for problem in arith.problems("test")[:30]:
        text = f"{arith.question(problem, lang)}\n{final_answer_line(str(problem.answer), lang)}"
        assert extract_answer(text, lang) == str(problem.answer), text


def test_russian_nouns_agree_with_their_numerals():
    forms = ("яблоко", "яблока", "яблок")
    assert [arith._ru_count(n, forms) for n in (1, 2, 4, 5, 11, 12, 14, 21, 22, 25, 111)] == [
        "1 яблоко", "2 яблока", "4 яблока", "5 яблок", "11 яблок", "12 яблок", "14 яблок", "21 яблоко",
        "22 яблока", "25 яблок", "111 яблок"]
    mul = next(p for p in arith.problems("test") if p.template == "mul" and p.numbers[0] >= 5)
    assert f"{mul.numbers[0]} коробок" in arith.question(mul, "ru")


def test_unknown_language_lists_the_supported_ones():
    with pytest.raises(ValueError, match="Supported: en, de, es, fr, ru, zh, ja, th"):
        arith.columns("test", "sw")


def test_lm_eval_sees_the_tasks_and_groups_with_prompts_in_each_language():
    from lm_eval.tasks import TaskManager

    manager = TaskManager()
    assert {"arith_xling_train", "arith_xling_train_zh"} <= set(manager.all_tasks)
    loaded = manager.load(["arith_xling"])
    assert loaded["group_map"]["arith_xling"] == [f"arith_xling_{lang}" for lang in ARITH_LANGUAGES]
    task = loaded["tasks"]["arith_xling_ja"]
    docs = list(task.test_docs())
    assert len(docs) == len(arith.problems("test")) and docs[0]["problem_id"] == "arith-test-0000"
    assert "問題：" in task.doc_to_text(docs[0]) and docs[0]["question"] in task.doc_to_text(docs[0])


def test_training_takes_the_train_split_as_its_source(tmp_path):
    config = load_config(TINY, ["source=arith_train", "limit=5", "languages=en:ru:zh:th"])
    validate(config, ("translate",))  # th needs no MT model: every language exists
    run_stages(config, tmp_path, ("translate",))
    rows = read_jsonl(tmp_path / "translate" / "questions.jsonl")
    assert len(rows) == 20 and {r["origin"] for r in rows} == {"source", "existing"}
    assert all(r["numbers_ok"] for r in rows)
    assert {r["problem_id"] for r in rows} == {f"arith-train-{i:04d}" for i in range(5)}
    manifest = json.loads((tmp_path / "translate" / "manifest.json").read_text())
    assert manifest["counts"]["number_mismatches"] == 0
