"""The harness side of ``adaptive=RULE``: draw each request's samples in rounds and stop once the rule holds.

A request's slots are the ones a fixed budget ``n`` plans (``plan_samples`` order, the same keys and seeds), cut
into rounds of one slot per pool language by :func:`bestofl_models.selection.adaptive.plan_rounds`. Round ``r`` draws round
``r`` of every request still running in one call (one generation batch list, then one scoring pass), so the store
holds exactly what a fixed-budget run's first slots would, and either run reuses the other's candidates. After each
round, :func:`~bestofl_models.selection.adaptive.should_stop` decides per request; a request stops at its last round anyway.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from ..selection.adaptive import AdaptiveRule, plan_rounds, should_stop
from ..generation.distributed import ProcessGroup
from ..selection.methods import Scored

logger = logging.getLogger(__name__)

SlotT = TypeVar("SlotT")


def rounds_of(slots: Sequence[SlotT]) -> list[list[SlotT]]:
    """A request's slots (in ``plan_samples`` order, with ``.lang``) cut into :func:`plan_rounds`' rounds."""
    if not slots:
        return []
    pool = tuple(dict.fromkeys(slot.lang for slot in slots))
    ends = list(itertools.accumulate(len(r) for r in plan_rounds(len(slots), pool)))
    return [list(slots[start:end]) for start, end in zip([0, *ends], ends)]


def draw_in_rounds(rule: AdaptiveRule, rounds: list[list[list[SlotT]]],
                   draw: Callable[[list[list[SlotT]]], None],
                   view: Callable[[list[SlotT]], list[Scored]], group: ProcessGroup) -> list[list[SlotT]]:
    """Per request, the slots drawn before ``rule`` held or its rounds ran out.

    ``rounds``: per request, its rounds of slots; ``draw``: generates (and scores) a list of requests' slot lists,
    a collective call under ``accelerate launch``, so every rank makes it each round until no rank has a request
    running; ``view``: a request's drawn slots as selection sees them (answers, and scores if ``draw`` made them).
    """
    drawn: list[list[SlotT]] = [[] for _ in rounds]
    running = [i for i, request_rounds in enumerate(rounds) if request_rounds]
    for number in itertools.count():
        if not sum(group.all_gather([len(running)])):
            break
        logger.info("bestofl: adaptive=%s round %d: %d request(s) still sampling", rule, number + 1, len(running))
        draw([rounds[i][number] for i in running])
        still = []
        for i in running:
            drawn[i] += rounds[i][number]
            if number + 1 < len(rounds[i]) and not should_stop(rule, view(drawn[i])):
                still.append(i)
        running = still
    return drawn
