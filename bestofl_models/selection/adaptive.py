"""Adaptive budget: sample a problem in rounds and stop once a rule holds. Pure functions, no I/O.

Rule syntax (the harness option ``adaptive=RULE`` and ``bestofl-report adaptive --rule RULE``):

* ``score:T``: stop once the top verifier probability among the candidates with an answer is >= ``T``
  (``0 < T <= 1``; missing and NaN scores never count). The top one is the candidate ``cross_orm`` picks.
* ``margin:M``: stop once the most frequent extracted answer leads the runner-up by >= ``M`` votes (integer
  ``M >= 1``; candidates without an answer do not vote; a lone answer leads by its count).
* ``score:T+margin:M``: stop once either holds.

Whatever the rule, a problem stops when its budget ``n`` is used. Round ``r`` (1-based) draws one candidate
per pool language in pool order, i.e. samples ``(r-1)*L .. r*L-1`` of ``plan_samples(n, pool)`` (the last
round only the first ``n - (r-1)*L`` languages). So after ``r`` rounds a problem holds exactly the slots, and
hence the stored candidates, of a fixed budget ``min(r*L, n)``. The rule is checked after each whole round.

The harness loop: for each round of :func:`plan_rounds`, sample that round's slots of the problems still
running, score them, and drop the problems for which :func:`should_stop` holds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .pool import plan_samples, validate_pool
from .methods import Scored, is_valid_score, vote_counts

_SYNTAX = ("write score:T (0 < T <= 1), margin:M (an integer >= 1), or both joined by + "
           "(e.g. adaptive=score:0.9+margin:3)")


@dataclass(frozen=True)
class AdaptiveRule:
    """Stop once the top score reaches ``score`` or the vote margin reaches ``margin`` (None: that test is off)."""

    score: float | None = None
    margin: int | None = None

    def __post_init__(self) -> None:
        if self.score is None and self.margin is None:
            raise ValueError(f"An adaptive rule needs a score or a margin; {_SYNTAX}.")
        if self.score is not None and not (isinstance(self.score, (int, float)) and 0 < self.score <= 1):
            raise ValueError(f"score:{self.score} is not a probability threshold; {_SYNTAX}.")
        if self.margin is not None and (isinstance(self.margin, bool) or not isinstance(self.margin, int)
                                        or self.margin < 1):
            raise ValueError(f"margin:{self.margin} is not a vote margin; {_SYNTAX}.")
        if self.score is not None:
            object.__setattr__(self, "score", float(self.score))

    @classmethod
    def parse(cls, text: str) -> AdaptiveRule:
        """The rule an option string names (module docstring); ValueError saying what to write otherwise."""
        values: dict[str, str] = {}
        for part in str(text).strip().split("+"):
            name, colon, value = part.strip().partition(":")
            name = name.strip().lower()
            if not colon or name not in ("score", "margin") or not value.strip():
                raise ValueError(f"adaptive={text!r}: cannot read {part.strip()!r}; {_SYNTAX}.")
            if name in values:
                raise ValueError(f"adaptive={text!r} gives {name} twice; {_SYNTAX}.")
            values[name] = value.strip()
        try:
            score = float(values["score"]) if "score" in values else None
        except ValueError:
            raise ValueError(f"adaptive={text!r}: score {values['score']!r} is not a number; {_SYNTAX}.") from None
        margin_text = values.get("margin")
        if margin_text is not None and not margin_text.isdigit():
            raise ValueError(f"adaptive={text!r}: margin {margin_text!r} is not a whole number; {_SYNTAX}.")
        return cls(score=score, margin=None if margin_text is None else int(margin_text))

    @property
    def needs_verifier(self) -> bool:
        return self.score is not None

    @property
    def family(self) -> str:
        """``score``, ``margin`` or ``score+margin``: which tests the rule uses."""
        return "+".join(name for name in ("score", "margin") if getattr(self, name) is not None)

    def __str__(self) -> str:
        """The option string, canonical (``parse(str(rule)) == rule``)."""
        parts = [] if self.score is None else [f"score:{self.score!r}"]
        return "+".join(parts + ([] if self.margin is None else [f"margin:{self.margin}"]))


def plan_rounds(n: int, pool: Sequence[str]) -> list[list[tuple[str, int]]]:
    """``plan_samples(n, pool)`` cut into rounds of one slot per pool language (the last one may be shorter)."""
    size = len(validate_pool(pool))
    plan = plan_samples(n, pool)
    return [plan[start:start + size] for start in range(0, n, size)]


def top_score(candidates: Iterable[Scored]) -> float:
    """The highest real score among candidates with an answer (``-inf`` if none has one)."""
    return max((c.score for c in candidates if c.answer is not None and is_valid_score(c.score)), default=-math.inf)


def vote_margin(candidates: Iterable[Scored]) -> int:
    """Votes of the most frequent answer minus those of the runner-up (0 without answers)."""
    counts = sorted(vote_counts(candidates).values(), reverse=True)
    return (counts[0] - (counts[1] if len(counts) > 1 else 0)) if counts else 0


def should_stop(rule: AdaptiveRule, candidates: Iterable[Scored]) -> bool:
    """Whether ``rule`` holds on the candidates drawn so far (the budget limit is the caller's)."""
    items = list(candidates)
    return ((rule.score is not None and top_score(items) >= rule.score)
            or (rule.margin is not None and vote_margin(items) >= rule.margin))


def samples_used(rounds: int, pool_size: int, n: int) -> int:
    """Samples drawn after ``rounds`` rounds over a pool of ``pool_size`` with budget ``n``."""
    return min(rounds * pool_size, n)


def stopping_round(rule: AdaptiveRule, candidates: Sequence[Scored], pool_size: int, n: int) -> int:
    """Rounds used (1..ceil(n / pool_size)) on ``candidates`` given in draw order (``plan_samples`` order, at
    least ``n`` of them): the first round after which ``rule`` holds, or the last one."""
    if len(candidates) < n:
        raise ValueError(f"stopping_round needs the n={n} candidates in draw order, got {len(candidates)}.")
    last = math.ceil(n / pool_size)
    for rounds in range(1, last):
        if should_stop(rule, candidates[:samples_used(rounds, pool_size, n)]):
            return rounds
    return last
