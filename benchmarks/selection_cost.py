"""selection_cost: ``selection.select`` per candidate, against the time it takes to generate that candidate.

Pools of 16 candidates (8 languages x 2 samples, answers and scores drawn at random with ties and missing
answers); every method is timed and the slowest one gives the ratio. Reference as in ``extraction_cost``.
"""

from __future__ import annotations

import random
import time

from bestofl_models.selection.methods import METHODS, Scored, select

from .common import Context, Result, median
from .extraction_cost import generation_reference

NAME = "selection_cost"
TARGET = 0.01
OP = "<="
POOL = ("en", "de", "es", "fr", "ru", "zh", "ja", "th")
PER_LANGUAGE = 2


def pools(count: int, seed: int = 0) -> list[list[Scored]]:
    rng = random.Random(seed)
    out = []
    for p in range(count):
        items = []
        for lang in POOL:
            for sample_idx in range(PER_LANGUAGE):
                answer = None if rng.random() < 0.1 else str(rng.randint(1, 6))
                score = float("nan") if rng.random() < 0.02 else round(rng.random(), 2)
                items.append(Scored(f"p{p}-{lang}-{sample_idx}", lang, sample_idx, answer, score))
        rng.shuffle(items)
        out.append(items)
    return out


def run(ctx: Context) -> Result:
    problems = pools(ctx.pick(50, 500, 2500))
    candidates = sum(len(p) for p in problems)
    repeats = ctx.pick(2, 5, 9)
    per_method = {}
    for method in METHODS:
        rounds = []
        for _ in range(repeats):
            start = time.perf_counter()
            for items in problems:
                select(method, items, "de", POOL)
            rounds.append((time.perf_counter() - start) / candidates)
        per_method[method] = median(rounds)
    slowest = max(per_method, key=per_method.get)
    reference, where = generation_reference(ctx)
    listing = ", ".join(f"{m} {t * 1e6:.1f}" for m, t in per_method.items())
    return Result(
        NAME, per_method[slowest] / reference, TARGET, OP,
        f"select() us/candidate (pools of {len(POOL) * PER_LANGUAGE}, median of {repeats}): {listing}; "
        f"slowest {slowest} {where}",
        {"us_per_candidate": {m: t * 1e6 for m, t in per_method.items()}},
    )
