"""GPU check at the paper's model sizes, with random weights: no checkpoint is downloaded.

    python benchmarks/gpu_check.py [--batch N] [--json FILE]   # one GPU, bf16; under 8 minutes on an H100/H200
    python benchmarks/gpu_check.py --tiny                      # small configs on the CPU (the smoke test)

Two models are built from config values alone and saved, with random weights, to a temporary folder together with
the tiny test tokenizer (``bestofl_models.testing.tiny_tokenizer``; its ids are in range of both vocabularies): a
Qwen2.5-3B-Instruct-shaped verifier base and a Qwen2.5-7B-Instruct-shaped generator (``SHAPES``; values from their
``config.json``). Then everything runs through the product's own code, in this order:

1. ``lora_fit_step``: ``training.fit.run`` with ``training/configs/paper.yaml``'s fit settings (LoRA r=16 alpha=32 on
   all seven projections, 8 rows x 4 accumulation steps, gradient checkpointing, bf16 autocast over float32
   weights) and ``max_steps=1`` on 32 synthetic labelled candidates: wall time and peak GPU memory;
2. ``gpu_batched_scoring``: the adapter that step wrote, as the harness loads it (``load_verifier``, bf16), scoring
   one harness chunk of candidates with ``score_responses`` in batches of 16 vs one at a time: target >= 5x;
3. ``generation``: the hf generator backend (``load_backend``, bf16) sampling ``--max-new-tokens`` tokens for a batch
   of 1 and a batch of ``--batch`` MGSM prompts: generated tokens per second and peak GPU memory;
4. ``gpu_check_seconds``: the whole check, target <= 480 s.

The exit code is 0 when both targets are met; ``--tiny`` checks no target (its numbers mean nothing).
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


def scoring(adapter: str, base: Path, device: str, dtype: str, count: int, repeats: int) -> dict:
    """Batched vs one-at-a-time scoring of ``count`` MGSM-like candidates (``mgsm_candidates``) through
    ``load_verifier`` + ``score_responses``."""
    import torch

    from bestofl_models.config import parse_model_args
    from bestofl_models.verifier import load_verifier, score_responses
    from bestofl_tasks.prompts import verifier_text

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
            if torch.cuda.is_available():
                torch.cuda.synchronize()
        return go

    times = interleaved({"batched": scored(SCORE_BATCH), "one": scored(1)}, repeats, warmup=True)
    peak = peak_gib()
    verifier.close()
    texts = [verifier_text(verifier.tokenizer, question, response, lang) for question, response, lang in items]
    lengths = [len(ids) for ids in verifier.tokenizer(texts, add_special_tokens=False)["input_ids"]]
    return {
        "ratio": paired_ratio(times["one"], times["batched"]), "batched_s": times["batched"],
        "one_s": times["one"], "candidates": len(items), "peak_gib": peak,
        "max_score_difference": max(abs(a - b) for a, b in zip(scores[SCORE_BATCH], scores[1])),
        "tokens": {"min": min(lengths), "median": int(median(lengths)), "max": max(lengths)},
    }


def generation(generator: Path, device: str, dtype: str, batches: tuple[int, ...], new_tokens: int) -> dict:
    """Generated tokens per second of the hf backend (``load_backend``) for each batch size."""
    import torch

    from bestofl_models.backends import SamplingSettings, load_backend
    from bestofl_models.config import parse_model_args
    from bestofl_tasks.prompts import generator_prompt

    config = parse_model_args({"pretrained": str(generator), "store": "none", "dtype": dtype, "device": device,
                               "selection": "self_consistency", "max_gen_toks": new_tokens})
    free_memory()
    backend = load_backend(config)
    calls = []
    generate = backend.model.generate

    def recording_generate(*args, **kwargs):  # the backend returns texts; count the tokens it generated
        output = generate(*args, **kwargs)
        calls.append(output[:, kwargs["input_ids"].shape[1]:].tolist())
        return output

    backend.model.generate = recording_generate
    settings = SamplingSettings(config.temperature, config.top_p, new_tokens)
    questions = [p["parallel"][POOL8[i % len(POOL8)]] for i, p in enumerate(mgsm_problems(max(batches)))]
    results = {}
    for batch in (batches[0], *batches):  # the first, untimed, warms up kernels and allocator
        prompts = [generator_prompt(backend.tokenizer, q, POOL8[i % len(POOL8)])
                   for i, q in enumerate(questions[:batch])]
        start = time.perf_counter()
        backend.generate(prompts, list(range(batch)), [()] * batch, settings)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        generated = sum(_generated(row, backend.eos_token_id) for row in calls[-1])
        results[batch] = {"seconds": round(seconds, 2), "tokens": generated,
                          "tokens_per_s": round(generated / seconds, 1)}
    peak = peak_gib()
    backend.close()
    return {"batches": results, "new_tokens": new_tokens, "peak_gib": peak}


def _generated(row: list[int], eos) -> int:
    """Tokens a row generated: up to and including its first end-of-sequence token."""
    ends = set(eos) if isinstance(eos, (list, tuple)) else {eos}
    return next((i + 1 for i, token in enumerate(row) if token in ends), len(row))


def run(tiny: bool, batch: int, new_tokens: int, workdir: Path, log=print) -> dict:
    """Build the models and measure; returns everything measured (see the module docstring)."""
    import torch
    from transformers import AutoTokenizer

    from bestofl_models import harness, testing

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
                                32 if tiny else harness.SCORE_CHUNK, repeats=2 if tiny else 3)
    log(f"[gpu_check] scoring: ratio {report['scoring']['ratio']:.2f}")
    report["generation"] = generation(paths["generator"], device, dtype, (1, batch), new_tokens)
    log(f"[gpu_check] generation: {json.dumps(report['generation'])}")
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
    """The two targets: batched scoring >= 5x one at a time, the whole check <= 480 s."""
    s, fit, gen = report["scoring"], report["fit"], report["generation"]
    batches = ", ".join(f"batch {b} {g['tokens_per_s']:.0f} tokens/s ({g['tokens']} tokens in {g['seconds']} s)"
                        for b, g in gen["batches"].items())
    return [
        Result("gpu_batched_scoring", s["ratio"], SCORING_TARGET, ">=",
               f"{s['candidates']} candidates ({s['tokens']['min']}-{s['tokens']['max']} tokens, median "
               f"{s['tokens']['median']}) scored by the fitted LoRA adapter on the "
               f"{report['verifier_params'] / 1e6:,.1f} M-parameter verifier: batch {SCORE_BATCH} "
               f"{spread(s['batched_s'])}, one at a time {spread(s['one_s'])}; max score difference "
               f"{s['max_score_difference']:.2g}; {_peak(s)}"),
        Result("gpu_check_seconds", report["seconds"], SECONDS_TARGET, "<=",
               f"{report['device']}; fit step {fit['seconds']} s (train_runtime {fit['train_runtime_s']} s, "
               f"{fit['rows']} rows, loss {fit['train_loss']}, bf16 {fit['bf16']}; {fit['settings']}; "
               f"{_peak(fit)}); generation of {gen['new_tokens']} new tokens by the "
               f"{report['generator_params'] / 1e6:,.1f} M-parameter generator: {batches}; {_peak(gen)}"),
    ]


def _peak(step: dict) -> str:
    return "peak GPU memory n/a (CPU)" if step["peak_gib"] is None else f"peak GPU memory {step['peak_gib']} GiB"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="small configs on the CPU (smoke test; no targets)")
    parser.add_argument("--batch", type=int, default=16, help="generation batch size n (default 16)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="tokens to generate (default 256; tiny 16)")
    parser.add_argument("--json", default=None, help="also write everything measured to this JSON file")
    args = parser.parse_args(argv)
    setup_environment()
    import torch

    if not args.tiny and not torch.cuda.is_available():
        parser.error("no GPU here: run it on one, or use --tiny for the CPU smoke run")
    if not args.tiny:  # a machine of its own: the CPU side (loading, tokenizing) may use every core
        torch.set_num_threads(os.cpu_count() or 1)
    new_tokens = args.max_new_tokens or (16 if args.tiny else 256)
    with tempfile.TemporaryDirectory(prefix="bestofl-gpu-check-") as workdir:
        report = run(args.tiny, args.batch, new_tokens, Path(workdir),
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
