"""report_speed: ``bestofl-report`` on a store of 250 problems x 11 languages x 16 candidates vs generating it.

The store is synthetic (``bestofl_models.report.synthetic.build_synthetic_store``: ~200-token texts, one verifier
score each, some missing answers and NaN scores). The report runs as a user runs it, ``bestofl-report --store S
--out R`` in a fresh process (CSV, markdown, PNG). The reference is the time generation would need for the same
candidates at 1,000 tokens/s, with the candidates' tokens counted by the SmolLM2 tokenizer (the tiny fixture
tokenizer when SmolLM2 is not available).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .common import REFERENCE_TOKENS_PER_SECOND, Context, Result, interleaved, median, spread

NAME = "report_speed"
TARGET = 0.01
OP = "<="


def report_command() -> list[str]:
    script = Path(sys.executable).parent / "bestofl-report"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bestofl_models.report.cli"]


def count_tokens(texts: list[str]) -> tuple[int, str]:
    from transformers import AutoTokenizer

    from bestofl_models import testing

    try:
        path, label = testing.smollm2_hf(), "SmolLM2 tokenizer"
    except (ImportError, FileNotFoundError, RuntimeError):
        path, label = testing.tiny_tokenizer(), "tiny fixture tokenizer"
    tokenizer = AutoTokenizer.from_pretrained(path)
    total = 0
    for start in range(0, len(texts), 2048):
        total += sum(len(ids) for ids in tokenizer(texts[start : start + 2048], add_special_tokens=False)["input_ids"])
    return total, label


def run(ctx: Context) -> Result:
    from bestofl_models.report.synthetic import build_synthetic_store

    problems = ctx.pick(10, 250, 250)
    store_dir = Path(ctx.workdir) / "report-store"
    start = time.perf_counter()
    store = build_synthetic_store(str(store_dir), problems=problems, samples_per_language=16)
    build_s = time.perf_counter() - start
    texts = [c.text for c in store.candidates()]
    tokens, tokenizer = count_tokens(texts)
    generation_s = tokens / REFERENCE_TOKENS_PER_SECOND
    outputs = []

    def report():
        out = Path(ctx.workdir) / f"report-{len(outputs)}"
        outputs.append(out)
        proc = subprocess.run(report_command() + ["--store", str(store_dir), "--out", str(out), "--no-progress"],
                              capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"})
        if proc.returncode != 0:
            raise RuntimeError(f"bestofl-report failed ({proc.returncode}): {proc.stderr[-2000:]}")

    times = interleaved({"report": report}, ctx.pick(1, 2, 3))
    files = sorted(p.suffix for p in outputs[-1].rglob("*") if p.is_file())
    kinds = {suffix: files.count(suffix) for suffix in sorted(set(files))}
    ratio = median(times["report"]) / generation_s
    return Result(
        NAME, ratio, TARGET, OP,
        f"bestofl-report on {problems} problems x 11 languages x 16 = {len(texts)} candidates: "
        f"{spread(times['report'])} ({kinds}) vs {generation_s:.0f} s to generate their {tokens} tokens "
        f"({tokenizer}) at {REFERENCE_TOKENS_PER_SECOND:.0f} tokens/s; store built in {build_s:.0f} s",
        {"report_s": times["report"], "tokens": tokens, "candidates": len(texts)},
    )
