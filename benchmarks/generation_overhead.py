"""generation_overhead: the hf backend's sampling against a plain ``model.generate`` on the same prompts.

"Ours" is what the harness runs per batch: ``HFBackend.generate`` (its tokenization and padding, each row sampled
from its own seed, the per-row stop strings, decoding and cutting the texts). "Plain" is the same loaded model's own
``model.generate`` with the same sampling settings (``do_sample``, temperature, top_p, top_k off, the same token cap
and seed) on ``tokenizer(prompts, padding=True, return_tensors="pt")`` (left padding), with no stop strings and no
decoding. Both run in one process on the same batches of MGSM prompts (the generator's chat template, the pool's
languages, sorted by length as the harness sorts them) with the stop strings an ``mgsm_xling_de`` run gives every
prompt (its ``until``). Since the two may end at different steps (a stop string, EOS), the ratio compares the time
per decoding step (``generate``'s output length minus the prompt's), the median over interleaved rounds of ours /
plain, CPU time on a CPU, wall time with a device sync on a GPU. Target <= 1.10.

Cold and warm are reported separately: "cold" is each side's first call at a batch shape it has not run yet (after
one untimed call at another shape, so process start-up is not counted), "warm" the same call repeated. On a CPU
the two are the same (nothing is set up per shape); ``benchmarks/gpu_check.py`` checks cold / warm <= 1.5 on a GPU.
"""

from __future__ import annotations

import time

from .common import POOL8, Context, Result, interleaved, mgsm_problems, paired_ratio, spread

NAME = "generation_overhead"
TARGET = 1.10
OP = "<="
BATCH = 16
#: ``mgsm_xling_de``'s ``until`` (task_yamls/mgsm_xling/mgsm_xling_de.yaml): every prompt of such a run stops at them.
STOPS = ("Frage:", "</s>", "<|im_end|>", "<|eot_id|>", "<|endoftext|>")


def prompt_batches(tokenizer, count: int, batch: int, first_problem: int = 0) -> list[list[str]]:
    """``count`` generator prompts (the ``first_problem``-th (problem, language) pair of MGSM on: problem ``k``
    in ``POOL8``'s language ``k``, the next round of problems in the next languages, so any number are distinct),
    longest first as the harness orders them, in batches of ``batch``."""
    from bestofl_tasks.prompts import generator_prompt

    problems = mgsm_problems()
    prompts = []
    for k in range(first_problem, first_problem + count):
        lang = POOL8[(k + k // len(problems)) % len(POOL8)]
        prompts.append(generator_prompt(tokenizer, problems[k % len(problems)]["parallel"][lang], lang))
    prompts.sort(key=lambda p: -len(tokenizer.encode(p, add_special_tokens=False)))
    return [prompts[i:i + batch] for i in range(0, len(prompts), batch)]


class Recorder:
    """Wraps ``backend.model.generate`` to record the decoding steps of each call (ours and plain both go through
    it); ``plain(prompts)`` is the plain call on the original method."""

    def __init__(self, backend, settings, stops=STOPS, sync=None):
        import transformers

        self.backend, self.settings, self.stops, self.sync = backend, settings, stops, sync
        self.original = backend.model.generate
        self.steps: list[int] = []

        def recording(*args, **kwargs):
            output = self.original(*args, **kwargs)
            self.steps.append(output.shape[1] - kwargs["input_ids"].shape[1])
            return output

        backend.model.generate = recording
        sampling = settings.temperature > 0
        self.config = transformers.GenerationConfig(
            max_new_tokens=settings.max_gen_toks, do_sample=sampling,
            temperature=settings.temperature if sampling else None, top_p=settings.top_p if sampling else None,
            top_k=0 if sampling else None, eos_token_id=backend.eos_token_id,
            pad_token_id=backend.tokenizer.pad_token_id)

    def ours(self, prompts: list[str]) -> int:
        self.backend.generate(prompts, list(range(len(prompts))), [self.stops] * len(prompts), self.settings)
        return self._done()

    def plain(self, prompts: list[str]) -> int:
        import torch

        tokenizer = self.backend.tokenizer
        batch = tokenizer(prompts, return_tensors="pt", padding=True).to(self.backend.device)
        torch.manual_seed(len(prompts))
        with torch.inference_mode():
            self.backend.model.generate(**batch, generation_config=self.config)
        return self._done()

    def _done(self) -> int:
        if self.sync is not None:
            self.sync()
        return self.steps[-1]

    def close(self) -> None:
        self.backend.model.generate = self.original


def compare(recorder: Recorder, batches: list[list[str]], repeats: int) -> dict:
    """Ours vs plain on every batch of ``batches`` (one round = all batches), interleaved after one untimed pass
    each; times per decoding step and their paired ratio."""
    steps: dict[str, int] = {}

    def over_batches(name, call):
        def go():
            steps[name] = sum(call(prompts) for prompts in batches)
        return go

    cpu: dict[str, list[float]] = {}
    wall = interleaved({"ours": over_batches("ours", recorder.ours), "plain": over_batches("plain", recorder.plain)},
                       repeats, warmup=True, cpu=cpu)
    per_step = {kind: {name: [t / steps[name] for t in times[name]] for name in times}
                for kind, times in (("wall", wall), ("cpu", cpu))}
    return {
        "wall_s": wall, "cpu_s": cpu, "steps": steps, "batches": len(batches),
        "ratio_wall": paired_ratio(per_step["wall"]["ours"], per_step["wall"]["plain"]),
        "ratio_cpu": paired_ratio(per_step["cpu"]["ours"], per_step["cpu"]["plain"]),
    }


def cold_and_warm(recorder: Recorder, ours_prompts: list[str] | None, plain_prompts: list[str] | None,
                  warm_calls: int = 2) -> dict:
    """Each side's first call at a new batch shape (``ours_prompts`` / ``plain_prompts``: batches no call has run
    at yet, of the same size; None leaves that side out), then the same call ``warm_calls`` times: seconds per
    decoding step, cold / warm (the median warm call)."""
    out = {}
    for name, call, prompts in (("ours", recorder.ours, ours_prompts), ("plain", recorder.plain, plain_prompts)):
        if prompts is None:
            continue
        times = []
        for _ in range(1 + warm_calls):
            start = time.perf_counter()
            steps = call(prompts)
            times.append((time.perf_counter() - start) / max(steps, 1))
        warm = sorted(times[1:])[len(times[1:]) // 2]
        out[name] = {"cold_s_per_step": times[0], "warm_s_per_step": warm, "cold_over_warm": times[0] / warm,
                     "batch": len(prompts)}
    return out


def run(ctx: Context) -> Result:
    from bestofl_models import testing
    from bestofl_models.generation.backends import SamplingSettings, load_backend
    from bestofl_models.harness.model_args import parse_model_args

    tokens = ctx.pick(8, 48, 96)
    config = parse_model_args({"pretrained": str(testing.tiny_generator()), "store": "none", "max_gen_toks": tokens,
                               "selection": "self_consistency"})
    backend = load_backend(config)
    recorder = Recorder(backend, SamplingSettings(config.temperature, config.top_p, tokens))
    count = ctx.pick(BATCH, 4 * BATCH, 4 * BATCH)
    batches = prompt_batches(backend.tokenizer, count, BATCH)
    recorder.ours(prompt_batches(backend.tokenizer, 4, 4, first_problem=count)[0])  # process start-up, untimed
    extra = prompt_batches(backend.tokenizer, 2 * BATCH, BATCH, first_problem=count + 4)
    cold = cold_and_warm(recorder, extra[0], extra[1])
    measured = compare(recorder, batches, ctx.pick(2, 9, 11))
    recorder.close()
    backend.close()
    ratio = measured["ratio_cpu"]
    return Result(
        NAME, ratio, TARGET, OP,
        f"tiny generator on CPU, {len(batches)} batches of {BATCH} MGSM prompts, {tokens} new tokens at most, stop "
        f"strings of mgsm_xling_de: ours {spread(measured['wall_s']['ours'])} for {measured['steps']['ours']} "
        f"decoding steps, plain model.generate {spread(measured['wall_s']['plain'])} for "
        f"{measured['steps']['plain']} steps (wall); per step ours/plain CPU time {ratio:.3f}, wall "
        f"{measured['ratio_wall']:.3f}; cold/warm (first call at a new shape) ours "
        f"{cold['ours']['cold_over_warm']:.2f}, plain {cold['plain']['cold_over_warm']:.2f}",
        {"ours_s": measured["wall_s"]["ours"], "plain_s": measured["wall_s"]["plain"],
         "ours_cpu_s": measured["cpu_s"]["ours"], "plain_cpu_s": measured["cpu_s"]["plain"],
         "steps": measured["steps"], "cold": cold},
    )
