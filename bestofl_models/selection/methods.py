"""Selection methods: pick one candidate from a problem's pool. Pure functions, no I/O.

Every method is one :class:`Method` spec in :data:`METHODS`, the single registry that the harness
(``selection=``), the report (budget curves, estimator per method) and ``bestofl-train evaluate`` read.
A spec says whether the method needs a verifier, whether it looks at the target language only, and how it
picks from the ranked candidates: the top-ranked one (``vote=None``) or the winner of a vote (``count``: one
vote per candidate, ``score``: the summed verifier probability), optionally among the ``top_k`` best-ranked
candidates only. The report derives its vectorised estimator from the same fields (exact order statistics
for the top-ranked pick, Monte Carlo for votes). Adding a method is adding one spec.

Tie rule (deterministic, independent of the order candidates are passed in):

1. *Canonical order*: target-language candidates first, then the pool's languages in pool order,
   each by ``sample_idx`` (then ``key``).
2. *Rank* (used by the ORM methods, and to break ties in votes): candidates with an answer before
   candidates without one; then a real score before a missing or NaN score; then higher score;
   then canonical order. The top-ranked candidate is the ORM's pick.
3. *Votes*: candidates without an answer do not vote. Answers are compared by vote count (or summed
   probability; missing and NaN scores add 0), and a tie goes to the answer whose best-ranked candidate
   ranks first, i.e. the higher top score if there are scores, then the canonically earlier candidate.
   The returned candidate is the winning answer's best-ranked candidate. If no candidate has an answer,
   the best-ranked candidate is returned.

``select`` returns None only when no candidate is eligible (no candidates, or none in the target
language for the target-only methods).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .pool import validate_pool


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


#: Vote tallies by ``Method.vote``.
TALLIES = {"count": vote_counts, "score": vote_weights}


@dataclass(frozen=True)
class Method:
    """One selection method (module docstring): what it needs and how it picks."""

    name: str
    #: One line for the docs, the report's summary and error messages.
    summary: str
    needs_verifier: bool
    #: Picks among the target language's candidates only (else: the whole pool).
    target_only: bool = False
    #: None: the top-ranked candidate; ``count`` / ``score``: the winner of a vote (:data:`TALLIES`).
    vote: str | None = None
    #: Votes only among the ``top_k`` best-ranked candidates (None: all of them).
    top_k: int | None = None

    def __post_init__(self) -> None:
        if self.vote not in (None, *TALLIES):
            raise ValueError(f"Method {self.name}: vote={self.vote!r} is not one of None, {', '.join(TALLIES)}.")
        if self.top_k is not None and (self.vote is None or self.top_k < 1):
            raise ValueError(f"Method {self.name}: top_k needs a vote and must be >= 1.")
        if self.vote == "score" and not self.needs_verifier:
            raise ValueError(f"Method {self.name}: a score vote needs the verifier.")


#: k of ``top_k_weighted_vote``: half the paper's default budget (8), so the verifier filters before the vote.
TOP_K = 4

METHODS: dict[str, Method] = {m.name: m for m in (
    Method("cross_orm", "the verifier's top-scored candidate over the whole pool (Best-of-L)", needs_verifier=True),
    Method("multi_orm", "the verifier's top-scored candidate within the target language", needs_verifier=True,
           target_only=True),
    Method("self_consistency", "majority vote of the target language's answers", needs_verifier=False,
           target_only=True, vote="count"),
    Method("cross_self_consistency", "majority vote of the answers over the whole pool", needs_verifier=False,
           vote="count"),
    Method("weighted_vote", "the answer with the largest summed verifier probability over the pool",
           needs_verifier=True, vote="score"),
    Method("top_k_weighted_vote", f"weighted_vote among the pool's {TOP_K} top-scored candidates only",
           needs_verifier=True, vote="score", top_k=TOP_K),
)}


def method(name: str) -> Method:
    """The spec named ``name``; ValueError listing the valid names otherwise."""
    if name not in METHODS:
        raise ValueError(f"Unknown selection method {name!r}. Choose one of: {', '.join(METHODS)}.")
    return METHODS[name]


def eligible(name: str, candidates: Iterable[Scored], target_lang: str) -> list[Scored]:
    """The candidates method ``name`` chooses from: the target language's for target-only methods, else all."""
    items = list(candidates)
    return [c for c in items if c.lang == target_lang] if method(name).target_only else items


def select(name: str, candidates: Iterable[Scored], target_lang: str, pool: Sequence[str]) -> Scored | None:
    """The candidate method ``name`` picks (tie rule: module docstring); None if none is eligible."""
    spec = method(name)
    considered = eligible(name, candidates, target_lang)
    if not considered:
        return None
    if spec.needs_verifier and not any(c.score is not None for c in considered):
        raise ValueError(
            f"Selection {name!r} needs verifier scores, but none of the {len(considered)} candidates has one; "
            "pass a verifier, or use selection=self_consistency or cross_self_consistency."
        )
    ranked = rank_order(considered, target_lang, pool)
    if spec.vote is None:
        return ranked[0]
    voters = ranked[: spec.top_k]
    totals = TALLIES[spec.vote](voters)
    if not totals:
        return ranked[0]
    best_rank: dict[str, int] = {}
    for position, c in enumerate(voters):
        if c.answer is not None:
            best_rank.setdefault(c.answer, position)
    winner = max(totals, key=lambda answer: (totals[answer], -best_rank[answer]))
    return voters[best_rank[winner]]
