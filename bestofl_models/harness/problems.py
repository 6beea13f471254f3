"""Turn lm-eval request ``Instance``s into problems: the target language and the question in every language.

Three kinds of task are understood:

* ours (``mgsm_xling_*``, ``gsm8k_xling_*``, ...): the doc carries ``problem_id``, ``lang``, ``answer`` and
  ``parallel`` itself;
* lm-eval's own MGSM tasks (``mgsm_native_cot_{l}``, ``mgsm_direct_{l}``, ``mgsm_en_cot_{l}``): the target
  language comes from the task name (``mgsm_en_cot_*`` gets an English final answer line, as its regex
  expects), the parallel versions from ``load_docs("mgsm", l)``, joined by
  ``doc_id`` (lm-eval's own index of the doc, also under ``--samples``; by question text when a Hub copy's row
  differs in spacing or order; an unknown question raises) and
  checked by gold answer;
* anything else (lm-eval's ``gsm8k``, ``gsm8k_cot``, a user's YAML): with a translator (``translator=``, the
  default ``self``), the question is isolated from the doc (``lm_eval_tasks.isolate_question``), taken to be
  English, and ``bestofl_models.generation.translation`` adds the other pool languages; without one, or when no question
  can be isolated, the task's own prompt (``ctx``) is the only prompt, with one warning per task.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from bestofl_tasks.answers import canonical_number
from bestofl_tasks.data import DataAlignmentError, load_docs
from bestofl_tasks.languages import MGSM_LANGUAGES, get_language

logger = logging.getLogger(__name__)

LM_EVAL_MGSM_TASK = re.compile(r"^mgsm_(?P<kind>native_cot|direct|en_cot)_(?P<lang>[a-z]{2})$")
#: lm-eval MGSM task kinds whose strict-match regex is English (``The answer is (...)``) whatever the target.
ENGLISH_ANSWER_KINDS = frozenset({"en_cot"})


@dataclass(frozen=True)
class Problem:
    problem_id: str
    task: str
    doc_id: int
    #: Language the task asks in (and, unless ``answer_line_lang`` says otherwise, the final answer line is
    #: written in); None for unknown tasks.
    target_lang: str | None
    #: ``{lang: question}`` for every language with a version of this problem (target included).
    parallel: Mapping[str, str] = field(default_factory=dict)
    #: Canonical gold answer, or None when the task's doc has none we understand.
    gold: str | None = None
    #: Fallback only: the task's own rendered prompt and stop sequences, used as the single prompt.
    own_prompt: str | None = None
    until: tuple[str, ...] = ()
    #: Language of the appended final answer line when the task parses another one than ``target_lang``
    #: (lm-eval's ``mgsm_en_cot_{l}``: native question, English ``The answer is``); None: ``target_lang``.
    answer_line_lang: str | None = None
    #: Translated problems: the language of the isolated question (the other versions are its translations).
    source_lang: str | None = None
    #: Translated problems: pool languages whose translation lost a number of the question (left out).
    refused: tuple[str, ...] = ()

    @property
    def is_fallback(self) -> bool:
        return self.own_prompt is not None

    @property
    def final_line_lang(self) -> str | None:
        """The language of the final answer line appended to the selected candidate (None: no line)."""
        if self.target_lang is None:
            return None
        return self.answer_line_lang or self.target_lang


def is_parallel_doc(doc: Any) -> bool:
    return isinstance(doc, Mapping) and all(key in doc for key in ("problem_id", "lang", "parallel", "question"))


def problem_from_instance(instance, task_obj=None, translate: bool = False, doc_id: int | None = None) -> Problem:
    """The :class:`Problem` behind one ``generate_until`` request (``task_obj``: its lm-eval task object, if known;
    ``translate``: isolate the question of a task without parallel versions, for translation; ``doc_id``: the doc's
    index in the task's docs when it is not ``instance.doc_id``, which ``--samples`` re-enumerates from 0)."""
    doc, task = instance.doc, instance.task_name
    doc_id = instance.doc_id if doc_id is None else doc_id
    if is_parallel_doc(doc):
        return _from_parallel_doc(doc, task, doc_id)
    match = LM_EVAL_MGSM_TASK.match(task or "")
    if match and match.group("lang") in MGSM_LANGUAGES and isinstance(doc, Mapping):
        problem = _from_lm_eval_mgsm(doc, task, doc_id, match.group("lang"))
        if match.group("kind") in ENGLISH_ANSWER_KINDS:
            problem = dataclasses.replace(problem, answer_line_lang="en")
        return problem
    if translate:
        from .lm_eval_tasks import isolate_question
        from ..generation.translation import SOURCE_LANG

        question, how = isolate_question(doc, instance.args[0], task_obj)
        if question is not None:
            return Problem(problem_id=f"{task}-{doc_id:04d}", task=task, doc_id=doc_id, target_lang=SOURCE_LANG,
                           parallel={SOURCE_LANG: question}, gold=_gold(doc), source_lang=SOURCE_LANG)
        _warn_fallback(task, f"its question could not be isolated: {how}")
    else:
        _warn_fallback(task, "translator=none")
    return _fallback(instance, doc_id)


def has_fewshot_examples(ctx: Any, problem: Problem, task_obj: Any = None) -> bool:
    """Whether the task's rendered prompt holds worked examples (``--num_fewshot``): for a translated problem,
    the task's ``num_fewshot`` (when its task object is known); else a step-by-step cue (the target language's
    or, for ``mgsm_en_cot_*``, the English one) appears more than once."""
    if problem.source_lang is not None:
        return task_obj is not None and (task_obj.get_config("num_fewshot") or 0) > 0
    if problem.is_fallback or problem.target_lang is None or not isinstance(ctx, str):
        return False
    cues = {get_language(problem.target_lang).cot_cue, get_language("en").cot_cue}
    return any(ctx.count(cue) > 1 for cue in cues)


def _from_parallel_doc(doc: Mapping, task: str, doc_id: int) -> Problem:
    parallel = {lang: question for lang, question in (doc.get("parallel") or {}).items() if question}
    parallel.setdefault(doc["lang"], doc["question"])
    return Problem(
        problem_id=str(doc["problem_id"]),
        task=task,
        doc_id=doc_id,
        target_lang=doc["lang"],
        parallel=parallel,
        gold=doc.get("answer"),
    )


@functools.lru_cache(maxsize=None)
def _mgsm_index(lang: str) -> tuple[list[dict], dict[str, int]]:
    docs = load_docs("mgsm", lang)
    return docs, {_normalize(doc["question"]): row for row, doc in enumerate(docs)}


def _normalize(text: str) -> str:
    return " ".join(str(text).split())


def _from_lm_eval_mgsm(doc: Mapping, task: str, doc_id: int, lang: str) -> Problem:
    ours, by_question = _mgsm_index(lang)
    question = _normalize(doc.get("question", ""))
    row = doc_id
    if not (0 <= row < len(ours)) or _normalize(ours[row]["question"]) != question:
        # the Hub copy may differ in spacing or order: use the text. Never
        # fall back to doc_id alone: the gold check below cannot tell small integer answers apart.
        row = by_question.get(question)
        if row is None:
            where = f"MGSM row {doc_id}'s" if 0 <= doc_id < len(ours) else f"(doc_id outside MGSM's {len(ours)} rows)"
            raise DataAlignmentError(
                f"{task}: doc_id {doc_id}'s question {question[:80]!r} is neither {where} nor any other MGSM "
                f"{lang} question; the docs are not aligned with MGSM (a different dataset revision or edited "
                "docs?)."
            )
    gold = canonical_number(str(doc.get("answer_number", "")).replace(",", ""))
    if gold != ours[row]["answer"]:
        raise DataAlignmentError(
            f"{task}: doc_id {doc_id} has answer_number {doc.get('answer_number')!r} but MGSM row {row} "
            f"({ours[row]['problem_id']}) has gold {ours[row]['answer']}; the docs are not aligned with MGSM "
            "(a different dataset revision or shuffled docs?)."
        )
    return _from_parallel_doc(ours[row], task, doc_id)


@functools.lru_cache(maxsize=None)
def _warn_fallback(task: str, why: str) -> None:
    logger.warning(
        "Task %s has no parallel versions of its problems (not a bestofl or lm-eval MGSM task) and is not "
        "translated (%s): sampling only from the task's own prompt, so the language pool is that one prompt.",
        task, why,
    )


def _gold(doc: Any) -> str | None:
    """A gold number from ``answer_number`` or ``answer`` (after a ``####``), else None."""
    doc = doc if isinstance(doc, Mapping) else {}
    for key in ("answer_number", "answer"):
        if key in doc and doc[key] is not None:
            return canonical_number(str(doc[key]).rsplit("####", 1)[-1])
    return None


def _fallback(instance, doc_id: int) -> Problem:
    ctx, gen_kwargs = instance.args
    until = (gen_kwargs or {}).get("until") or []
    until = [until] if isinstance(until, str) else list(until)
    return Problem(
        problem_id=f"{instance.task_name}-{doc_id:04d}",
        task=instance.task_name,
        doc_id=doc_id,
        target_lang=None,
        gold=_gold(instance.doc),
        own_prompt=ctx,
        until=tuple(until),
    )
