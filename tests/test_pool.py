"""plan_samples: the documented round-robin rule, uneven splits, n < L, and validation."""

from __future__ import annotations

import pytest

from bestofl_models.selection.pool import plan_samples, samples_per_language


def test_round_robin_over_the_pool():
    assert plan_samples(6, ["en", "de", "fr"]) == [
        ("en", 0), ("de", 0), ("fr", 0), ("en", 1), ("de", 1), ("fr", 1),
    ]


def test_early_languages_get_the_extra_samples():
    plan = plan_samples(8, ["en", "de", "fr"])
    assert plan[-2:] == [("en", 2), ("de", 2)]
    assert samples_per_language(8, ["en", "de", "fr"]) == {"en": 3, "de": 3, "fr": 2}


def test_fewer_samples_than_languages_uses_the_first_n():
    assert plan_samples(2, ["en", "de", "fr"]) == [("en", 0), ("de", 0)]
    assert samples_per_language(2, ["en", "de", "fr"]) == {"en": 1, "de": 1, "fr": 0}


def test_single_language_pool():
    assert plan_samples(3, ("de",)) == [("de", 0), ("de", 1), ("de", 2)]


@pytest.mark.parametrize("n", [0, -1, 2.0, True, "4"])
def test_bad_n_is_rejected(n):
    with pytest.raises(ValueError, match="n >= 1"):
        plan_samples(n, ["en"])


def test_empty_pool_is_rejected():
    with pytest.raises(ValueError, match="empty"):
        plan_samples(1, [])


def test_duplicate_languages_are_rejected():
    with pytest.raises(ValueError, match="de more than once"):
        plan_samples(4, ["en", "de", "de"])


def test_counts_match_the_plan():
    pool = ["en", "de", "fr", "ru"]
    for n in range(1, 13):
        plan = plan_samples(n, pool)
        counts = samples_per_language(n, pool)
        assert counts == {lang: sum(1 for l, _ in plan if l == lang) for lang in pool}
        assert all(idx < counts[lang] for lang, idx in plan)


def test_report_budget_counts_are_the_plan_counts():
    """The report's budget curves split a budget exactly as plan_samples does (one rule, in pool.py)."""
    from bestofl_models.report.estimators import budget_counts

    for size in range(1, 6):
        pool = [f"l{i}" for i in range(size)]
        table = budget_counts(size, 13)
        assert table.shape == (13, size)
        for n in range(1, 14):
            plan = plan_samples(n, pool)
            assert list(table[n - 1]) == [sum(1 for l, _ in plan if l == lang) for lang in pool]
    table[0, 0] = 99  # a fresh, writable array each call
    assert budget_counts(5, 13)[0, 0] == 1
    assert budget_counts(3, 0).shape == (0, 3)
