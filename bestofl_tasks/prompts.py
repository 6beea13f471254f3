"""Prompt formats: the one place that turns a question into text for a generator or a verifier.

Used by the task YAMLs (``doc_to_text``), the harness models (cross-lingual sampling) and the
training module (generation and verifier inputs), so all of them see exactly the same text.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import jinja2

from .answers import answers_equal, extract_answer
from .languages import final_answer_line, get_language

logger = logging.getLogger(__name__)

_ENV = jinja2.Environment(keep_trailing_newline=False, undefined=jinja2.StrictUndefined, autoescape=False)

#: Zero-shot chain of thought in the question's language: instruction, question, step-by-step cue.
USER_PROMPT = _ENV.from_string(
    "{{ lang.instruction }}\n\n{{ lang.question_prefix }}{{ '' if lang.question_prefix.endswith('：') else ' ' }}"
    "{{ question }}\n{{ lang.cot_cue }}"
)
#: The verifier's input when its tokenizer has no chat template.
PLAIN_VERIFIER_TEXT = _ENV.from_string("{{ prompt }}\n{{ response }}")


def user_prompt(question: str, lang: str) -> str:
    """The user turn for ``question`` written in ``lang`` (instruction and cues in ``lang`` too)."""
    return USER_PROMPT.render(lang=get_language(lang), question=question.strip())


def worked_solution(solution: str, answer: str, lang: str) -> str:
    """A few-shot exemplar's answer in the format the prompt asks for: the reasoning, then the final answer
    line on its own line. A closing sentence that already states ``answer`` ("Die Antwort ist 11.") is
    replaced by that line."""
    body = solution.strip()
    start = max(body.rfind(phrase) for phrase in get_language(lang).answer_phrases)
    if start >= 0 and "\n" not in body[start:] and answers_equal(extract_answer(body[start:], lang), answer):
        body = body[:start].rstrip()
    return f"{body}\n{final_answer_line(answer, lang)}"


def chat_messages(question: str, lang: str, response: str | None = None) -> list[dict[str, str]]:
    """Chat messages for the question (and, for the verifier, the assistant's response)."""
    messages = [{"role": "user", "content": user_prompt(question, lang)}]
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return messages


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


@functools.lru_cache(maxsize=None)
def _warn_no_template(name: str) -> None:
    logger.warning(
        "Tokenizer %s has no chat template; using the plain prompt format "
        "(the same text as the tasks without --apply_chat_template).",
        name,
    )


def generator_prompt(tokenizer: Any, question: str, lang: str) -> str:
    """Full prompt text for a generator: its chat template with a generation prompt, if it has one."""
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(
            chat_messages(question, lang), tokenize=False, add_generation_prompt=True
        )
    _warn_no_template(getattr(tokenizer, "name_or_path", type(tokenizer).__name__))
    return user_prompt(question, lang) + "\n"


def verifier_text(tokenizer: Any, question: str, response: str, lang: str) -> str:
    """The exact text the verifier scores (and is trained on): the prompt and the candidate response.

    ``question`` and ``lang`` are the candidate's own (the language it was sampled in).
    """
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(
            chat_messages(question, lang, response=response.strip()), tokenize=False, add_generation_prompt=False
        )
    return PLAIN_VERIFIER_TEXT.render(prompt=user_prompt(question, lang), response=response.strip())
