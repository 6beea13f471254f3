"""store_cost: the candidate store's time per planned candidate inside a harness run, and opening + exporting
a store of 250 problems x 11 languages x 16 candidates.

The harness run is ``BestOfL.generate_until`` over MGSM requests in every target language (11 targets x P
problems, pool of 8, n=16) with a generator and a verifier that answer at once (canned texts, constant
scores), so the only costs left are planning, the store and selection; the time spent inside the store's
public methods is summed (outermost calls only) and divided by the planned candidates, for a first run (all
generated and scored) and a rerun (all reused); the slower of the two counts. Target: 0.1 ms per candidate.
The export is ``bestofl-report export --store S --out F`` in a fresh process on the synthetic store of
``report_speed``'s size; target 5 s. The ratio is the worse of (ms per candidate / 0.1) and (export s / 5).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from .common import Context, Result, median

NAME = "store_cost"
TARGET = 1.0
OP = "<="
PER_CANDIDATE_MS = 0.1
EXPORT_S = 5.0
STORE_METHODS = ("get_many", "get", "add_candidates", "add_uses", "scores_for", "add_scores", "copy_from",
                 "register_model")


class _InstantGenerator:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def generate(self, prompts, seeds, stops, settings):
        from bestofl_models.generation.backends import Generation

        return [Generation(f"Step one. Step two.\nThe answer is {seed % 7}.", 20, 12, False) for seed in seeds]

    def close(self):
        pass


class _InstantVerifier:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def score_items(self, items, progress=True):
        """A score per ``(question, response, lang)`` item, at no cost (the verifier interface the harness calls)."""
        return [0.25 + (len(response) % 7) / 10 for _question, response, _lang in items]

    def close(self):
        pass


def _timed_store_methods(totals: dict[str, float]):
    """Wrap the store's public methods to add the time of outermost calls to ``totals['store']``."""
    from bestofl_models.store import store as store_module

    depth = [0]
    originals = {name: getattr(store_module.CandidateStore, name) for name in STORE_METHODS}

    def wrap(method):
        def timed(self, *args, **kwargs):
            depth[0] += 1
            start = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    totals["store"] += time.perf_counter() - start
        return timed

    for name, method in originals.items():
        setattr(store_module.CandidateStore, name, wrap(method))
    return lambda: [setattr(store_module.CandidateStore, name, m) for name, m in originals.items()]


def harness_per_candidate_ms(ctx: Context, problems: int) -> tuple[float, float, int]:
    from lm_eval.api.instance import Instance

    from bestofl_models.harness import model as harness
    from bestofl_models import testing
    from bestofl_tasks.data import load_docs
    from bestofl_tasks.languages import MGSM_LANGUAGES

    requests = [Instance("generate_until", doc, ("", {"until": []}), 0, (f"mgsm_xling_{lang}", i, 1))
                for lang in MGSM_LANGUAGES for i, doc in enumerate(load_docs("mgsm", lang)[:problems])]
    args = {"pretrained": str(testing.tiny_generator()), "verifier": str(testing.tiny_verifier()), "n": 16,
            "languages": "en:de:es:fr:ru:zh:ja:th", "store": str(Path(ctx.workdir) / "store-cost")}
    results = []
    for _ in range(2):  # first run: everything generated and scored; rerun: everything reused
        lm = harness.BestOfL(**args)
        lm._backend = _InstantGenerator(lm.tokenizer)
        lm._verifier = _InstantVerifier(lm.tokenizer)
        totals = {"store": 0.0}
        restore = _timed_store_methods(totals)
        try:
            lm.generate_until(requests, disable_tqdm=True)
        finally:
            restore()
        results.append(totals["store"] / (len(requests) * 16) * 1000)
    return results[0], results[1], len(requests) * 16


def export_seconds(ctx: Context, problems: int) -> tuple[list[float], int]:
    from bestofl_models.report.synthetic import build_synthetic_store

    from .report_speed import report_command

    store_dir = Path(ctx.workdir) / "export-store"
    if not store_dir.exists():
        build_synthetic_store(str(store_dir), problems=problems, samples_per_language=16)
    times = []
    for i in range(ctx.pick(1, 3, 3)):
        out = Path(ctx.workdir) / f"export-{i}.jsonl"
        start = time.perf_counter()
        proc = subprocess.run(report_command() + ["export", "--store", str(store_dir), "--out", str(out)],
                              capture_output=True, text=True, env=dict(os.environ))
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(f"bestofl-report export failed ({proc.returncode}): {proc.stderr[-2000:]}")
    with open(out, "rb") as f:
        lines = sum(1 for _ in f)
    return times, lines


def run(ctx: Context) -> Result:
    first_ms, rerun_ms, planned = harness_per_candidate_ms(ctx, ctx.pick(3, 25, 50))
    times, lines = export_seconds(ctx, ctx.pick(10, 250, 250))
    export_s = median(times)
    ratio = max(max(first_ms, rerun_ms) / PER_CANDIDATE_MS, export_s / EXPORT_S)
    return Result(
        NAME, ratio, TARGET, OP,
        f"store time per planned candidate in generate_until ({planned} planned, 11 targets, pool of 8, n=16, "
        f"instant generator/verifier): first run {first_ms:.4f} ms, rerun {rerun_ms:.4f} ms (target "
        f"{PER_CANDIDATE_MS} ms); open + export of {lines} candidates in a fresh process: median {export_s:.2f} s "
        f"of {len(times)} (target {EXPORT_S:.0f} s)",
        {"first_run_ms": first_ms, "rerun_ms": rerun_ms, "export_s": times, "exported": lines},
    )
