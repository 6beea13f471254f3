"""Shared machinery for the benchmarks: results, targets, timing, environment, synthetic candidates.

A benchmark module defines ``NAME``, ``TARGET``, ``OP`` (``"<="`` or ``">="``) and ``run(ctx) -> Result``.
``ctx`` (:class:`Context`) carries the scale (``tiny`` for the smoke test, ``quick``, ``full``) and a dict
``shared`` through which benchmarks that measure the same runs share them (the harness runs are measured once,
interleaved, for ``bestofl_overhead``, ``all_tasks_vs_one`` and the per-candidate generation time).
"""

from __future__ import annotations

import math
import os
import platform
import random
import re
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
SCALES = ("tiny", "quick", "full")

#: The generation speed the report benchmark compares against (issue 5: "1,000 tokens/s").
REFERENCE_TOKENS_PER_SECOND = 1000.0
#: Tokens per candidate assumed when a benchmark has no measured generation to compare with.
REFERENCE_TOKENS_PER_CANDIDATE = 200


def setup_environment() -> None:
    """Offline, one thread per library (the machine is shared); call before importing torch.

    Data comes as in a user's run: the MGSM copy the package ships, or ``BESTOFL_DATA_DIR`` when it is set.
    """
    for key, value in {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    }.items():
        os.environ.setdefault(key, value)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(1)


def machine() -> str:
    """One line: CPU model, cores, Python, torch."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import torch

    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} on {torch.get_num_threads()} thread(s), "
        f"Python {platform.python_version()}"
    )


@dataclass
class Result:
    name: str
    ratio: float
    target: float
    op: str
    context: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        if not math.isfinite(self.ratio):
            return False
        return self.ratio <= self.target if self.op == "<=" else self.ratio >= self.target

    def line(self) -> str:
        return f"{self.name} ratio={format_ratio(self.ratio)} target={self.op}{format_ratio(self.target)}"


def format_ratio(value: float) -> str:
    if not math.isfinite(value):
        return "nan"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 0.1:
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return f"{value:.2g}"


@dataclass
class Context:
    scale: str = "quick"
    shared: dict[str, Any] = field(default_factory=dict)
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True)
    workdir: Path | None = None

    def pick(self, tiny: Any, quick: Any, full: Any) -> Any:
        return {"tiny": tiny, "quick": quick, "full": full}[self.scale]


# ----------------------------------------------------------------------------------------------- timing


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (lm-eval runs a few subprocesses)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def interleaved(
    competitors: dict[str, Callable[[], Any]], repeats: int, warmup: bool = False,
    cpu: dict[str, list[float]] | None = None, orders: list[list[str]] | None = None,
) -> dict[str, list[float]]:
    """Wall times of each competitor, run round-robin ``repeats`` times. Each round runs them in the next order
    of ``orders`` (default: rotating, so no side always runs first). ``warmup`` runs each once untimed first.
    ``cpu``, if given, receives the CPU time per run (process and children: less sensitive than wall time to
    other load on the machine)."""
    names = list(competitors)
    if orders is None:
        orders = [names[i:] + names[:i] for i in range(len(names))]
    if warmup:
        for name in names:
            competitors[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in orders[round_ % len(orders)]:
            start, start_cpu = time.perf_counter(), cpu_seconds()
            competitors[name]()
            times[name].append(time.perf_counter() - start)
            if cpu is not None:
                cpu.setdefault(name, []).append(cpu_seconds() - start_cpu)
    return times


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of numerator/denominator measured in the same round (back to back), which cancels
    load on a shared machine that drifts from round to round."""
    return median([a / b for a, b in zip(numerator, denominator)])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def spread(values: list[float]) -> str:
    """``median s (min-max, k runs)`` for a context line."""
    if not values:
        return "no runs"
    return f"{median(values):.3g} s ({min(values):.3g}-{max(values):.3g}, {len(values)} runs)"


# ----------------------------------------------------------------------------------------------- synthetic data

_FILLER = {
    "en": "First we work out each part, then we add them up.",
    "es": "Primero calculamos cada parte y luego las sumamos.",
    "fr": "D'abord on calcule chaque partie, puis on les additionne.",
    "de": "Zuerst berechnen wir jeden Teil, dann addieren wir sie.",
    "ru": "Сначала вычислим каждую часть, затем сложим их.",
    "zh": "首先计算每一部分，然后把它们加起来。",
    "ja": "まずそれぞれの部分を計算し、それから合計します。",
    "th": "ก่อนอื่นเราคำนวณแต่ละส่วน แล้วนำมารวมกัน",
    "sw": "Kwanza tunahesabu kila sehemu, kisha tunaziongeza.",
    "bn": "প্রথমে আমরা প্রতিটি অংশ হিসাব করি, তারপর সেগুলো যোগ করি।",
    "te": "ముందుగా ప్రతి భాగాన్ని లెక్కిస్తాము, తర్వాత వాటిని కలుపుతాము.",
}


def synthetic_text(question: str, gold: str, lang: str, rng: random.Random) -> tuple[str, str | None]:
    """A chain-of-thought-like candidate for ``question`` in ``lang`` and the answer it states.

    About 60% state the gold answer, 30% a wrong one, 10% end without an answer line (the extractor then
    falls back to the last number). Roughly 150-250 tokens of a small multilingual tokenizer.
    """
    from bestofl_tasks.languages import final_answer_line

    numbers = [int(n) for n in re.findall(r"\d+", question)[:6]] or [rng.randint(2, 90)]
    steps, total = [], 0
    for i, number in enumerate(numbers):
        other = rng.randint(2, 12)
        value = number * other if i % 2 else number + other
        total += value
        op = "×" if i % 2 else "+"
        steps.append(f"{number} {op} {other} = {value}")
    steps.append(" + ".join(str(number) for number in numbers) + f" = {sum(numbers)}")
    filler = _FILLER.get(lang, _FILLER["en"])
    body = [question.strip(), filler, *steps, filler, f"{total} - {rng.randint(1, 9)}"]
    roll = rng.random()
    if roll < 0.6:
        answer: str | None = gold
    elif roll < 0.9:
        answer = str(int(float(gold)) + rng.randint(1, 20)) if gold.lstrip("-").replace(".", "").isdigit() else "7"
    else:
        answer = None
    if answer is not None:
        body.append(final_answer_line(answer, lang))
    return "\n".join(body), answer


#: The pool of the scoring benchmarks: the paper's 8 training languages, 4 scripts.
POOL8 = ("en", "de", "es", "fr", "ru", "zh", "ja", "th")
#: The generation cap (the harness's and ``training/configs/paper.yaml``'s ``max_gen_toks``).
MAX_GEN_TOKS = 512


def mgsm_candidates(count: int, tokenizer, langs=POOL8, seed: int = 0) -> list[tuple[str, str, str]]:
    """``count`` ``(question, response, lang)`` candidates in the order the harness gathers them (problem by
    problem, each in every language of ``langs``): the real MGSM questions, and chain-of-thought-like responses in
    the candidate's language whose length in ``tokenizer``'s tokens (as when generator and verifier share a
    tokenizer, like the paper's Qwen2.5-7B and Qwen2.5-3B) is drawn per candidate: half end after 100-450 tokens,
    half run to the ``MAX_GEN_TOKS`` cap. SmolLM2-135M-Instruct on MGSM (32 candidates measured, 4 problems x
    these 8 languages) ended its English answers after 105-365 tokens and ran all 28 others to the cap; a
    stronger generator ends more of them early, so the benchmarks use an even mix."""
    rng = random.Random(seed)
    out = []
    for problem in mgsm_problems(math.ceil(count / len(langs))):
        for lang in langs:
            question = problem["parallel"][lang]
            tokens = MAX_GEN_TOKS if rng.random() < 0.5 else rng.randint(100, 450)
            ids: list[int] = []
            while len(ids) < tokens:
                text, _ = synthetic_text(question, problem["gold"], lang, rng)
                ids += tokenizer.encode(text + "\n", add_special_tokens=False)
            out.append((question, tokenizer.decode(ids[:tokens]), lang))
    return out[:count]


def mgsm_problems(limit: int | None = None) -> list[dict]:
    """MGSM problems as ``{problem_id, gold, parallel}`` (the packaged copy, or ``BESTOFL_DATA_DIR``'s)."""
    from bestofl_tasks.data import load_docs

    docs = load_docs("mgsm", "en")[:limit]
    return [{"problem_id": d["problem_id"], "gold": d["answer"], "parallel": d["parallel"]} for d in docs]
