"""all_tasks_vs_one: the 11 ``mgsm_xling_*`` tasks in one run vs one task, same fixed pool, fresh store each.

The candidates are keyed by (generator, prompt, settings, sample index), not by target language, so the group run
generates and scores exactly what the one-task run does; the 10 extra tasks add lm-eval's task building and
bestofl's selection only. Measured in the same interleaved rounds as ``bestofl_overhead`` (``_harness_runs``).
"""

from __future__ import annotations

from . import _harness_runs
from .common import Context, Result, paired_ratio, spread

NAME = "all_tasks_vs_one"
TARGET = 1.2
OP = "<="


def run(ctx: Context) -> Result:
    runs = _harness_runs.measure(ctx)
    times = runs["times"]
    if runs["all_tasks_candidates"] != runs["candidates"]:
        raise AssertionError(
            f"the 11-task run stored {runs['all_tasks_candidates']} candidates, the one-task run "
            f"{runs['candidates']}: candidates are not shared across target languages"
        )
    ratio = paired_ratio(times["all_tasks"], times["one_task"])
    return Result(
        NAME, ratio, TARGET, OP,
        f"{_harness_runs.GROUP} (11 tasks x {runs['problems']} problem(s), pool {':'.join(_harness_runs.POOL)}) "
        f"{spread(times['all_tasks'])} vs {_harness_runs.TASK} {spread(times['one_task'])}; both stores hold "
        f"{runs['candidates']} candidates ({runs['models']['label']}); CPU-time ratio (process + children) "
        f"{paired_ratio(runs['cpu']['all_tasks'], runs['cpu']['one_task']):.3f}",
        {"all_tasks_s": times["all_tasks"], "one_task_s": times["one_task"]},
    )
