"""Run every bestofl benchmark in one process and print one ratio line each.

    python benchmarks/run_all.py [--quick] [--only NAME[,NAME...]] [--json FILE]

For each benchmark::

    NAME ratio=X target=<=Y
      context: what was measured, medians, which models, met/MISSED

The exit code is 0 only when every benchmark meets its target. Competitors are measured side by side in the
same process, interleaved and repeated, and medians are reported. ``--quick`` fits in 10 minutes on 2 cores;
``--scale tiny`` is the smoke-test size (tiny random models, a couple of repeats; its ratios mean little).
Everything runs offline on one torch thread (the machine is shared) on the data a user's run reads: the MGSM copy
the package ships and generated problems (``BESTOFL_DATA_DIR``, when set, is honoured as in any run).

A benchmark is a module of this folder with ``NAME``, ``TARGET``, ``OP`` and ``run(ctx)`` (see ``common.py``); adding
one is adding its name to ``BENCHMARKS``. Every target here must hold on any machine, a 2-core CPU included, so that a
missed one means a regression: ``padding_efficiency`` is exact (token counts), the others are ratios of timings
measured side by side. What only a GPU can show (batched scoring >= 5x one at a time, generation and LoRA speed at
the paper's model sizes) is ``benchmarks/gpu_check.py``, run on its own on a GPU.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.common import SCALES, Context, Result, machine, setup_environment  # noqa: E402

#: Run order: the harness benchmarks first (they measure the generation time the per-candidate costs use).
BENCHMARKS = (
    "bestofl_overhead",
    "all_tasks_vs_one",
    "batched_scoring",
    "scoring_overhead",
    "generation_overhead",
    "padding_efficiency",
    "report_speed",
    "store_cost",
    "extraction_cost",
    "selection_cost",
    "startup_hook",
    "translation_cost",
)


def run_benchmarks(names, ctx: Context, out=None) -> list[Result]:
    """Run ``names`` in order, printing each result as it finishes; a crash is a missed target."""
    out = out or sys.stdout
    results = []
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        start = time.perf_counter()
        ctx.log(f"[run_all] {name} ...")
        try:
            result = module.run(ctx)
        except Exception as exc:  # report and go on: one broken benchmark must not hide the others
            traceback.print_exc()
            result = Result(module.NAME, float("nan"), module.TARGET, module.OP,
                            f"ERROR {type(exc).__name__}: {exc}")
        elapsed = time.perf_counter() - start
        result.details["seconds"] = round(elapsed, 1)
        results.append(result)
        print(result.line(), file=out)
        print(f"  {result.context} [{'met' if result.met else 'MISSED'}; {elapsed:.0f} s]", file=out, flush=True)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the 10-minute version (same as --scale quick)")
    parser.add_argument("--scale", choices=SCALES, default=None, help="tiny (smoke test), quick, full (default)")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    scale = args.scale or ("quick" if args.quick else "full")
    names = BENCHMARKS
    if args.only:
        names = tuple(n.strip() for n in args.only.split(",") if n.strip())
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")

    setup_environment()
    start = time.perf_counter()
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bestofl-bench-") as workdir:
        ctx = Context(scale=scale, workdir=Path(workdir))
        results = run_benchmarks(names, ctx)
    missed = [r.name for r in results if not r.met]
    elapsed = time.perf_counter() - start
    if missed:
        print(f"{len(missed)} of {len(results)} missed their target: {', '.join(missed)} ({scale}, {elapsed:.0f} s)")
    else:
        print(f"all {len(results)} benchmarks met their targets ({scale}, {elapsed:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"machine": machine(), "scale": scale, "seconds": round(elapsed, 1),
             "results": [{"name": r.name, "ratio": r.ratio, "target": r.target, "op": r.op, "met": r.met,
                          "context": r.context, "details": r.details} for r in results]},
            indent=2, default=str) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
