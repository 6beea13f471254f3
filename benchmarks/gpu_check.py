"""GPU check at the paper's model sizes, with random weights: no checkpoint is downloaded.

    python benchmarks/gpu_check.py [--batches 1,16,64] [--json FILE]   # one GPU, bf16; about 8 minutes on an H200
    python benchmarks/gpu_check.py --tiny                              # small configs on the CPU (the dry run)

Two models are built from config values alone and saved, with random weights, to a temporary folder together with
the tiny test tokenizer (``bestofl_models.testing.tiny_tokenizer``; its ids are in range of both vocabularies): a
Qwen2.5-3B-Instruct-shaped verifier base and a Qwen2.5-7B-Instruct-shaped generator (``SHAPES``; values from their
``config.json``). Then everything runs through the product's own code, in this order:

1. ``lora_fit_step``: ``training.fit.run`` with ``training/configs/paper.yaml``'s fit settings (LoRA r=16 alpha=32 on
   all seven projections, 8 rows x 4 accumulation steps, gradient checkpointing, bf16 autocast over float32
   weights) and ``max_steps=1`` on 32 synthetic labelled candidates: wall time and peak GPU memory;
2. scoring one harness chunk of candidates with the adapter that step wrote, as the harness loads it
   (``load_verifier``, bf16): ``gpu_batched_scoring``, ``score_responses`` in batches of 16 vs one at a time
   (target >= 5x), and ``gpu_scoring_overhead``, ours at batch 16 vs a plain forward of the same model on the same
   texts and batches (``benchmarks/scoring_overhead.py``: the adapter merged by peft on a copy in memory; the
   unmerged ``PeftModel`` forward is timed too, to show what merging buys), target <= 1.10;
3. generation by the hf generator backend (``load_backend``, bf16), ``--max-new-tokens`` tokens at each of
   ``--batches``: ``gpu_generation_overhead``, ``HFBackend.generate`` vs plain ``model.generate`` on the same
   prompts, warm (each batch size warmed first), time per decoding step, the worst batch size, target <= 1.10
   (``benchmarks/generation_overhead.py``); ``gpu_cold_shape_bN``, per batch size, the first call at that batch
   size with prompt lengths not seen yet (what every batch of a length-sorted run is) over the same call warm,
   target <= 1.5; plain ``generate``'s own cold / warm is in the context line; tokens per second;
4. what ``bestofl_models.generation.backends.sizing`` picks for these models at the memory left (generation and scoring),
   recorded in the report;
5. ``gpu_check_seconds``: the whole check, target <= 480 s.

The exit code is 0 when every target is met; ``--tiny`` checks no target (its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.common import (  # noqa: E402
    POOL8, Result, interleaved, machine, median, mgsm_candidates, mgsm_problems, paired_ratio, setup_environment,
    spread, synthetic_text,
)
from benchmarks import generation_overhead, scoring_overhead  # noqa: E402

#: Qwen2.5-3B-Instruct (the paper's verifier base) and Qwen2.5-7B-Instruct (a paper generator), from config.json.
SHAPES = {
    "verifier": dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                     num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "generator": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                      num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
}
#: ``--tiny``: the same architecture, small enough for a CPU smoke test (vocab: the tiny tokenizer's).
TINY_SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, tie_word_embeddings=True)
COMMON = dict(max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6, hidden_act="silu")
SCORE_BATCH = 16
SCORING_TARGET = 5.0
OVERHEAD_TARGET = 1.10
COLD_TARGET = 1.5
SECONDS_TARGET = 480.0
GIB = 2**30


def qwen2_config(name: str, tokenizer, tiny: bool):
    """The ``Qwen2Config`` of ``SHAPES[name]`` (or ``TINY_SHAPE``) with the tokenizer's special-token ids."""
    from transformers import Qwen2Config

    shape = {**TINY_SHAPE, "vocab_size": len(tokenizer)} if tiny else SHAPES[name]
    return Qwen2Config(**COMMON, **shape, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)


def save_random_model(config, tokenizer, out: Path, device) -> int:
    """A randomly initialised ``Qwen2ForCausalLM`` built on ``device`` in bf16, saved to ``out``; its parameters."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    free_memory()
    return params


def free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / GIB, 2) if torch.cuda.is_available() else None


def labelled_rows(count: int, seed: int = 0) -> list[dict]:
    """``count`` training rows: synthetic chain-of-thought candidates on MGSM problems in ``POOL8``, labelled by
    their answer."""
    rng = random.Random(seed)
    rows = []
    for problem in mgsm_problems(math.ceil(count / len(POOL8))):
        for lang in POOL8:
            question = problem["parallel"][lang]
            text, answer = synthetic_text(question, problem["gold"], lang, rng)
            rows.append({"problem_id": problem["problem_id"], "lang": lang, "question": question, "response": text,
                         "label": int(answer == problem["gold"])})
    return rows[:count]


def fit_step(work: Path, base: Path, rows: list[dict]) -> dict:
    """One optimizer step of ``training.fit.run`` with the paper's fit settings; returns timings and the adapter."""
    from training import fit
    from training.common import MANIFEST, write_jsonl
    from training.config import load_config

    config = load_config(REPO / "training" / "configs" / "paper.yaml",
                         [f"verifier_base={base}", "fit.max_steps=1", "fit.logging_steps=1"])
    balance = work / "balance"
    balance.mkdir(parents=True)
    write_jsonl(balance / "train.jsonl", rows)
    write_jsonl(balance / "validation.jsonl", [])
    (balance / MANIFEST).write_text(json.dumps({"stage": "balance", "fingerprint": "gpu_check"}) + "\n")
    free_memory()
    start = time.perf_counter()
    manifest = fit.run(work, config)
    seconds = time.perf_counter() - start
    history = [json.loads(line) for line in (work / "fit" / "log_history.jsonl").read_text().splitlines()]
    train_runtime = next(entry["train_runtime"] for entry in history if "train_runtime" in entry)
    fit_args = config.fit
    return {
        "seconds": round(seconds, 1), "train_runtime_s": round(train_runtime, 2), "peak_gib": peak_gib(),
        "rows": len(rows), "global_step": manifest["counts"]["global_step"],
        "train_loss": manifest["counts"]["train_loss"], "bf16": manifest["bf16"], "adapter": manifest["adapter"],
        "settings": f"LoRA r={fit_args.lora_r} alpha={fit_args.lora_alpha} on {','.join(fit_args.lora_target_modules)}, "
                    f"{fit_args.per_device_train_batch_size} rows x {fit_args.gradient_accumulation_steps} "
                    f"accumulation, gradient checkpointing {fit_args.gradient_checkpointing}, "
                    f"weights {fit_args.model_dtype}",
    }


def _sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def scoring(adapter: str, base: Path, device: str, dtype: str, count: int, repeats: int) -> dict:
    """Batched vs one-at-a-time scoring of ``count`` MGSM-like candidates (``mgsm_candidates``) through
    ``load_verifier`` + ``score_responses``; then ours vs a plain forward of the peft-merged model (and of the
    unmerged ``PeftModel``) on the same texts and batches; and the scoring batch ``sizing`` picks."""
    from bestofl_models.generation.backends import sizing
    from bestofl_models.harness.model_args import parse_model_args
    from bestofl_models.verifiers.classifier import load_verifier, score_responses

    config = parse_model_args({"pretrained": str(base), "verifier": adapter, "store": "none", "dtype": dtype,
                               "device": device, "verifier_batch_size": SCORE_BATCH})
    free_memory()
    verifier = load_verifier(config.verifier_config())
    items = mgsm_candidates(count, verifier.tokenizer)
    scores = {}

    def scored(batch_size: int):
        def go():
            verifier.batch_size = batch_size
            scores[batch_size] = score_responses(verifier, items, progress=False)
            _sync()
        return go

    times = interleaved({"batched": scored(SCORE_BATCH), "one": scored(1)}, repeats, warmup=True)
    peak = peak_gib()
    plain = {"plain": scoring_overhead.plain_classifier(adapter, dtype, device),
             "peft_unmerged": scoring_overhead.plain_classifier(adapter, dtype, device, merge=False)}
    overhead = scoring_overhead.compare(verifier, plain, items, SCORE_BATCH, repeats, sync=_sync)
    longest = overhead["tokens"]["max"]
    free = sizing.free_memory_bytes(verifier.device)
    auto = None if free is None else sizing.largest_batch(
        free, sizing.dims(verifier.model.config, verifier.model.dtype.itemsize), longest, "score")
    del plain
    verifier.close()
    lengths = [int(x) for x in (overhead["tokens"]["min"], overhead["tokens"]["max"])]
    return {
        "ratio": paired_ratio(times["one"], times["batched"]), "batched_s": times["batched"],
        "one_s": times["one"], "candidates": len(items), "peak_gib": peak,
        "max_score_difference": max(abs(a - b) for a, b in zip(scores[SCORE_BATCH], scores[1])),
        "tokens": {"min": lengths[0], "max": lengths[1], "total": overhead["tokens"]["total"]},
        "merged": verifier.merged, "overhead": overhead, "auto_batch": auto,
        "free_gib": None if free is None else round(free / GIB, 1),
    }


def generation(generator: Path, device: str, dtype: str, batches: tuple[int, ...], new_tokens: int,
               repeats: int) -> dict:
    """Per batch size: ours cold (the first call at that batch size, then at new prompt lengths) and warm, plain
    ``generate`` cold (new lengths) and warm, and ours vs plain warm (``generation_overhead.compare``); the
    generation batch ``sizing`` picks."""
    from bestofl_models.generation.backends import SamplingSettings, load_backend, sizing
    from bestofl_models.harness.model_args import parse_model_args

    config = parse_model_args({"pretrained": str(generator), "store": "none", "dtype": dtype, "device": device,
                               "selection": "self_consistency", "max_gen_toks": new_tokens})
    free_memory()
    backend = load_backend(config)
    recorder = generation_overhead.Recorder(backend, SamplingSettings(config.temperature, config.top_p, new_tokens),
                                            sync=_sync)
    tokenizer = backend.tokenizer
    start = [0]

    def fresh(batch: int) -> list[str]:  # prompts no call has seen (new lengths)
        prompts = generation_overhead.prompt_batches(tokenizer, batch, batch, first_problem=start[0])[0]
        start[0] += batch
        return prompts

    recorder.ours(fresh(2))  # process start-up (CUDA context, first kernels), at a batch size not timed
    results = {}
    for batch in batches:
        timed = fresh(batch)
        per_step = []
        for _ in range(3):  # the first call at this batch size, then twice warm
            t = time.perf_counter()
            steps = recorder.ours(timed)
            per_step.append((time.perf_counter() - t) / max(steps, 1))
        warm = min(per_step[1:])
        t = time.perf_counter()
        steps = recorder.ours(fresh(batch))  # the next batch of a length-sorted run: new lengths
        new_lengths = (time.perf_counter() - t) / max(steps, 1)
        plain = generation_overhead.cold_and_warm(recorder, None, fresh(batch))["plain"]
        measured = generation_overhead.compare(recorder, [timed], repeats)
        ours_s = median(measured["wall_s"]["ours"])
        results[batch] = {
            "ours_cold_s_per_step": round(per_step[0], 5), "ours_new_lengths_s_per_step": round(new_lengths, 5),
            "ours_warm_s_per_step": round(warm, 5),
            "cold_over_warm": max(per_step[0], new_lengths) / warm,
            "plain_cold_over_warm": plain["cold_over_warm"],
            "ratio": measured["ratio_wall"], "ours_s": measured["wall_s"]["ours"],
            "plain_s": measured["wall_s"]["plain"], "steps": measured["steps"],
            "rows_tokens_per_s": round(batch * measured["steps"]["ours"] / ours_s, 1),
        }
    peak = peak_gib()
    longest = max(len(ids) for ids in tokenizer([p for p in fresh(max(batches))])["input_ids"])
    free = sizing.free_memory_bytes(backend.device)
    auto = None if free is None else sizing.largest_batch(
        free, sizing.dims(backend.model.config, backend.model.dtype.itemsize), longest, "generate", new_tokens)
    recorder.close()
    backend.close()
    return {"batches": results, "new_tokens": new_tokens, "peak_gib": peak, "auto_batch": auto,
            "free_gib": None if free is None else round(free / GIB, 1), "longest_prompt": longest}


def run(tiny: bool, batches: tuple[int, ...], new_tokens: int, workdir: Path, log=print) -> dict:
    """Build the models and measure; returns everything measured (see the module docstring)."""
    import torch
    from transformers import AutoTokenizer


    from bestofl_models.harness import score as score_stage
    from bestofl_models import testing

    start = time.perf_counter()
    device, dtype = ("cpu", "float32") if tiny else ("cuda", "bfloat16")  # bf16 matmuls are slow on a CPU
    tokenizer = AutoTokenizer.from_pretrained(testing.tiny_tokenizer())
    report: dict = {"tiny": tiny, "machine": machine(), "device": f"{_device_name(device)}, {dtype}"}
    paths = {name: workdir / name for name in SHAPES}
    for name, path in paths.items():
        t = time.perf_counter()
        params = save_random_model(qwen2_config(name, tokenizer, tiny), tokenizer, path, device)
        report[f"{name}_params"] = params
        log(f"[gpu_check] built and saved the random {name}: {params / 1e6:,.1f} M parameters, "
            f"{time.perf_counter() - t:.0f} s")
    rows = labelled_rows(32)
    report["fit"] = fit_step(workdir / "train", paths["verifier"], rows)
    log(f"[gpu_check] fit step: {json.dumps(report['fit'])}")
    report["scoring"] = scoring(report["fit"]["adapter"], paths["verifier"], device, dtype,
                                32 if tiny else score_stage.SCORE_CHUNK, repeats=2)
    log(f"[gpu_check] scoring: batched/one {report['scoring']['ratio']:.2f}, ours/plain "
        f"{report['scoring']['overhead']['ratio_wall']}")
    report["generation"] = generation(paths["generator"], device, dtype, batches, new_tokens, repeats=2)
    log(f"[gpu_check] generation: {json.dumps(report['generation'], default=str)}")
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["torch"] = torch.__version__
    return report


def _device_name(device: str) -> str:
    import torch

    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        return f"{props.name} ({props.total_memory / GIB:.0f} GiB)"
    return "CPU"


def results(report: dict) -> list[Result]:
    """The targets: batched scoring >= 5x one at a time; ours / plain <= 1.10 for scoring and (warm) generation;
    per batch size, cold / warm <= 1.5; the whole check <= 480 s."""
    s, fit, gen = report["scoring"], report["fit"], report["generation"]
    o = s["overhead"]
    by_batch = gen["batches"]
    worst = max(by_batch, key=lambda b: by_batch[b]["ratio"])
    speeds = ", ".join(f"batch {b} {g['rows_tokens_per_s']:.0f} rows x steps/s" for b, g in by_batch.items())
    auto = (f"sizing picks batch {gen['auto_batch']} for generation (longest prompt {gen['longest_prompt']} tokens, "
            f"{gen['free_gib']} GiB free) and {s['auto_batch']} for scoring (longest {s['tokens']['max']} tokens, "
            f"{s['free_gib']} GiB free)" if gen["auto_batch"] is not None else "sizing: no GPU memory to size by")
    lines = [
        Result("gpu_batched_scoring", s["ratio"], SCORING_TARGET, ">=",
               f"{s['candidates']} candidates ({s['tokens']['min']}-{s['tokens']['max']} tokens) scored by the "
               f"fitted LoRA adapter (merged for inference: {s['merged']}) on the "
               f"{report['verifier_params'] / 1e6:,.1f} M-parameter verifier: batch {SCORE_BATCH} "
               f"{spread(s['batched_s'])}, one at a time {spread(s['one_s'])}; max score difference "
               f"{s['max_score_difference']:.2g}; {_peak(s)}"),
        Result("gpu_scoring_overhead", o["ratio_wall"]["plain"], OVERHEAD_TARGET, "<=",
               f"same {o['candidates']} candidates, {o['batches']} length-sorted batches of {o['batch_size']}: ours "
               f"{spread(o['wall_s']['ours'])}, plain forward of the peft-merged model "
               f"{spread(o['wall_s']['plain'])}, plain forward of the unmerged PeftModel "
               f"{spread(o['wall_s']['peft_unmerged'])} (ours / unmerged {o['ratio_wall']['peft_unmerged']:.2f}); "
               f"max score difference ours vs plain {o['max_score_difference']['plain']:.2g}; {auto}"),
        Result("gpu_generation_overhead", by_batch[worst]["ratio"], OVERHEAD_TARGET, "<=",
               f"HFBackend.generate vs plain model.generate, same prompts, warm, time per decoding step, worst batch "
               f"size {worst}; by batch size: "
               + ", ".join(f"{b}: {g['ratio']:.3f} (ours {spread(g['ours_s'])}, plain {spread(g['plain_s'])})"
                           for b, g in by_batch.items())),
    ]
    for b, g in by_batch.items():
        lines.append(Result(
            f"gpu_cold_shape_b{b}", g["cold_over_warm"], COLD_TARGET, "<=",
            f"batch {b}: ours per decoding step first call at this batch size {g['ours_cold_s_per_step'] * 1e3:.1f} "
            f"ms, next batch with new prompt lengths {g['ours_new_lengths_s_per_step'] * 1e3:.1f} ms, warm "
            f"{g['ours_warm_s_per_step'] * 1e3:.1f} ms; plain generate at new lengths / warm "
            f"{g['plain_cold_over_warm']:.2f}"))
    lines.append(Result(
        "gpu_check_seconds", report["seconds"], SECONDS_TARGET, "<=",
        f"{report['device']}; fit step {fit['seconds']} s (train_runtime {fit['train_runtime_s']} s, "
        f"{fit['rows']} rows, loss {fit['train_loss']}, bf16 {fit['bf16']}; {fit['settings']}; "
        f"{_peak(fit)}); generation of {gen['new_tokens']} new tokens by the "
        f"{report['generator_params'] / 1e6:,.1f} M-parameter generator: {speeds}; {_peak(gen)}"))
    return lines


def _peak(step: dict) -> str:
    return "peak GPU memory n/a (CPU)" if step["peak_gib"] is None else f"peak GPU memory {step['peak_gib']} GiB"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="small configs on the CPU (dry run; no targets)")
    parser.add_argument("--batches", default=None,
                        help="comma-separated generation batch sizes, each warmed and timed (default 1,16,64; tiny 1,4)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="tokens to generate (default 256; tiny 16)")
    parser.add_argument("--json", default=None, help="also write everything measured to this JSON file")
    args = parser.parse_args(argv)
    try:
        given = args.batches if args.batches is not None else ("1,4" if args.tiny else "1,16,64")
        batches = tuple(int(b) for b in given.split(",") if b.strip())
    except ValueError:
        parser.error(f"--batches takes comma-separated integers, not {args.batches!r}")
    if not batches or min(batches) < 1:
        parser.error("--batches needs at least one batch size, each >= 1")
    setup_environment()
    import torch

    if not args.tiny and not torch.cuda.is_available():
        parser.error("no GPU here: run it on one, or use --tiny for the CPU dry run")
    if not args.tiny:  # a machine of its own: the CPU side (loading, tokenizing) may use every core
        torch.set_num_threads(os.cpu_count() or 1)
    new_tokens = args.max_new_tokens or (16 if args.tiny else 256)
    with tempfile.TemporaryDirectory(prefix="bestofl-gpu-check-") as workdir:
        report = run(args.tiny, batches, new_tokens, Path(workdir),
                     log=lambda message: print(message, file=sys.stderr, flush=True))
    print(f"machine: {report['machine']}; {report['device']}")
    checked = results(report)
    for result in checked:
        verdict = "not checked: --tiny" if args.tiny else ("met" if result.met else "MISSED")
        print(result.line())
        print(f"  {result.context} [{verdict}]", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0 if args.tiny or all(r.met for r in checked) else 1


if __name__ == "__main__":
    sys.exit(main())
