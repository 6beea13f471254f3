"""lm-eval's own options with the harness models: what is honoured, what is refused, what the results say.

The start-up hook (``bestofl_tasks._autoload``) reads each ``simple_evaluate`` / ``evaluate`` call's options and
hands them to the model (``BestOfLLM.begin_call``); docs/MODELS.md, "lm-eval's options", is the user's view.

* ``--use_cache``: refused before the model is built (:func:`refuse_use_cache`). lm-eval's response cache is keyed
  by the request alone, so it would serve a run with another ``n``, verifier, pool or seed the answers of this one,
  and a cache hit never reaches the model (no ``candidates`` in the sample rows, zero samples in the results).
  The store already keeps every candidate and score, keyed by model and settings.
* ``--samples``: the requests number the chosen docs 0..k-1; the model maps them back to the docs' own indices
  (``BestOfLLM._doc_id``), and the hook hands lm-eval each task's indices sorted, so its sample rows are labelled
  with the docs they show (lm-eval pairs the k-th doc in the task's order with the k-th index as given).
* ``--system_instruction``: :class:`SystemInstruction`, rendered by :func:`prompt_with_system` into every pool
  language's prompt (the same text, or each language's own from a JSON object ``{"en": ..., "de": ...}``).
* ``--gen_kwargs``: ``max_gen_toks`` and ``until`` bound the work and are honoured (:func:`honoured_gen_kwargs`);
  the other keys (sampling settings) are warned about and listed by ``results_info.ignored_options``.
* The results' top-level fields that lm-eval fills from its flags: :func:`describe_top_level`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import LmEvalOptionError
from .config import BestOfLConfig

#: ``--gen_kwargs`` keys the models honour: they bound the work and do not contradict sampling.
HONOURED_GEN_KWARGS = ("max_gen_toks", "until")

SYSTEM_TURN = "system turn of the chat template"
USER_TURN_START = "start of the user turn (the chat template refuses a system turn)"
BEFORE_PLAIN_PROMPT = "before the plain prompt, separated by a blank line (as lm-eval does)"


def refuse_use_cache(use_cache: Any, model: Any) -> None:
    """``--use_cache`` with one of our models: a one-line error saying why and what to use instead."""
    if use_cache is None:
        return
    name = model if isinstance(model, str) else getattr(getattr(model, "config", None), "preset", "bestofl")
    raise LmEvalOptionError(
        f"--use_cache cannot be used with --model {name}: lm-eval's cache is keyed by the request alone, so a later "
        "run with another n, verifier, pool or seed would be served this run's answers under its own settings. "
        "Every candidate and score is already kept in the store (store= in --model_args), keyed by model and "
        "settings, and a rerun reuses them: drop --use_cache.")


# ----------------------------------------------------------------------------------------------- --gen_kwargs


def parse_gen_kwargs(gen_kwargs: Any) -> dict[str, Any]:
    """``--gen_kwargs`` as a dict (lm-eval accepts ``a=1,b=x`` or a dict)."""
    if not gen_kwargs:
        return {}
    if isinstance(gen_kwargs, str):
        from lm_eval.utils import simple_parse_args_string

        return simple_parse_args_string(gen_kwargs)
    return dict(gen_kwargs)


def honoured_gen_kwargs(gen_kwargs: Any, config: BestOfLConfig) -> tuple[int, tuple[str, ...], dict[str, Any]]:
    """``(max_gen_toks to use, stop strings to add, what was applied)`` from ``--gen_kwargs``: the smaller of its
    ``max_gen_toks`` and ``max_gen_toks=`` wins; its ``until`` is added to every prompt's stop strings."""
    kwargs = parse_gen_kwargs(gen_kwargs)
    cap, applied = config.max_gen_toks, {}
    if "max_gen_toks" in kwargs:
        value = kwargs["max_gen_toks"]
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number) or number != int(number) or number < 1:
            raise LmEvalOptionError(f"--gen_kwargs max_gen_toks={value!r}: give a whole number of tokens >= 1.")
        cap = min(config.max_gen_toks, int(number))
        applied["max_gen_toks"] = {"gen_kwargs": int(number), "model_args": config.max_gen_toks, "applied": cap}
    until = kwargs.get("until")
    stop: tuple[str, ...] = ()
    if until:
        stop = tuple(dict.fromkeys(str(s) for s in ([until] if isinstance(until, str) else until) if s))
        applied["until"] = list(stop)
    return cap, stop, applied


# ----------------------------------------------------------------------------------------------- --system_instruction


@dataclass
class SystemInstruction:
    """``--system_instruction``: one text for every pool language, or each language's own (``by_lang``)."""

    text: str | None = None
    by_lang: dict[str, str] | None = None
    #: How it went into the prompts (``SYSTEM_TURN``, ``USER_TURN_START``, ``BEFORE_PLAIN_PROMPT``).
    applied_as: set[str] = field(default_factory=set)

    @classmethod
    def parse(cls, value: Any, config: BestOfLConfig) -> "SystemInstruction | None":
        if value is None or not str(value).strip():
            return None
        by_lang = _language_map(str(value))
        if by_lang is None:
            return cls(text=str(value))
        if config.pool == "languages":
            missing = [lang for lang in config.languages if lang not in by_lang]
            if missing:
                raise LmEvalOptionError(_missing_languages(missing, by_lang))
        return cls(by_lang=by_lang)

    def text_for(self, lang: str) -> str:
        if self.by_lang is None:
            return self.text
        if lang not in self.by_lang:
            raise LmEvalOptionError(_missing_languages([lang], self.by_lang))
        return self.by_lang[lang]

    def record(self) -> dict[str, Any]:
        """What the results' ``bestofl`` block says was applied."""
        return {"text": self.text if self.by_lang is None else dict(self.by_lang),
                "languages": ("the same text in every pool language" if self.by_lang is None
                              else "each pool language its own text, as given"),
                "applied_as": sorted(self.applied_as)}


def _missing_languages(missing: list[str], by_lang: Mapping[str, str]) -> str:
    return (f"--system_instruction gives a text for {', '.join(sorted(by_lang))} but not for pool language(s) "
            f"{', '.join(missing)}: add them to the JSON object, or give plain text to use it in every language.")


def _language_map(value: str) -> dict[str, str] | None:
    """A JSON object of language code -> text, or None for a plain instruction."""
    if not value.lstrip().startswith("{"):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not parsed or not all(isinstance(v, str) for v in parsed.values()):
        return None
    from bestofl_tasks.languages import get_language

    unknown = []
    for code in parsed:
        try:
            get_language(code)
        except (KeyError, ValueError):
            unknown.append(code)
    if unknown:
        raise LmEvalOptionError(f"--system_instruction is a JSON object, but {', '.join(map(repr, unknown))} is no "
                                "language code: give {\"en\": TEXT, \"de\": TEXT, ...} or plain text.")
    return parsed


def prompt_with_system(tokenizer: Any, question: str, lang: str, system: str) -> tuple[str, str]:
    """The generator prompt with ``system`` in it, and how it was put there: the chat template's system turn; the
    start of the user turn where the template refuses a system turn; before a plain prompt (lm-eval's way)."""
    from bestofl_tasks.prompts import chat_messages, generator_prompt, has_chat_template, user_prompt

    if not has_chat_template(tokenizer):
        return f"{system}\n\n{generator_prompt(tokenizer, question, lang)}", BEFORE_PLAIN_PROMPT
    messages = [{"role": "system", "content": system}, *chat_messages(question, lang)]
    try:
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if system in rendered:
            return rendered, SYSTEM_TURN
    except Exception:  # noqa: BLE001 - templates raise their own errors for a system role they do not support
        pass
    merged = [{"role": "user", "content": f"{system}\n\n{user_prompt(question, lang)}"}]
    return tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True), USER_TURN_START


# ----------------------------------------------------------------------------------------------- results fields


def describe_top_level(results: dict, lm, arguments: Mapping[str, Any]) -> None:
    """Make the results' top-level fields that lm-eval fills from its flags true for this run where the plugin
    can (``config.device``, ``config.batch_size``, ``n-shot``; ``config.batch_sizes`` comes from the model's
    ``batch_sizes``), and name in the ``bestofl`` block what was corrected (with the flag's value) and which
    fields still describe lm-eval's flags or the task rather than this run."""
    config = results.get("config") or {}
    block = config.get("bestofl")
    if not isinstance(block, dict):
        return
    from ..generation.backends import device_of

    corrected: dict[str, Any] = {}
    device = device_of(lm.config)
    if config.get("device") != device:
        corrected["config.device"] = {"lm_eval_flag": config.get("device"), "run": device}
        config["device"] = device
    if config.get("batch_size") != lm.config.batch_size:
        corrected["config.batch_size"] = {"lm_eval_flag": config.get("batch_size"), "run": lm.config.batch_size}
        config["batch_size"] = lm.config.batch_size
    shots = results.get("n-shot") or {}
    zero_shot = [task for task, kinds in lm.prompts_by_task.items() if kinds == {"bestofl"}]
    for task in sorted(zero_shot):
        if shots.get(task):
            corrected[f"n-shot.{task}"] = {"lm_eval_flag": shots[task], "run": 0}
            shots[task] = 0
    not_describing = {
        "configs.TASK.generation_kwargs": "the task's decoding settings; bestofl samples with applied_settings",
        "samples[].arguments": "the task's own prompt; bestofl sampled its own prompt per pool language "
                               "(the rows' candidates say which)",
    }
    for task in sorted(zero_shot):
        num_fewshot = ((results.get("configs") or {}).get(task) or {}).get("num_fewshot")
        if num_fewshot:
            not_describing[f"configs.{task}.num_fewshot"] = "the task's setting; bestofl sampled zero-shot (n-shot 0)"
    if arguments.get("apply_chat_template"):
        not_describing["chat_template"] = ("lm-eval's record of --apply_chat_template; bestofl renders its own "
                                           "prompts (prompt_format, chat_template_sha256)")
    block["top_level_fields_corrected"] = corrected
    block["top_level_fields_not_describing_the_run"] = not_describing
