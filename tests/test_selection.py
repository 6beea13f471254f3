"""Selection on hand-built pools: every method, ties, missing answers, NaN scores, order independence."""

from __future__ import annotations

import itertools
import random

import pytest

from bestofl_models.selection.methods import (
    METHODS,
    TOP_K,
    Method,
    Scored,
    canonical_order,
    rank_order,
    select,
    vote_counts,
    vote_weights,
)

POOL = ("en", "de", "fr")


def cand(lang, idx, answer, score=None):
    return Scored(key=f"{lang}{idx}", lang=lang, sample_idx=idx, answer=answer, score=score)


def keys(items):
    return [c.key for c in items]


def test_canonical_order_puts_target_first_then_pool_order_then_sample_idx():
    pool = [cand("fr", 0, "1"), cand("en", 1, "1"), cand("de", 0, "1"), cand("en", 0, "1"), cand("fr", 1, "1")]
    assert keys(canonical_order(pool, "fr", POOL)) == ["fr0", "fr1", "en0", "en1", "de0"]
    assert keys(canonical_order(pool, "en", POOL)) == ["en0", "en1", "de0", "fr0", "fr1"]


def test_rank_order_answer_then_score_then_canonical():
    pool = [
        cand("en", 0, None, 0.99),
        cand("de", 0, "3", float("nan")),
        cand("de", 1, "3", 0.5),
        cand("fr", 0, "4", 0.5),
        cand("en", 1, "5", None),
        cand("fr", 1, "6", 0.7),
    ]
    assert keys(rank_order(pool, "fr", POOL)) == ["fr1", "fr0", "de1", "en1", "de0", "en0"]


def test_cross_orm_takes_the_top_score_over_the_pool():
    pool = [cand("en", 0, "1", 0.2), cand("de", 0, "2", 0.9), cand("fr", 0, "3", 0.5)]
    assert select("cross_orm", pool, "en", POOL).key == "de0"


def test_multi_orm_stays_in_the_target_language():
    pool = [cand("en", 0, "1", 0.2), cand("en", 1, "7", 0.3), cand("de", 0, "2", 0.9)]
    assert select("multi_orm", pool, "en", POOL).key == "en1"
    assert select("multi_orm", pool, "fr", POOL) is None


def test_score_ties_go_to_the_target_language_then_pool_order():
    pool = [cand("fr", 0, "3", 0.8), cand("de", 0, "2", 0.8), cand("en", 1, "1", 0.8), cand("en", 0, "9", 0.8)]
    assert select("cross_orm", pool, "fr", POOL).key == "fr0"
    assert select("cross_orm", pool, "de", POOL).key == "de0"
    assert select("cross_orm", pool, "en", POOL).key == "en0"


def test_no_answer_never_beats_an_answer_and_nan_ranks_last():
    pool = [cand("en", 0, None, 0.99), cand("de", 0, "2", float("nan")), cand("fr", 0, "3", None)]
    assert select("cross_orm", pool, "en", POOL).key == "de0"
    pool.append(cand("fr", 1, "4", 0.01))
    assert select("cross_orm", pool, "en", POOL).key == "fr1"


def test_all_without_answers_returns_the_best_ranked():
    pool = [cand("en", 0, None, 0.1), cand("de", 0, None, 0.7)]
    assert select("cross_orm", pool, "en", POOL).key == "de0"
    assert select("cross_self_consistency", pool, "en", POOL).key == "de0"
    assert select("self_consistency", [cand("en", 0, None), cand("en", 1, None)], "en", POOL).key == "en0"


def test_self_consistency_majority_in_the_target_language():
    pool = [cand("en", 0, "5"), cand("en", 1, "7"), cand("en", 2, "7"), cand("de", 0, "5"), cand("de", 1, "5")]
    assert select("self_consistency", pool, "en", POOL).answer == "7"
    assert select("self_consistency", pool, "en", POOL).key == "en1"
    assert select("cross_self_consistency", pool, "en", POOL).answer == "5"
    assert select("cross_self_consistency", pool, "en", POOL).key == "en0"


def test_vote_ties_without_scores_go_to_the_canonically_first_answer():
    pool = [cand("de", 0, "2"), cand("fr", 0, "3"), cand("de", 1, "3"), cand("en", 0, "2")]
    assert select("cross_self_consistency", pool, "fr", POOL).key == "fr0"
    assert select("cross_self_consistency", pool, "en", POOL).key == "en0"
    assert select("cross_self_consistency", pool, "de", POOL).key == "de0"


def test_vote_ties_with_scores_go_to_the_higher_top_score():
    pool = [cand("en", 0, "2", 0.4), cand("en", 1, "3", 0.6), cand("de", 0, "2", 0.5), cand("de", 1, "3", float("nan"))]
    chosen = select("cross_self_consistency", pool, "en", POOL)
    assert (chosen.answer, chosen.key) == ("3", "en1")
    # The returned candidate is the best-scored one carrying the winning answer.
    pool = [cand("en", 0, "2", 0.1), cand("de", 0, "2", 0.9), cand("fr", 0, "3", 0.2)]
    assert select("cross_self_consistency", pool, "en", POOL).key == "de0"


def test_missing_answers_do_not_vote():
    pool = [cand("en", 0, None), cand("en", 1, None), cand("en", 2, None), cand("en", 3, "8")]
    assert select("self_consistency", pool, "en", POOL).key == "en3"
    assert vote_counts(pool) == {"8": 1}


def test_weighted_vote_sums_probabilities():
    pool = [
        cand("en", 0, "1", 0.3), cand("de", 0, "1", 0.3), cand("fr", 0, "1", float("nan")),
        cand("fr", 1, "2", 0.55), cand("en", 1, None, 0.99),
    ]
    assert vote_weights(pool) == {"1": 0.6, "2": 0.55}
    assert select("weighted_vote", pool, "en", POOL).key == "en0"
    assert select("weighted_vote", pool + [cand("de", 1, "2", 0.1)], "en", POOL).key == "fr1"


def test_weighted_vote_sum_is_exact_and_ties_go_to_the_best_candidate():
    # Naive left-to-right addition gives 0.1 + 0.2 + 0.3 = 0.6000000000000001; math.fsum gives 0.6, in any order.
    pool = [cand("en", 0, "1", 0.1), cand("en", 1, "1", 0.2), cand("en", 2, "1", 0.3), cand("de", 0, "2", 0.6)]
    for order in itertools.permutations(pool):
        assert vote_weights(order) == {"1": 0.6, "2": 0.6}
        assert select("weighted_vote", order, "en", POOL).key == "de0"


@pytest.mark.parametrize("method", METHODS)
def test_result_does_not_depend_on_input_order(method):
    rng = random.Random(7)
    for _ in range(30):
        pool = [
            cand(lang, idx, rng.choice(["1", "2", "3", None]), rng.choice([0.1, 0.5, 0.9, None, float("nan")]))
            for lang in POOL
            for idx in range(3)
        ]
        # At least one score per language, so the verifier methods never raise.
        pool = [cand(c.lang, c.sample_idx, c.answer, 0.5) if c.sample_idx == 0 else c for c in pool]
        expected = select(method, pool, "de", POOL)
        for _ in range(5):
            rng.shuffle(pool)
            assert select(method, pool, "de", POOL) == expected


@pytest.mark.parametrize("method", METHODS)
def test_empty_pool_selects_nothing(method):
    assert select(method, [], "en", POOL) is None


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ValueError, match="cross_orm, multi_orm, self_consistency"):
        select("best_of_n", [cand("en", 0, "1", 0.5)], "en", POOL)


@pytest.mark.parametrize("method", [name for name, m in METHODS.items() if m.needs_verifier])
def test_verifier_methods_need_scores(method):
    with pytest.raises(ValueError, match="needs verifier scores"):
        select(method, [cand("en", 0, "1"), cand("en", 1, "2")], "en", POOL)


def test_self_consistency_needs_no_scores():
    assert select("self_consistency", [cand("en", 0, "1")], "en", POOL).key == "en0"


def test_candidates_outside_the_pool_are_an_error_for_cross_methods():
    with pytest.raises(ValueError, match="neither in the target"):
        select("cross_orm", [cand("ru", 0, "1", 0.5)], "en", POOL)
    # Target-only methods ignore other languages.
    assert select("multi_orm", [cand("ru", 0, "1", 0.5), cand("en", 0, "2", 0.1)], "en", POOL).key == "en0"


def test_duplicate_pool_is_rejected():
    with pytest.raises(ValueError, match="more than once"):
        select("cross_orm", [cand("en", 0, "1", 0.5)], "en", ["en", "en"])


def test_majority_vote_matches_brute_force_counting():
    rng = random.Random(3)
    for _ in range(50):
        pool = [cand(lang, i, rng.choice("1234"), None) for lang in POOL for i in range(rng.randint(1, 3))]
        counts = vote_counts(pool)
        top = max(counts.values())
        chosen = select("cross_self_consistency", pool, "fr", POOL)
        assert counts[chosen.answer] == top
        first = next(c for c in canonical_order(pool, "fr", POOL) if counts[c.answer] == top)
        assert chosen == first


def test_top_k_weighted_vote_votes_among_the_best_scored_only():
    # Six low-scored "1"s outweigh the top-scored "2"s over the whole pool, but not among the top TOP_K.
    top = [cand("de", i, "2", 0.9 - 0.01 * i) for i in range(TOP_K - 1)] + [cand("fr", 0, "3", 0.8)]
    low = [cand("en", i, "1", 0.5) for i in range(6)]
    pool = top + low
    assert select("weighted_vote", pool, "en", POOL).answer == "1"
    assert select("top_k_weighted_vote", pool, "en", POOL).key == "de0"
    # With at most TOP_K candidates it is the weighted vote.
    few = [cand("en", 0, "1", 0.3), cand("de", 0, "1", 0.3), cand("fr", 0, "2", 0.55)]
    assert select("top_k_weighted_vote", few, "en", POOL) == select("weighted_vote", few, "en", POOL)


def test_top_k_ties_and_missing_answers_follow_the_tie_rule():
    # Equal sums among the top k: the answer whose best candidate ranks first; answerless candidates rank last.
    pool = [cand("en", 0, None, 0.99), cand("de", 0, "2", 0.4), cand("fr", 0, "3", 0.4), cand("en", 1, "3", 0.1),
            cand("de", 1, "2", 0.1)]
    assert select("top_k_weighted_vote", pool, "fr", POOL).key == "fr0"
    assert select("top_k_weighted_vote", pool, "de", POOL).key == "de0"


def test_a_spec_that_cannot_work_is_refused():
    with pytest.raises(ValueError, match="top_k needs a vote"):
        Method("top_orm", "x", needs_verifier=True, top_k=3)
    with pytest.raises(ValueError, match="score vote needs the verifier"):
        Method("free_weights", "x", needs_verifier=False, vote="score")
