"""Instance -> Problem: our parallel docs, lm-eval's own MGSM docs (joined and gold-checked), the fallback."""

from __future__ import annotations

import logging

import pytest
from lm_eval.api.instance import Instance

from bestofl_models.harness import problems
from bestofl_models.harness.problems import problem_from_instance
from bestofl_tasks.data import DataAlignmentError, load_docs


@pytest.fixture(autouse=True)
def offline_data(monkeypatch):
    from fixtures import DATA_DIR

    monkeypatch.setenv("BESTOFL_DATA_DIR", str(DATA_DIR))


def instance(doc, task, doc_id, ctx="ctx", gen_kwargs=None):
    return Instance("generate_until", doc, (ctx, gen_kwargs or {"until": ["\n\n"]}), 0, (task, doc_id, 1))


def lm_eval_mgsm_doc(lang, row):
    """A row as lm-eval's mgsm tasks get it from juletxara/mgsm (test split: answer is None)."""
    ours = load_docs("mgsm", lang)[row]
    return {"question": ours["question"], "answer": None, "answer_number": int(ours["answer"]),
            "equation_solution": None}


def test_our_docs_carry_everything():
    doc = load_docs("mgsm", "de")[3]
    problem = problem_from_instance(instance(doc, "mgsm_xling_de", 3))
    assert (problem.problem_id, problem.target_lang, problem.gold) == ("mgsm-0003", "de", doc["answer"])
    assert problem.parallel["de"] == doc["question"]
    assert set(problem.parallel) == set(doc["parallel"])
    assert not problem.is_fallback


def test_missing_translations_are_left_out():
    doc = {"problem_id": "gsm8k-train-0001", "lang": "de", "question": "Frage?", "answer": "3",
           "parallel": {"en": "Question?", "de": "Frage?", "ru": None}, "source": "gsm8k_train"}
    assert problem_from_instance(instance(doc, "gsm8k_xling_train_de", 1)).parallel == {
        "en": "Question?", "de": "Frage?"}


@pytest.mark.parametrize("task", ["mgsm_native_cot_de", "mgsm_direct_de", "mgsm_en_cot_de"])
def test_lm_eval_mgsm_tasks_join_by_doc_id(task):
    problem = problem_from_instance(instance(lm_eval_mgsm_doc("de", 7), task, 7))
    ours = load_docs("mgsm", "de")[7]
    assert (problem.problem_id, problem.target_lang, problem.gold) == ("mgsm-0007", "de", ours["answer"])
    assert problem.parallel == {k: v for k, v in ours["parallel"].items() if v}
    # mgsm_en_cot_*'s strict-match regex is English ("The answer is ..."); the others parse the native phrase.
    assert problem.final_line_lang == ("en" if task == "mgsm_en_cot_de" else "de")


def test_resampled_doc_ids_are_joined_by_question_text():
    # --samples re-enumerates doc_id from 0: doc_id 0 here is MGSM row 12.
    problem = problem_from_instance(instance(lm_eval_mgsm_doc("fr", 12), "mgsm_native_cot_fr", 0))
    assert problem.problem_id == "mgsm-0012"


def test_gold_mismatch_raises():
    doc = lm_eval_mgsm_doc("de", 5)
    doc["question"] = "a question MGSM does not have"
    doc["answer_number"] += 1
    with pytest.raises(DataAlignmentError, match="not aligned with MGSM"):
        problem_from_instance(instance(doc, "mgsm_native_cot_de", 5))


def test_unknown_question_text_raises_even_when_golds_collide():
    # Row 5's question edited: doc_id 5 must not be trusted on its (small integer) gold alone.
    doc = lm_eval_mgsm_doc("de", 5)
    doc["question"] = "Eine Frage, die MGSM nicht hat?"
    with pytest.raises(DataAlignmentError, match="not aligned with MGSM"):
        problem_from_instance(instance(doc, "mgsm_native_cot_de", 5))
    # --samples: doc_id 0 is row 5 after re-enumeration; found by its text, not by doc_id.
    assert problem_from_instance(instance(lm_eval_mgsm_doc("de", 5), "mgsm_native_cot_de", 0)).problem_id == \
        "mgsm-0005"
    with pytest.raises(DataAlignmentError, match="outside MGSM"):
        problem_from_instance(instance(doc, "mgsm_native_cot_de", 10_000))


def test_other_tasks_fall_back_to_their_own_prompt_with_one_warning(caplog):
    problems._warn_fallback.cache_clear()
    doc = {"question": "What is 2+2?", "answer": "Two and two.\n#### 4"}
    with caplog.at_level(logging.WARNING, logger="bestofl_models.harness.problems"):
        first = problem_from_instance(instance(doc, "gsm8k", 0, ctx="Q: 2+2?\nA:", gen_kwargs={"until": "Q:"}))
        problem_from_instance(instance(doc, "gsm8k", 1))
    assert first.is_fallback and first.own_prompt == "Q: 2+2?\nA:" and first.until == ("Q:",)
    assert (first.target_lang, first.gold, first.problem_id) == (None, "4", "gsm8k-0000")
    assert len([r for r in caplog.records if "no parallel versions" in r.message]) == 1


def test_few_shot_prompts_are_recognised_for_our_and_lm_eval_tasks():
    from bestofl_tasks.data import load_exemplars
    from bestofl_tasks.prompts import user_prompt, worked_solution

    doc = load_docs("mgsm", "de")[0]
    shot = load_exemplars("de")[0]
    zero_shot = user_prompt(doc["question"], "de")
    few_shot = user_prompt(shot["question"], "de") + " " + worked_solution(shot["solution"], shot["answer"], "de")
    ours = problem_from_instance(instance(doc, "mgsm_xling_de", 0))
    assert problems.has_fewshot_examples(few_shot + "\n\n" + zero_shot, ours)
    assert not problems.has_fewshot_examples(zero_shot, ours)
    en_cot = problem_from_instance(instance(lm_eval_mgsm_doc("de", 0), "mgsm_en_cot_de", 0))
    english_shots = "Question: a?\nStep-by-Step Answer: b.\n\nQuestion: c?\nStep-by-Step Answer:"
    assert problems.has_fewshot_examples(english_shots, en_cot)
    fallback = problem_from_instance(instance({"question": "2+2?"}, "other_task", 0, ctx=english_shots))
    assert not problems.has_fewshot_examples(english_shots, fallback)  # its own prompt is sampled as it is
