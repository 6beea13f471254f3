"""Stage *select*: each request's candidates as selection sees them (``selection.Scored``), and the one its
method picks (``selection.select``, with the tie rule)."""

from __future__ import annotations

import math

from ..selection.methods import Scored, select
from ..store import MISSING, Candidate
from .plan import Slot
from .problems import Problem


def scored(slots: list[Slot], candidates: dict[str, Candidate], scores: dict[str, float | None]) -> list[Scored]:
    """The slots' candidates as selection sees them. NaN: the verifier gave no usable number (ranks last); a
    key without a score stays None."""
    out = []
    for slot in slots:
        score = scores.get(slot.key, MISSING)
        score = None if score is MISSING else (math.nan if score is None else score)
        out.append(Scored(slot.key, slot.lang, slot.sample_idx, candidates[slot.key].answer, score))
    return out


def choose(method: str, problem: Problem, slots: list[Slot], candidates: dict[str, Candidate],
           scores: dict[str, float | None]) -> tuple[Scored | None, Scored | None, list[Scored]]:
    """The selected candidate, the target language's first sample (for the summary) and every candidate."""
    every = scored(slots, candidates, scores)
    pool = list(dict.fromkeys(slot.lang for slot in slots))
    chosen = select(method, every, problem.target_lang, pool)
    first = next((s for s in every if s.lang == problem.target_lang and s.sample_idx == 0), None)
    return chosen, first, every
