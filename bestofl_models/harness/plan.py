"""Stage *plan*: a problem becomes its slots, one per planned sample: the pool language, the sample index, the
rendered prompt, the stop strings and the candidate key (``store.candidate_key``) that names the sample."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bestofl_tasks.languages import get_language
from bestofl_tasks.prompts import generator_prompt, has_chat_template

from ..selection.pool import plan_samples
from ..store import Use, candidate_key
from .lm_eval_options import SystemInstruction, prompt_with_system
from .config import BestOfLConfig
from .model_args import check_target
from .problems import Problem
from .run_log import warn_no_pool, warn_target_outside_pool


@dataclass(frozen=True)
class Slot:
    """One planned sample of one request."""

    request: int
    lang: str | None
    sample_idx: int
    key: str
    prompt: str
    question: str
    stop: tuple[str, ...]


def use_of(problem: Problem, slot: Slot) -> Use:
    """The store's record that ``problem`` used the slot's candidate."""
    return Use(slot.key, problem.task, problem.doc_id, problem.target_lang, problem.problem_id, problem.gold)


def planned_by_key(slots: list[list[Slot]]) -> dict[str, Slot]:
    """Every slot of every request, by candidate key (requests sharing a candidate share one slot)."""
    return {slot.key: slot for request_slots in slots for slot in request_slots}


class Planner:
    """Plans the slots of each problem with one call's settings. ``prompts`` caches rendered prompts by (question,
    language, system instruction) across the ``generate_until`` calls of one ``evaluate`` call."""

    def __init__(self, config: BestOfLConfig, generator_id: str, tokenizer: Any,
                 system_instruction: SystemInstruction | None, extra_stop: tuple[str, ...],
                 prompts: dict[tuple[str, str, str | None], str]) -> None:
        self.config = config
        self.generator_id = generator_id
        self.tokenizer = tokenizer
        self.system_instruction = system_instruction
        self.extra_stop = extra_stop
        self.prompts = prompts

    def plan(self, index: int, problem: Problem) -> list[Slot]:
        settings = self.config.sampling_settings()
        generator = self.generator_id
        if problem.is_fallback:
            stop = tuple(problem.until)
            key_settings = {**settings, "stop": sorted(stop)}
            return [
                Slot(index, None, i, candidate_key(generator, problem.own_prompt, key_settings, i),
                     problem.own_prompt, problem.own_prompt, stop)
                for i in range(self.config.n)
            ]
        check_target(self.config, problem.target_lang, problem.task)
        slots = []
        for lang, sample_idx in plan_samples(self.config.n, self.pool(problem)):
            question = problem.parallel[lang]
            prompt = self.prompt(question, lang)
            stop = self.stop(lang)
            key = candidate_key(generator, prompt, {**settings, "stop": sorted(stop)}, sample_idx)
            slots.append(Slot(index, lang, sample_idx, key, prompt, question, stop))
        return slots

    def pool(self, problem: Problem) -> list[str]:
        wanted = self.config.pool_for(problem.target_lang)
        pool = [lang for lang in wanted if lang in problem.parallel]
        if not pool:
            warn_no_pool(problem.task, tuple(wanted))
            pool = [problem.target_lang]
        elif self.config.pool == "languages" and problem.target_lang not in wanted:
            warn_target_outside_pool(problem.task, problem.target_lang, tuple(wanted))
        return pool

    def prompt(self, question: str, lang: str) -> str:
        system = self.system_instruction.text_for(lang) if self.system_instruction else None
        if (question, lang, system) not in self.prompts:
            if system is None:
                prompt = generator_prompt(self.tokenizer, question, lang)
            else:
                prompt, how = prompt_with_system(self.tokenizer, question, lang, system)
                self.system_instruction.applied_as.add(how)
            self.prompts[question, lang, system] = prompt
        return self.prompts[question, lang, system]

    def stop(self, lang: str) -> tuple[str, ...]:
        """A chat model ends its turn with EOS; a plain prompt would run on into the next question. ``until``
        from ``--gen_kwargs`` adds its strings."""
        own = () if has_chat_template(self.tokenizer) else (get_language(lang).question_prefix,)
        return tuple(dict.fromkeys((*own, *self.extra_stop)))
