"""extraction_cost: ``extract_answer`` per candidate, against the time it takes to generate that candidate.

Candidates: synthetic chain-of-thought texts for MGSM problems in all 11 languages (``common.synthetic_text``).
The reference is the per-candidate generation time measured by the harness benchmark in the same run (the bare
backend's wall time over the candidates it generated); without it (``--only``), 200 tokens at 1,000 tokens/s.
"""

from __future__ import annotations

import random
import time

from bestofl_tasks.answers import extract_answer
from bestofl_tasks.languages import MGSM_LANGUAGES

from .common import REFERENCE_TOKENS_PER_CANDIDATE, REFERENCE_TOKENS_PER_SECOND, Context, Result, median, mgsm_problems, synthetic_text

NAME = "extraction_cost"
TARGET = 0.01
OP = "<="


def generation_reference(ctx: Context) -> tuple[float, str]:
    """Seconds to generate one candidate, and where that number comes from."""
    measured = ctx.shared.get("generation_seconds_per_candidate")
    if measured:
        return measured, f"vs {measured * 1e3:.0f} ms/candidate generation measured in bestofl_overhead ({ctx.shared.get('generator_label', 'generator')})"
    seconds = REFERENCE_TOKENS_PER_CANDIDATE / REFERENCE_TOKENS_PER_SECOND
    return seconds, f"vs {seconds * 1e3:.0f} ms/candidate ({REFERENCE_TOKENS_PER_CANDIDATE} tokens at {REFERENCE_TOKENS_PER_SECOND:.0f} tokens/s; no generation measured in this run)"


def candidates(problems: int, per_language: int, seed: int = 0) -> list[tuple[str, str]]:
    """``(text, lang)`` for ``problems`` MGSM problems x 11 languages x ``per_language`` samples."""
    rng = random.Random(seed)
    out = []
    for problem in mgsm_problems(problems):
        for lang in MGSM_LANGUAGES:
            for _ in range(per_language):
                text, _answer = synthetic_text(problem["parallel"][lang], problem["gold"], lang, rng)
                out.append((text, lang))
    return out


def run(ctx: Context) -> Result:
    texts = candidates(ctx.pick(5, 50, 250), 2)
    repeats = ctx.pick(2, 5, 9)
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for text, lang in texts:
            extract_answer(text, lang)
        rounds.append((time.perf_counter() - start) / len(texts))
    per_candidate = median(rounds)
    reference, where = generation_reference(ctx)
    return Result(
        NAME, per_candidate / reference, TARGET, OP,
        f"extract_answer: {per_candidate * 1e6:.1f} us/candidate (median of {repeats} passes over {len(texts)} "
        f"synthetic candidates, 11 languages) {where}",
        {"us_per_candidate": per_candidate * 1e6},
    )
