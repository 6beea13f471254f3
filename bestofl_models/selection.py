"""Selection methods: pick one candidate from a problem's pool. Pure functions, no I/O.

Methods (``METHODS``):

* ``cross_orm``: the verifier's top-scored candidate over the whole pool (Best-of-L);
* ``multi_orm``: the verifier's top-scored candidate among the target language's candidates;
* ``self_consistency``: majority vote of the target language's answers;
* ``cross_self_consistency``: majority vote over the whole pool;
* ``weighted_vote``: the answer with the largest sum of verifier probabilities over the pool.

Tie rule (deterministic, independent of the order candidates are passed in):

1. *Canonical order*: target-language candidates first, then the pool's languages in pool order,
   each by ``sample_idx`` (then ``key``).
2. *Rank* (used by the ORM methods, and to break ties in votes): candidates with an answer before
   candidates without one; then a real score before a missing or NaN score; then higher score;
   then canonical order. The top-ranked candidate is the ORM's pick.
3. *Votes*: candidates without an answer do not vote. Answers are compared by vote count (or summed
   probability for ``weighted_vote``; missing and NaN scores add 0), and a tie goes to the answer
   whose best-ranked candidate ranks first, i.e. the higher top score if there are scores, then the
   canonically earlier candidate. The returned candidate is the winning answer's best-ranked
   candidate. If no candidate has an answer, the best-ranked candidate is returned.

``select`` returns None only when no candidate is eligible (no candidates, or none in the target
language for the target-only methods).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .pool import validate_pool

METHODS: tuple[str, ...] = (
    "cross_orm",
    "multi_orm",
    "self_consistency",
    "cross_self_consistency",
    "weighted_vote",
)
NEEDS_VERIFIER: frozenset[str] = frozenset({"cross_orm", "multi_orm", "weighted_vote"})
#: Methods that only look at the target language's candidates.
TARGET_ONLY: frozenset[str] = frozenset({"multi_orm", "self_consistency"})
#: Methods that vote over answers (the rest take the top-ranked candidate).
VOTES: frozenset[str] = frozenset({"self_consistency", "cross_self_consistency", "weighted_vote"})


@dataclass(frozen=True)
class Scored:
    """One candidate as selection sees it: where it came from, its answer and its verifier score."""

    key: str
    lang: str
    sample_idx: int
    answer: str | None
    score: float | None


def is_valid_score(score: float | None) -> bool:
    """True for a real score; None and NaN are not scores."""
    return score is not None and not math.isnan(score)


def canonical_order(candidates: Iterable[Scored], target_lang: str, pool: Sequence[str]) -> list[Scored]:
    """Candidates in canonical order: target language first, then pool order, then ``sample_idx``.

    ValueError if a candidate's language is neither the target nor in the pool.
    """
    position = {lang: i + 1 for i, lang in enumerate(validate_pool(pool))}
    position[target_lang] = 0
    items = list(candidates)
    strangers = sorted({c.lang for c in items if c.lang not in position})
    if strangers:
        raise ValueError(
            f"Candidates in {', '.join(strangers)} are neither in the target language {target_lang!r} nor in the "
            f"pool {':'.join(pool)}; add their languages to the pool or leave those candidates out."
        )
    return sorted(items, key=lambda c: (position[c.lang], c.sample_idx, c.key))


def rank_order(candidates: Iterable[Scored], target_lang: str, pool: Sequence[str]) -> list[Scored]:
    """Candidates best first: answer before none, real score before none/NaN, higher score, canonical order."""
    ordered = canonical_order(candidates, target_lang, pool)

    def rank(item: tuple[int, Scored]) -> tuple[bool, bool, float, int]:
        position, c = item
        valid = is_valid_score(c.score)
        return (c.answer is None, not valid, -c.score if valid else 0.0, position)

    return [c for _, c in sorted(enumerate(ordered), key=rank)]


def vote_counts(candidates: Iterable[Scored]) -> dict[str, int]:
    """Votes per answer (candidates without an answer do not vote)."""
    counts: dict[str, int] = {}
    for c in candidates:
        if c.answer is not None:
            counts[c.answer] = counts.get(c.answer, 0) + 1
    return counts


def vote_weights(candidates: Iterable[Scored]) -> dict[str, float]:
    """Summed verifier probability per answer (missing and NaN scores add 0; exact ``math.fsum``)."""
    parts: dict[str, list[float]] = {}
    for c in candidates:
        if c.answer is not None:
            parts.setdefault(c.answer, []).append(c.score if is_valid_score(c.score) else 0.0)
    return {answer: math.fsum(values) for answer, values in parts.items()}


def eligible(method: str, candidates: Iterable[Scored], target_lang: str) -> list[Scored]:
    """The candidates ``method`` chooses from: the target language's for target-only methods, else all."""
    _check_method(method)
    items = list(candidates)
    return [c for c in items if c.lang == target_lang] if method in TARGET_ONLY else items


def select(method: str, candidates: Iterable[Scored], target_lang: str, pool: Sequence[str]) -> Scored | None:
    """The candidate ``method`` picks (tie rule: module docstring); None if none is eligible."""
    considered = eligible(method, candidates, target_lang)
    if not considered:
        return None
    if method in NEEDS_VERIFIER and not any(c.score is not None for c in considered):
        raise ValueError(
            f"Selection {method!r} needs verifier scores, but none of the {len(considered)} candidates has one; "
            "pass a verifier, or use selection=self_consistency or cross_self_consistency."
        )
    ranked = rank_order(considered, target_lang, pool)
    if method not in VOTES:
        return ranked[0]
    tally: Callable[[Iterable[Scored]], dict[str, float]] = vote_weights if method == "weighted_vote" else vote_counts
    totals = tally(considered)
    if not totals:
        return ranked[0]
    best_rank: dict[str, int] = {}
    for position, c in enumerate(ranked):
        if c.answer is not None:
            best_rank.setdefault(c.answer, position)
    winner = max(totals, key=lambda answer: (totals[answer], -best_rank[answer]))
    return ranked[best_rank[winner]]


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"Unknown selection method {method!r}. Choose one of: {', '.join(METHODS)}.")
