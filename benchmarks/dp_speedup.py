"""dp_speedup: the same evaluation with 2 data-parallel processes vs 1, each on one thread.

Both sides run ``lm_eval.simple_evaluate(model="bestofl", ...)`` on the tiny generator and the tiny verifier
adapter, ``mgsm_xling_de`` with ``limit`` problems, a fresh store each: one side as a plain process, the other
under ``accelerate launch --multi_gpu --num_processes 2`` (gloo on the CPU). Timed inside the workers, from a
barrier after start-up (imports, the task index of our MGSM YAMLs alone, the process group) to rank 0's results
(which wait for every rank): the evaluation itself, model loading included. The two sides must return the same
per-doc outputs and store the same number of candidates. Rounds alternate which side goes first; the ratio is the
median of per-round ratios. Each rank's CPU time is reported too: it shows the split of the work, while the wall-time
ratio also depends on how many cores are free (on a machine shared with other jobs, often fewer than two).

    python -m benchmarks.dp_speedup --worker OUT.json --store DIR --limit P ...   (each side's worker)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from .common import REPO, Context, Result, interleaved, paired_ratio, setup_environment, spread

NAME = "dp_speedup"
TARGET = 0.65
OP = "<="
TASK = "mgsm_xling_de"
POOL = "en:de:fr:zh"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(args: argparse.Namespace) -> None:
    """One side's evaluation (every rank runs this); rank 0 writes the time and the per-doc outputs."""
    setup_environment()
    import lm_eval
    import peft  # noqa: F401  (start-up: imports are not the evaluation; peft alone takes seconds)
    import transformers
    from lm_eval.tasks import TaskManager

    from bestofl_models.generation.backends import hf  # noqa: F401
    from bestofl_models.generation.distributed import ProcessGroup
    from bestofl_models.testing import tiny_generator, tiny_verifier_adapter

    group = ProcessGroup()
    task_manager = TaskManager(include_defaults=False, include_path=str(REPO / "task_yamls" / "mgsm_xling"))
    transformers.AutoModelForCausalLM, transformers.AutoModelForSequenceClassification  # noqa: B018 (lazy imports)
    model_args = {"pretrained": str(tiny_generator()), "verifier": str(tiny_verifier_adapter()), "languages": POOL,
                  "n": args.n, "max_gen_toks": args.max_gen_toks, "batch_size": args.batch_size, "seed": 1234,
                  "store": args.store}
    group.barrier()
    start, start_cpu = time.perf_counter(), time.process_time()
    results = lm_eval.simple_evaluate(model="bestofl", model_args=model_args, tasks=[TASK], limit=args.limit,
                                      task_manager=task_manager, bootstrap_iters=0, log_samples=True)
    seconds = time.perf_counter() - start
    cpu = group.all_gather([time.process_time() - start_cpu])
    if group.rank == 0:
        outputs = [[row["doc_id"], row["resps"]] for row in results["samples"][TASK]]
        Path(args.worker).write_text(json.dumps({"seconds": seconds, "cpu_s": cpu, "processes": group.world_size,
                                                 "outputs": sorted(outputs)}))


def run(ctx: Context) -> Result:
    from bestofl_models.store import CandidateStore

    setup_environment()
    limit, n, tokens, rounds = ctx.pick(2, 8, 16), ctx.pick(4, 8, 8), ctx.pick(8, 128, 128), ctx.pick(1, 3, 5)
    workdir = Path(ctx.workdir)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    inner: dict[str, list[float]] = {"one": [], "two": []}
    cpu: dict[str, list[list[float]]] = {"one": [], "two": []}
    seen: dict[str, dict] = {}

    def side(name: str):
        def go():
            store, out = workdir / f"dp-{name}-store", workdir / f"dp-{name}.json"
            shutil.rmtree(store, ignore_errors=True)
            launcher = [str(bin_dir / "python")] if name == "one" else [
                str(bin_dir / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port())]
            command = [*launcher, "-m", "benchmarks.dp_speedup", "--worker", str(out), "--store", str(store),
                       "--limit", str(limit), "--n", str(n), "--max-gen-toks", str(tokens), "--batch-size", "4"]
            done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
            if done.returncode != 0:
                raise RuntimeError(f"{name}: {' '.join(command)} failed:\n{done.stderr[-3000:]}")
            seen[name] = {**json.loads(out.read_text()), "stored": len(CandidateStore(store, read_only=True))}
            inner[name].append(seen[name]["seconds"])
            cpu[name].append(seen[name]["cpu_s"])
        return go

    ctx.log(f"[dp_speedup] {rounds} round(s): {limit} problems x n={n}, max_gen_toks={tokens}, 1 vs 2 processes")
    wall = interleaved({"one": side("one"), "two": side("two")}, rounds)
    if seen["two"]["processes"] != 2 or seen["one"]["processes"] != 1:
        raise AssertionError(f"1 and 2 processes expected, got {seen['one']['processes']}, {seen['two']['processes']}")
    if seen["two"]["outputs"] != seen["one"]["outputs"] or {seen[s]["stored"] for s in seen} != {limit * n}:
        raise AssertionError("the 2-process run did not do the 1-process run's work (outputs or store differ)")
    ratio = paired_ratio(inner["two"], inner["one"])
    return Result(
        NAME, ratio, TARGET, OP,
        f"{TASK} {limit} problems x n={n} ({limit * n} candidates, max_gen_toks={tokens}, batch 4), tiny generator "
        f"+ tiny verifier adapter, one thread per process: 2 processes {spread(inner['two'])} vs 1 "
        f"{spread(inner['one'])} (evaluation only); whole commands incl. start-up {spread(wall['two'])} vs "
        f"{spread(wall['one'])}; CPU seconds per rank in the last round {cpu['two'][-1]} vs {cpu['one'][-1]} (the "
        f"work is split; the wall ratio also depends on free cores); same outputs, {seen['one']['stored']} "
        "candidates stored by each",
        {"two_s": inner["two"], "one_s": inner["one"], "two_wall_s": wall["two"], "one_wall_s": wall["one"],
         "two_cpu_s": cpu["two"], "one_cpu_s": cpu["one"]},
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", required=True, help="where rank 0 writes its time and outputs (JSON)")
    parser.add_argument("--store", required=True)
    parser.add_argument("--limit", type=int, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--max-gen-toks", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    _worker(parser.parse_args())
