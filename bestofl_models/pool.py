"""How a budget of ``n`` samples per problem is spread over a language pool.

The rule (used by the harness models and by the report's budget curves): sample ``i`` (0-based,
``i < n``) goes to language ``pool[i % L]`` as that language's sample ``i // L``. So every language
gets ``n // L`` samples, the first ``n % L`` languages of the pool get one more, and with ``n < L``
only the first ``n`` languages are sampled.
"""

from __future__ import annotations

from collections.abc import Sequence


def validate_pool(pool: Sequence[str]) -> tuple[str, ...]:
    """The pool as a tuple; ValueError if it is empty or names a language twice."""
    languages = tuple(pool)
    if not languages:
        raise ValueError("The language pool is empty; pass at least one language (e.g. languages=en:de:fr).")
    repeated = sorted({lang for lang in languages if languages.count(lang) > 1})
    if repeated:
        raise ValueError(
            f"The language pool {':'.join(languages)} names {', '.join(repeated)} more than once; "
            "list each language once."
        )
    return languages


def _validate_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} is not a valid number of samples; pass an integer n >= 1.")


def plan_samples(n: int, pool: Sequence[str]) -> list[tuple[str, int]]:
    """``(language, per-language sample index)`` for samples ``0..n-1``, round-robin over ``pool``."""
    _validate_n(n)
    languages = validate_pool(pool)
    size = len(languages)
    return [(languages[i % size], i // size) for i in range(n)]


def samples_per_language(n: int, pool: Sequence[str]) -> dict[str, int]:
    """How many of ``n`` samples each pool language gets (0 for languages past the first ``n``): the counts
    of :func:`plan_samples`, in closed form. The report's budget curves use it too (``budget_counts``)."""
    _validate_n(n)
    languages = validate_pool(pool)
    whole, extra = divmod(n, len(languages))
    return {lang: whole + (1 if position < extra else 0) for position, lang in enumerate(languages)}
