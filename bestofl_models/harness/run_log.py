"""What the harness models tell the user while they run: the per-task summary and one-time warnings."""

from __future__ import annotations

import collections
import functools
import logging
from typing import Any

from .config import BestOfLConfig
from .problems import Problem
from ..selection.methods import Scored

logger = logging.getLogger(__name__)


class RunSummary:
    """Per task: which languages won, how often the answer differs from the target's first sample, and the
    samples used (what ``adaptive=`` saves)."""

    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = collections.defaultdict(
            lambda: {"requests": 0, "winners": collections.Counter(), "compared": 0, "changed": 0, "none": 0,
                     "samples": 0, "translated": 0, "refused": collections.Counter()}
        )

    def add(self, problem: Problem, chosen: Scored | None, first: Scored | None, samples: int) -> None:
        row = self.tasks[problem.task]
        row["requests"] += 1
        row["samples"] += samples
        if problem.source_lang is not None:
            row["translated"] += 1
            row["refused"].update(problem.refused)
        if chosen is None or chosen.answer is None:
            row["none"] += 1
        if chosen is not None:
            row["winners"][chosen.lang or "task prompt"] += 1
        if chosen is not None and first is not None:
            row["compared"] += 1
            row["changed"] += chosen.answer != first.answer

    def log(self, config: BestOfLConfig) -> None:
        for task, row in sorted(self.tasks.items()):
            winners = ", ".join(f"{lang} {count}" for lang, count in row["winners"].most_common())
            changed = (
                f"{row['changed']}/{row['compared']} answers differ from the target language's first sample"
                if row["compared"] else "no target-language first sample to compare with"
            )
            adaptive = (f"; adaptive={config.adaptive}: {row['samples'] / row['requests']:.2f} of n={config.n} "
                        "samples per request" if config.adaptive else "")
            translated = ""
            if row["translated"]:
                refused = ", ".join(f"{lang} {count}" for lang, count in sorted(row["refused"].items())) or "none"
                translated = (f"; {row['translated']} questions translated by translator={config.translator}, "
                              f"translations refused by the number check (left out of the pool): {refused}")
            logger.info(
                "bestofl %s [%s, selection=%s]: %d requests; selected language: %s; %s; %d without an answer%s%s",
                task, config.preset, config.selection, row["requests"], winners or "-", changed, row["none"],
                adaptive, translated,
            )


def show_logs_like_lm_eval() -> None:
    """The lm-eval CLI prints INFO only for its own logger: print ours (the summary) through its handlers."""
    source = logging.getLogger("lm_eval")
    ours = logging.getLogger("bestofl_models")
    if logging.getLogger().handlers or not source.handlers or ours.handlers:
        return
    for handler in source.handlers:
        ours.addHandler(handler)
    if ours.level == logging.NOTSET:
        ours.setLevel(source.getEffectiveLevel())


@functools.cache
def warn_repeats(repeats: int) -> None:
    if repeats > 1:
        logger.warning(
            "repeats=%d: bestofl samples n candidates inside the model, so every repeat of a request gets the "
            "same selected answer; set n instead of repeats.", repeats,
        )


@functools.cache
def warn_fewshot_ignored(task: str) -> None:
    logger.warning(
        "%s: the task's prompt holds few-shot examples (--num_fewshot), which bestofl does not use: it samples "
        "its own zero-shot prompt in every pool language. Run the baselines zero-shot to compare like with like.",
        task,
    )


@functools.cache
def warn_no_pool(task: str, wanted: tuple[str, ...]) -> None:
    logger.warning(
        "%s: some problems have no version in any pool language (%s); those sample in the target language only.",
        task, ":".join(wanted),
    )


@functools.cache
def warn_target_outside_pool(task: str, target: str, pool: tuple[str, ...]) -> None:
    logger.warning(
        "%s: the target language %s is not in the pool %s, so every answer comes from another language's "
        "candidate and none is in %s. To let %s compete, add it: languages=%s.",
        task, target, ":".join(pool), target, target, ":".join((*pool, target)),
    )


def warn_pool_file_mismatch(config: BestOfLConfig, generator_id: str, verifier_id: str | None) -> None:
    """``languages=auto:FILE`` chosen for another generator or verifier than this run's."""
    chosen = config.pool_file
    if chosen is None or config.pool != "languages":
        return
    for role, theirs, ours in (("generator", chosen.generator_id, generator_id),
                               ("verifier", chosen.verifier_id, verifier_id)):
        if theirs is not None and ours is not None and theirs != ours:
            logger.warning(
                "languages=auto:%s: the pool %s was chosen for %s %s, and this run's %s is %s; it may not be the best "
                "pool here. Rerun bestofl-report recommend-pool on a store of this %s's candidates, or pass "
                "languages= explicitly.", chosen.file, ":".join(chosen.pool), role, theirs, role, ours, role,
            )
