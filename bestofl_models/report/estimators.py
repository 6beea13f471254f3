"""Budget-curve estimators over stored candidates, vectorized over problems with numpy.

Subsets are drawn the way :func:`bestofl_models.selection.pool.plan_samples` spreads a budget: for a total
budget ``n`` over a pool of ``L`` languages, language ``l`` (pool position) contributes
``m_l(n) = n // L + (l < n % L)`` candidates, a uniformly random subset of its stored ones,
independently per language. Every estimate is the average over all such stratified subsets:

* random choice: ``sum_l m_l/n * k_l/c_l`` (``k_l`` of the ``c_l`` stored candidates correct), exact;
* oracle (pass@n): ``1 - prod_l C(c_l-k_l, m_l) / C(c_l, m_l)``, exact (for one language this is the
  unbiased pass@k estimator ``1 - C(c-k, n) / C(c, n)``);
* best-of-n by rank (``cross_orm``, ``multi_orm``): candidates sorted by the selection rank (a strict
  total order, so ties are resolved exactly as ``select`` does); the candidate with ``b_l``
  better-ranked candidates in each language ``l`` is chosen with probability
  ``C(c_j-b_j-1, m_j-1)/C(c_j, m_j) * prod_{l != j} C(c_l-b_l, m_l)/C(c_l, m_l)`` (order statistics), exact;
* votes: seeded Monte Carlo. Each draw is one random order of every language's candidates; budget
  ``n`` takes the first ``m_l(n)`` of each, so one draw gives nested subsets for all budgets (common
  random numbers across budgets, methods, pools and targets). Reported with its standard error.

Arrays: ``P`` problems, ``X`` candidate slots per problem (padding: language -1), ``L`` pool languages.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from ..selection.pool import samples_per_language

#: A rank larger than any real one (candidates that cannot win a tie).
UNRANKED = np.iinfo(np.int32).max


def budget_counts(pool_size: int, max_budget: int) -> np.ndarray:
    """``(max_budget, pool_size)`` samples per pool language for budgets ``1..max_budget``: the split of
    :func:`bestofl_models.selection.pool.samples_per_language` (the plan_samples rule), as a new array."""
    return _budget_counts(pool_size, max_budget).copy()


@functools.lru_cache(maxsize=64)
def _budget_counts(pool_size: int, max_budget: int) -> np.ndarray:
    positions = range(pool_size)
    counts = [list(samples_per_language(n, positions).values()) for n in range(1, max_budget + 1)]
    table = np.array(counts, dtype=np.int64).reshape(max_budget, pool_size)
    table.flags.writeable = False
    return table


def feasible_budget(counts: np.ndarray) -> int:
    """Largest ``n`` such that every problem has ``m_l(n)`` stored candidates in each language.

    ``counts``: ``(P, L)`` stored candidates per problem and pool language."""
    if counts.size == 0:
        return 0
    fewest = counts.min(axis=0)
    # Language l's (f_l + 1)-th sample is sample number f_l * L + l: budgets up to there are feasible.
    return int((fewest * len(fewest) + np.arange(len(fewest))).min())


def log_comb_table(top: int) -> np.ndarray:
    """``T[a, b + 1] = log C(a, b)`` for ``0 <= a <= top``, ``-1 <= b <= top + 1``; ``-inf`` where it is 0."""
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, top + 1, dtype=np.float64)))])
    a = np.arange(top + 1)[:, None]
    b = np.arange(-1, top + 2)[None, :]
    valid = (b >= 0) & (b <= a)
    a_, b_ = np.broadcast_to(a, valid.shape), np.where(valid, b, 0)
    return np.where(valid, log_factorial[a_] - log_factorial[b_] - log_factorial[np.where(valid, a_ - b_, 0)], -np.inf)


def log_comb(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise ``log C(a, b)`` for ``a >= 0``; ``-inf`` where the binomial is 0."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
    table = log_comb_table(int(a.max(initial=0)))
    return table[a, np.clip(b, -1, table.shape[1] - 2) + 1]


def _ratio(log_numerator: np.ndarray, log_denominator: np.ndarray) -> np.ndarray:
    """``exp(num - den)``, 0 where the denominator is 0 (an infeasible budget)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(log_denominator), np.exp(log_numerator - log_denominator), 0.0)


def exact_random(stored: np.ndarray, correct: np.ndarray, max_budget: int) -> np.ndarray:
    """``(N, P)`` accuracy of a uniformly random pick among the ``n`` sampled candidates."""
    m = budget_counts(stored.shape[1], max_budget)  # (N, L)
    n = np.arange(1, max_budget + 1)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(stored > 0, correct / stored, 0.0)  # (P, L)
    return (m / n) @ fraction.T


def exact_oracle(stored: np.ndarray, correct: np.ndarray, max_budget: int) -> np.ndarray:
    """``(N, P)`` probability that at least one sampled candidate is correct (pass@n)."""
    m = budget_counts(stored.shape[1], max_budget)[:, None, :]  # (N, 1, L)
    all_wrong = _ratio(log_comb(stored - correct, m), log_comb(stored, m))  # (N, P, L)
    return 1.0 - all_wrong.prod(axis=2)


def exact_best_of_n(
    lang_by_rank: np.ndarray, correct_by_rank: np.ndarray, stored: np.ndarray, max_budget: int
) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and selected-language shares of "take the best-ranked sampled candidate".

    ``lang_by_rank``/``correct_by_rank``: ``(P, X)`` pool-language index (-1: padding) and correctness
    of each problem's candidates sorted best first. Returns ``(N, P)`` accuracy and ``(N, P, L)`` the
    probability that the chosen candidate is in each language.
    """
    problems, _ = lang_by_rank.shape
    pool_size = stored.shape[1]
    # Layout (L, P, X): reductions over languages run over contiguous blocks.
    own = (lang_by_rank[None] == np.arange(pool_size)[:, None, None]).astype(np.int64)
    better = np.cumsum(own, axis=2) - own  # better-ranked candidates per language
    remaining = stored.T[:, :, None] - better - own  # >= 0
    weight = (correct_by_rank & (lang_by_rank >= 0)).astype(np.float64)
    table = log_comb_table(int(stored.max(initial=0)))
    width = table.shape[1]
    flat_table = table.ravel()
    # log C(remaining, q - own) is flat_table[cell + q]; log C(stored, q) is flat_table[total + q].
    cell = remaining * width - own + 1
    total = stored.T[:, :, None] * width + 1

    def chosen_in_language(q: int) -> np.ndarray:
        """Per language: P(x sampled, if its own, and no better one sampled there) with ``q`` samples there."""
        if q > width - 2:
            return np.zeros(own.shape)
        denominator = flat_table[total + q]
        return np.exp(flat_table[cell + q] - np.where(np.isfinite(denominator), denominator, np.inf))

    accuracy = np.zeros((max_budget, problems))
    share = np.zeros((max_budget, problems, pool_size))
    own_by_problem = own.transpose(1, 2, 0).astype(np.float64)  # (P, X, L)
    low = chosen_in_language(0)
    for q in range(max_budget // pool_size + 1):
        high = chosen_in_language(q + 1)
        # Budget q*L + r: the first r languages get q+1 samples, the others q.
        chosen = np.empty_like(low)  # (r, P, X): prefix product of ``high`` times suffix product of ``low``
        chosen[-1] = low[-1]
        for r in range(pool_size - 2, -1, -1):
            chosen[r] = chosen[r + 1] * low[r]
        prefix = np.ones(low.shape[1:])
        for r in range(1, pool_size):
            prefix *= high[r - 1]
            chosen[r] *= prefix
        budgets = q * pool_size + np.arange(pool_size)
        usable = (budgets >= 1) & (budgets <= max_budget)
        rows = budgets[usable] - 1
        accuracy[rows] = (chosen[usable] * weight).sum(axis=2)
        share[rows] = np.matmul(chosen[usable].transpose(1, 0, 2), own_by_problem).transpose(1, 0, 2)
        low = high
    return accuracy, share


def draw_orders(stored: np.ndarray, offsets: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``(L, K, P, M)`` candidate slots: for each language, ``M`` random orders of each problem's candidates.

    ``stored``/``offsets``: ``(P, L)`` candidates per language and the slot of each language's first one.
    Entries past ``stored[p, l]`` are meaningless (never read for feasible budgets)."""
    problems, languages = stored.shape
    depth = max(int(stored.max(initial=0)), 1)
    kind = np.int16 if offsets.max(initial=0) + depth < np.iinfo(np.int16).max else np.int32
    orders = np.empty((languages, depth, problems, draws), dtype=kind)
    slot = np.arange(depth)[:, None, None]
    for lang in range(languages):
        keys = rng.random((depth, problems, draws), dtype=np.float32)
        keys = np.where(slot >= stored[None, :, lang, None], np.float32(np.inf), keys)
        orders[lang] = np.argsort(keys, axis=0) + offsets[None, :, lang, None]
    return orders


def draw_steps(pool: Sequence[int], max_budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Language row and depth in ``orders`` of steps ``0..N-1``: step ``i`` takes the next candidate of
    language ``pool[i % L]`` (the plan_samples rule), so the slot drawn at step ``i`` in draw ``m`` of
    problem ``p`` is ``orders[language[i], depth[i], p, m]``."""
    steps = np.arange(max_budget)
    return np.asarray(pool)[steps % len(pool)], steps // len(pool)


def monte_carlo_vote(
    orders: np.ndarray,
    pool: Sequence[int],
    max_budget: int,
    answer: np.ndarray,
    answer_correct: np.ndarray,
    ranks: np.ndarray,
    group_weight: np.ndarray,
    weight: np.ndarray | None = None,
    progress: Callable[[int], object] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Majority vote (``weight`` None) or weighted vote over the first ``n`` slots of each draw, n = 1..N.

    ``orders``: ``(L, K, P, M)`` from :func:`draw_orders`, drawn along ``pool`` by :func:`draw_steps`;
    ``answer``: ``(P, X)`` answer id per slot (-1: none);
    ``answer_correct``: ``(P, A)``; ``ranks``: ``(G, P, X)`` tie-break rankings (one per group of
    target languages, lower is better); ``weight``: ``(P, X)`` vote weights (>= 0). As in
    ``selection.select``, a tie between answers goes to the answer whose best-ranked candidate ranks
    first: the running tallies are shared by all groups, and only draws whose top is tied are
    resolved per group, from the slots drawn so far.

    Returns ``rate`` ``(G, N, P)``, the fraction of draws whose pick is correct, and ``mix_variance``
    ``(N, P)``, the variance over draws of ``sum_g group_weight[g] * correct_g`` (for the standard
    error of a weighted mean over target languages, which share the draws).
    """
    problems, draws = orders.shape[2:]
    step_language, step_depth = draw_steps(pool, max_budget)
    groups, _, width = ranks.shape
    answers = answer_correct.shape[1]
    cell = (np.arange(problems * draws) * answers).reshape(problems, draws)
    slot_base = (np.arange(problems) * width)[:, None]
    flat_answer, flat_ranks = answer.ravel(), ranks.reshape(groups, -1)
    flat_weight = None if weight is None else weight.ravel()
    correct_or_none = np.concatenate([answer_correct, np.zeros((problems, 1), dtype=bool)], axis=1).ravel()
    correct_base = (np.arange(problems) * (answers + 1))[:, None]
    tally = np.zeros(problems * draws * answers)
    seen = np.zeros(problems * draws * answers, dtype=bool)
    top_value = np.full((problems, draws), -np.inf)
    tied = np.zeros((problems, draws), dtype=np.int64)  # answers at the top value
    top = np.full((problems, draws), answers)  # the top answer when it is alone (answers: none yet)
    rate = np.zeros((groups, max_budget, problems))
    mix_variance = np.zeros((max_budget, problems))
    for step in range(max_budget):
        slot = slot_base + orders[step_language[step], step_depth[step]]
        drawn = flat_answer[slot]
        votes = drawn >= 0
        here = cell + np.where(votes, drawn, 0)
        before, first = tally[here], ~seen[here]
        after = before + (votes if flat_weight is None else np.where(votes, flat_weight[slot], 0.0))
        tally[here] = after
        seen[here] |= votes
        rise = votes & (after > top_value)
        join = votes & ~rise & (after == top_value) & (first | (before < top_value))
        top_value = np.where(rise, after, top_value)
        tied = np.where(rise, 1, tied + join)
        top = np.where(rise, drawn, top)
        right = correct_or_none[correct_base + top].astype(np.float64)  # (P, M): right for every group
        rate[:, step] = right.mean(axis=1)
        mixed = right
        ties = np.flatnonzero(tied >= 2)
        if ties.size:
            p, m = np.divmod(ties, draws)
            drawn_so_far = orders[step_language[: step + 1, None], step_depth[: step + 1, None], p, m]  # (n, E)
            history = slot_base[p, 0] + drawn_so_far
            history_answer = flat_answer[history]
            contender = (history_answer >= 0) & (
                tally[cell[p, m] + np.maximum(history_answer, 0)] == top_value[p, m]
            )
            history_rank = np.where(contender, flat_ranks[:, history], UNRANKED)  # (G, n, E)
            pick = np.take_along_axis(history_answer[None], history_rank.argmin(axis=1)[:, None, :], axis=1)[:, 0]
            tie_right = correct_or_none[p * (answers + 1) + pick].astype(np.float64)  # (G, E)
            for group in range(groups):
                rate[group, step] += np.bincount(p, tie_right[group] - right[p, m], minlength=problems) / draws
            mixed = right.copy()
            mixed[p, m] = group_weight @ tie_right
        mix_variance[step] = mixed.var(axis=1, ddof=1) if draws > 1 else 0.0
        if progress is not None:
            progress(1)
    return rate, mix_variance


def monte_carlo_top_k_vote(
    orders: np.ndarray,
    pool: Sequence[int],
    max_budget: int,
    answer: np.ndarray,
    answer_correct: np.ndarray,
    ranks: np.ndarray,
    group_weight: np.ndarray,
    weight: np.ndarray,
    top_k: int,
    progress: Callable[[int], object] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted vote among the ``top_k`` best-ranked of the first ``n`` slots of each draw, n = 1..N.

    Arguments and returns as :func:`monte_carlo_vote`. Each group keeps its own running top ``k`` (ranks differ
    by group): a drawn slot is merged into it, then the ``k`` vote; as in ``selection.select``, the winner is the
    answer with the largest summed weight, a tie going to the answer whose best-ranked candidate ranks first, and
    with no answer among them the best-ranked candidate (no answer: wrong) is the pick.
    """
    problems, draws = orders.shape[2:]
    step_language, step_depth = draw_steps(pool, max_budget)
    groups, _, width = ranks.shape
    answers = answer_correct.shape[1]
    slot_base = (np.arange(problems) * width)[:, None]
    flat_answer, flat_weight, flat_ranks = answer.ravel(), weight.ravel(), ranks.reshape(groups, -1)
    correct_or_none = np.concatenate([answer_correct, np.zeros((problems, 1), dtype=bool)], axis=1)
    best_rank = np.full((groups, problems, draws, top_k), UNRANKED, dtype=np.int64)
    best_slot = np.zeros((groups, problems, draws, top_k), dtype=np.int64)
    rate = np.zeros((groups, max_budget, problems))
    mix_variance = np.zeros((max_budget, problems))
    problem_row = np.arange(problems)[None, :, None]
    for step in range(max_budget):
        slot = slot_base + orders[step_language[step], step_depth[step]]  # (P, M)
        merged_rank = np.concatenate([best_rank, flat_ranks[:, slot][..., None]], axis=3)
        merged_slot = np.concatenate([best_slot, np.broadcast_to(slot[None, :, :, None], (groups, *slot.shape, 1))],
                                     axis=3)
        keep = np.argsort(merged_rank, axis=3, kind="stable")[..., :top_k]
        best_rank = np.take_along_axis(merged_rank, keep, axis=3)
        best_slot = np.take_along_axis(merged_slot, keep, axis=3)
        voter = np.where(best_rank < UNRANKED, flat_answer[best_slot], -1)  # (G, P, M, k): answer id, -1 none
        votes = np.where(voter >= 0, flat_weight[best_slot], 0.0)
        same = (voter[..., :, None] == voter[..., None, :]) & (voter[..., None, :] >= 0)
        total = np.where(voter >= 0, (same * votes[..., None, :]).sum(axis=4), -np.inf)
        pick = np.take_along_axis(voter, total.argmax(axis=3)[..., None], axis=3)[..., 0]  # first max: best-ranked
        right = correct_or_none[problem_row, np.where(pick >= 0, pick, answers)].astype(np.float64)  # (G, P, M)
        rate[:, step] = right.mean(axis=2)
        mixed = np.tensordot(group_weight, right, axes=1)
        mix_variance[step] = mixed.var(axis=1, ddof=1) if draws > 1 else 0.0
        if progress is not None:
            progress(1)
    return rate, mix_variance
