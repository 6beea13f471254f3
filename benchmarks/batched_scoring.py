"""batched_scoring: verifier scoring in length-sorted batches vs one candidate at a time.

Both sides go through the harness's own path (``verifier.score_responses``: the verifier's text, its tokenizer,
``HFVerifier.score``) on the same synthetic candidates (MGSM problems in 4 languages); "batched" uses
``verifier_batch_size`` = 16 (the default), "one at a time" a batch size of 1. Interleaved, median.

The verifier is the tiny LoRA adapter fixture by default (the verifier the harness benchmark uses);
``BESTOFL_BENCH_VERIFIER=DIR`` picks another one.
"""

from __future__ import annotations

import os
import random

from .common import Context, Result, interleaved, median, mgsm_problems, spread, synthetic_text

NAME = "batched_scoring"
TARGET = 5.0
OP = ">="
BATCH = 16
LANGS = ("en", "de", "fr", "zh")


def items(problems: int, seed: int = 0) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    out = []
    for problem in mgsm_problems(problems):
        for lang in LANGS:
            text, _ = synthetic_text(problem["parallel"][lang], problem["gold"], lang, rng)
            out.append((problem["parallel"][lang], text, lang))
    return out


def verifier_dir() -> str:
    from bestofl_models import testing

    return os.environ.get("BESTOFL_BENCH_VERIFIER") or str(testing.tiny_verifier_adapter())


def run(ctx: Context) -> Result:
    from bestofl_models import testing
    from bestofl_models.config import parse_model_args
    from bestofl_models.verifier import load_verifier, score_responses

    verifier_path = verifier_dir()
    config = parse_model_args(
        {"pretrained": str(testing.tiny_generator()), "verifier": verifier_path, "store": "none",
         "verifier_batch_size": BATCH},
    )
    verifier = load_verifier(config)
    candidates = items(ctx.pick(4, 16, 64))
    results = {}

    def scored(batch_size: int):
        def go():
            verifier.batch_size = batch_size
            results[batch_size] = score_responses(verifier, candidates, progress=False)
        return go

    times = interleaved({"batched": scored(BATCH), "one": scored(1)}, ctx.pick(1, 3, 5), warmup=True)
    verifier.close()
    # Both sides must score the same: batching may change float rounding, never the result.
    drift = max(abs(a - b) for a, b in zip(results[BATCH], results[1]))
    if drift > 1e-3:
        raise AssertionError(f"batched and one-at-a-time scores differ by up to {drift:.2g}")
    ratio = median(times["one"]) / median(times["batched"])
    return Result(
        NAME, ratio, TARGET, OP,
        f"{len(candidates)} candidates, verifier {os.path.basename(verifier_path.rstrip('/'))} on CPU: "
        f"batch {BATCH} {spread(times['batched'])}, one at a time {spread(times['one'])}; "
        f"max score difference {drift:.1g}; on one CPU thread a forward pass over a whole candidate is already "
        f"compute-bound, so batching saves only per-call overhead",
        {"batched_s": times["batched"], "one_s": times["one"], "candidates": len(candidates)},
    )
