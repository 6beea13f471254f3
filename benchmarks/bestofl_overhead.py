"""bestofl_overhead: the ``bestofl`` harness model end to end over the bare backend + verifier doing the same work.

Numerator: ``lm_eval.simple_evaluate(model="bestofl", tasks=[mgsm_xling_de])`` with a fresh store (model loading,
planning, sampling, the store's fsynced appends, scoring, selection, lm-eval's metric and bookkeeping).
Denominator: the generator backend generating the same prompts plus the verifier scoring the same candidates,
timed directly (model loading included on both sides). See ``_harness_runs`` for the set-up.
"""

from __future__ import annotations

from . import _harness_runs
from .common import Context, Result, median, paired_ratio, spread

NAME = "bestofl_overhead"
TARGET = 1.10
OP = "<="


def run(ctx: Context) -> Result:
    runs = _harness_runs.measure(ctx)
    times, bare = runs["times"], runs["bare_timings"]
    ratio = paired_ratio(times["one_task"], times["bare"])
    return Result(
        NAME, ratio, TARGET, OP,
        f"generator {runs['models']['label']} (max_gen_toks={runs['max_gen_toks']}), verifier tiny LoRA adapter; "
        f"{runs['problems']} problem(s) x {len(_harness_runs.POOL)} languages = {runs['candidates']} candidates: "
        f"bestofl {spread(times['one_task'])} vs bare {spread(times['bare'])} (of which generate "
        f"{median(bare['generate']):.3g} s, score {median(bare['score']):.3g} s); "
        f"{runs['same_text']}/{runs['candidates']} texts identical; CPU-time ratio (process + children) "
        f"{paired_ratio(runs['cpu']['one_task'], runs['cpu']['bare']):.3f}; "
        f"lm-eval TaskManager built once outside the timing ({runs['task_manager_s']:.1f} s)",
        {"bestofl_s": times["one_task"], "bare_s": times["bare"], "generate_s": bare["generate"],
         "score_s": bare["score"], "generator": runs["models"]["label"]},
    )
