"""What bestofl reads from an lm-eval task without parallel versions: a doc's question and the answer line the
task's own filters parse.

**The question** (docs/MODELS.md, "Tasks without parallel versions"):

1. With the task object known (the start-up hook hands the evaluated tasks to the model, :func:`tasks_by_name`):
   the task's own ``doc_to_text`` is rendered on a copy of the doc whose text fields are markers; the question is
   the stretch from the first to the last field it shows, with the doc's values in place (gsm8k's
   ``Question: {{question}}\\nAnswer:`` gives ``question``; asdiv's ``Problem: {{body}} {{question}}`` gives
   ``body question``). The template's own words, the task description and few-shot examples are never in it.
2. Without the task: the doc's first non-empty text field among :data:`QUESTION_FIELDS`.

Either way the question must appear in the request's prompt (whitespace aside), or it is not isolated.

**The answer line**: the forms of :data:`ANSWER_FORMS` are tried in order; the first one that the task's first
filter pipeline (lm-eval's ``strict-match`` where it has one), run on the selected text plus that line, maps to
the answer is appended. When none does: the text unchanged and one warning per task.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from typing import Any

from bestofl_tasks.answers import canonical_number
from bestofl_tasks.languages import final_answer_line

logger = logging.getLogger(__name__)

#: Doc fields read as the question when the task object is not known.
QUESTION_FIELDS = ("question", "problem", "Question", "Problem")
_MARK = "\ue000{}\ue001"
_MARKS = re.compile("\ue000(.*?)\ue001", re.DOTALL)
#: Final answer lines, most common first: the target language's own line (``The answer is N.``: gsm8k_cot,
#: mgsm_native_cot), ``#### N`` (gsm8k), ``The final answer is N`` (asdiv_cot_llama, gsm8k_cot_llama), boxed.
ANSWER_FORMS = ("{final_line}", "#### {answer}", "The final answer is {answer}",
                "The final answer is $\\boxed{{{answer}}}$.")


def tasks_by_name(task_dict: Any) -> dict[str, Any]:
    """Every lm-eval task object in ``evaluate``'s (possibly nested) task dict, by the name its requests carry."""
    from lm_eval.api.task import Task

    found: dict[str, Any] = {}

    def walk(value: Any) -> None:
        if isinstance(value, Task):
            found[value.config.task] = value
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(task_dict)
    return found


def _squash(text: str) -> str:
    return " ".join(text.split())


def isolate_question(doc: Any, ctx: Any, task: Any = None) -> tuple[str | None, str]:
    """``(question, how it was found)``, or ``(None, why not)``, by the rule of the module docstring."""
    if not isinstance(doc, Mapping):
        return None, "its doc is not a mapping"
    question, how = _from_template(doc, task) if task is not None else (None, "")
    if question is None:
        field = next((f for f in QUESTION_FIELDS if isinstance(doc.get(f), str) and doc[f].strip()), None)
        if field is None:
            return None, how or f"its doc has none of the fields {', '.join(QUESTION_FIELDS)}"
        question, how = doc[field], f"doc field {field!r}"
    question = question.strip()
    if not isinstance(ctx, str) or _squash(question) not in _squash(ctx):
        return None, f"the question found ({how}) is not in the request's prompt"
    return question, how


def _from_template(doc: Mapping, task: Any) -> tuple[str | None, str]:
    """The question as the task's ``doc_to_text`` shows it (None when it shows no text field of the doc)."""
    marked = {key: _MARK.format(key) if isinstance(value, str) else value for key, value in doc.items()}
    try:
        rendered = task.doc_to_text(marked)
    except Exception as exc:  # noqa: BLE001 - a doc_to_text that needs real values: use the doc's fields
        return None, f"doc_to_text cannot be rendered on marked fields ({type(exc).__name__})"
    if not isinstance(rendered, str):
        return None, "doc_to_text gives no text"
    marks = list(_MARKS.finditer(rendered))
    if not marks or any(m.group(1) not in doc for m in marks):
        return None, "doc_to_text shows no text field of the doc"
    span = rendered[marks[0].start():marks[-1].end()]
    fields = list(dict.fromkeys(m.group(1) for m in marks))
    return _MARKS.sub(lambda m: str(doc[m.group(1)]), span), f"doc_to_text fields {', '.join(fields)}"


def filter_output(task: Any, doc: Any, text: str) -> Any:
    """What the task's first filter pipeline makes of ``text`` (run the way lm-eval runs it)."""
    from lm_eval.api.instance import Instance

    ensemble = task._filters[0]
    instance = Instance("generate_until", doc, ("", {}), 0, metadata=(task.config.task, 0, 1))
    instance.resps = [text]
    ensemble.apply([instance])
    return instance.filtered_resps[ensemble.name]


def parses(task: Any, doc: Any, text: str, answer: str) -> bool:
    """Whether the task's first filter pipeline extracts ``answer`` from ``text`` (``$``, ``,`` and a final ``.``
    aside, as lm-eval's math metrics ignore them)."""
    output = filter_output(task, doc, text)
    return isinstance(output, str) and canonical_number(output.strip().replace("$", "")) == answer


def with_answer_line(task: Any, doc: Any, text: str, answer: str, lang: str) -> tuple[str, str | None]:
    """``text`` plus the first answer line of :data:`ANSWER_FORMS` the task's filters parse, and that form; the
    text unchanged and None (one warning per task) when none parses."""
    base = text.rstrip()
    for form in ANSWER_FORMS:
        line = form.format(final_line=final_answer_line(answer, lang), answer=answer)
        if parses(task, doc, base + "\n" + line, answer):
            return base + "\n" + line, form
    _warn_unparsed(task.config.task)
    return text, None


@functools.cache
def _warn_unparsed(task: str) -> None:
    logger.warning(
        "%s: the task's first filter parses none of bestofl's answer lines (%s); its answers are returned as "
        "sampled, without a final answer line.", task, " | ".join(ANSWER_FORMS))
