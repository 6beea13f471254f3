"""Functions the task YAMLs point at (``!function bestofl_tasks.task_hooks.<name>``)."""

from __future__ import annotations

from .answers import answers_equal, extract_answer
from .data import dataset_loader
from .prompts import user_prompt, worked_solution

INVALID = "[invalid]"

load_mgsm = dataset_loader("mgsm", "test")
load_gsm8k_test = dataset_loader("gsm8k_test", "test")
load_gsm8k_train = dataset_loader("gsm8k_train", "train")
load_msvamp = dataset_loader("msvamp", "test")
load_afrimgsm = dataset_loader("afrimgsm", "test")
load_arith_test = dataset_loader("arith_test", "test")
load_arith_train = dataset_loader("arith_train", "train")


def doc_to_text(doc: dict) -> str:
    """The doc's question as a zero-shot chain-of-thought prompt in its own language."""
    return user_prompt(doc["question"], doc["lang"])


def fewshot_target(exemplar: dict) -> str:
    """A few-shot exemplar's target (``--num_fewshot``): its worked solution ending on the final answer line."""
    return worked_solution(exemplar["solution"], exemplar["answer"], exemplar["lang"])


def extract_answers(resps: list[list[str]], docs: list[dict]) -> list[list[str]]:
    """Filter: each response becomes its canonical final number, or ``[invalid]``."""
    return [
        [extract_answer(text, doc["lang"]) or INVALID for text in doc_resps]
        for doc_resps, doc in zip(resps, docs)
    ]


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """Numeric exact match of the (filtered) first response against the canonical gold."""
    predicted = results[0] if results else None
    return {"exact_match": float(predicted != INVALID and answers_equal(predicted, doc["answer"]))}
