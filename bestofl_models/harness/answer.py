"""Stage *answer*: the text lm-eval gets for a request: the selected candidate plus a final answer line its
filters parse."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bestofl_tasks.languages import final_answer_line

from ..selection.methods import Scored
from ..store import Candidate
from .lm_eval_tasks import with_answer_line
from .problems import Problem


def answer_text(problem: Problem, chosen: Scored | None, candidates: dict[str, Candidate], doc: Any,
                task: Any, answer_lines: Counter) -> str:
    """The selected text plus a final answer line: for a translated problem of a known lm-eval ``task``, the
    first form its own filters parse (``lm_eval_tasks.with_answer_line``, counted in ``answer_lines``)."""
    if chosen is None:
        return ""
    text = candidates[chosen.key].text
    if chosen.answer is None or problem.final_line_lang is None:
        return text
    if problem.source_lang is not None and task is not None:
        text, form = with_answer_line(task, doc, text, chosen.answer, problem.final_line_lang)
        answer_lines[form or "none"] += 1
        return text
    return text.rstrip() + "\n" + final_answer_line(chosen.answer, problem.final_line_lang)
