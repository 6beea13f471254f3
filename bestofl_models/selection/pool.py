"""How a budget of ``n`` samples per problem is spread over a language pool.

The rule (used by the harness models and by the report's budget curves): sample ``i`` (0-based,
``i < n``) goes to language ``pool[i % L]`` as that language's sample ``i // L``. So every language
gets ``n // L`` samples, the first ``n % L`` languages of the pool get one more, and with ``n < L``
only the first ``n`` languages are sampled.

It also reads the pool file ``bestofl-report recommend-pool`` writes (``languages=auto:FILE``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass


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


#: What ``bestofl-report recommend-pool`` writes and ``languages=auto:FILE`` reads.
RECOMMENDED_POOL_FILE = "recommended_pool.json"
RECOMMENDED_POOL_FORMAT = "bestofl-recommended-pool"
RECOMMENDED_POOL_VERSION = 1


@dataclass(frozen=True)
class RecommendedPool:
    """A ``bestofl-report recommend-pool`` file as ``languages=auto:FILE`` uses it."""

    file: str  # absolute path of the JSON file
    pool: tuple[str, ...]
    generator_id: str | None  # the store's generator and verifier the pool was chosen for
    verifier_id: str | None


def read_recommended_pool(path: str | os.PathLike) -> tuple[str, ...]:
    """The pool in a ``bestofl-report recommend-pool`` file (``path``: the file, or the folder holding
    ``recommended_pool.json``), validated; ValueError saying what to pass instead."""
    return load_recommended_pool(path).pool


def load_recommended_pool(path: str | os.PathLike) -> RecommendedPool:
    """:func:`read_recommended_pool`, with the file's path and the generator and verifier ids it names."""
    where = f"languages=auto:{os.fspath(path)}"
    remedy = ("write one with `bestofl-report recommend-pool --store DIR --size K --out FOLDER` and pass "
              f"languages=auto:FOLDER/{RECOMMENDED_POOL_FILE}")
    path = os.path.expanduser(os.fspath(path))
    file = os.path.join(path, RECOMMENDED_POOL_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise ValueError(f"{where}: no file {file}; {remedy}.")
    try:
        with open(file, encoding="utf-8") as f:
            content = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{where}: cannot read {file} as JSON ({exc}); {remedy}.") from None
    if not isinstance(content, dict) or content.get("format") != RECOMMENDED_POOL_FORMAT:
        raise ValueError(f"{where}: {file} is not a recommend-pool file (no \"format\": "
                         f"\"{RECOMMENDED_POOL_FORMAT}\"); {remedy}.")
    version = content.get("version")
    if not isinstance(version, int) or version > RECOMMENDED_POOL_VERSION:
        raise ValueError(f"{where}: {file} has version {version!r}, and this bestofl reads version "
                         f"{RECOMMENDED_POOL_VERSION}; upgrade bestofl or rerun bestofl-report recommend-pool.")
    pool = content.get("pool")
    if not isinstance(pool, list) or not all(isinstance(code, str) and code.strip() for code in pool):
        raise ValueError(f"{where}: \"pool\" in {file} must be a list of language codes, got {pool!r}; {remedy}.")
    try:
        languages = validate_pool([code.strip() for code in pool])
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    ids = {name: content.get(name) if isinstance(content.get(name), str) else None
           for name in ("generator_id", "verifier_id")}
    return RecommendedPool(os.path.abspath(file), languages, **ids)
