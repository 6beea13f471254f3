"""batched_scoring: on a CPU, verifier scoring in length-sorted batches keeps the throughput of one candidate at a time.

Both sides go through the harness's own path (``verifier.score_responses``: the verifier's text, its tokenizer,
``HFVerifier.score``) on the same MGSM-like candidates (:func:`benchmarks.common.mgsm_candidates`; one harness
scoring chunk, 256, at ``--quick``); "batched" uses ``verifier_batch_size`` = 16 (the default), "one at a time" a
batch size of 1. Interleaved rounds; the ratio is the median over rounds of one-at-a-time CPU time / batched CPU
time, measured back to back (CPU time of this process: less sensitive than wall time to the other jobs on a shared
machine). Target >= 0.95: on one CPU thread a forward pass over a whole candidate is already compute-bound, so
batching can only lose what padding and the attention mask add; the >= 5x speed-up batching buys on a GPU is
``benchmarks/gpu_check.py``'s target.

The verifier is the tiny LoRA adapter fixture by default (the verifier the harness benchmark uses);
``BESTOFL_BENCH_VERIFIER=DIR`` picks another one.
"""

from __future__ import annotations

import os

from .common import Context, Result, interleaved, mgsm_candidates, paired_ratio, spread

NAME = "batched_scoring"
TARGET = 0.95
OP = ">="
BATCH = 16


def verifier_dir() -> str:
    from bestofl_models import testing

    return os.environ.get("BESTOFL_BENCH_VERIFIER") or str(testing.tiny_verifier_adapter())


def run(ctx: Context) -> Result:
    from bestofl_models.harness import score as score_stage
    from bestofl_models import testing
    from bestofl_models.harness.model_args import parse_model_args
    from bestofl_models.verifiers.classifier import load_verifier, score_responses

    verifier_path = verifier_dir()
    config = parse_model_args(
        {"pretrained": str(testing.tiny_generator()), "verifier": verifier_path, "store": "none",
         "verifier_batch_size": BATCH},
    )
    verifier = load_verifier(config.verifier_config())
    candidates = mgsm_candidates(ctx.pick(32, score_stage.SCORE_CHUNK, score_stage.SCORE_CHUNK), verifier.tokenizer)
    results = {}

    def scored(batch_size: int):
        def go():
            verifier.batch_size = batch_size
            results[batch_size] = score_responses(verifier, candidates, progress=False)
        return go

    cpu: dict[str, list[float]] = {}
    times = interleaved({"batched": scored(BATCH), "one": scored(1)}, ctx.pick(1, 5, 9), warmup=True, cpu=cpu)
    verifier.close()
    # Both sides must score the same: batching may change float rounding, never the result.
    drift = max(abs(a - b) for a, b in zip(results[BATCH], results[1]))
    if drift > 1e-3:
        raise AssertionError(f"batched and one-at-a-time scores differ by up to {drift:.2g}")
    ratio = paired_ratio(cpu["one"], cpu["batched"])
    return Result(
        NAME, ratio, TARGET, OP,
        f"{len(candidates)} candidates, verifier {os.path.basename(verifier_path.rstrip('/'))} on CPU: "
        f"batch {BATCH} {spread(times['batched'])}, one at a time {spread(times['one'])} (wall); wall-time ratio "
        f"{paired_ratio(times['one'], times['batched']):.3f}; max score difference {drift:.1g}",
        {"batched_s": times["batched"], "one_s": times["one"], "batched_cpu_s": cpu["batched"],
         "one_cpu_s": cpu["one"], "candidates": len(candidates)},
    )
