"""What a run's answers cost: the ``cost`` object of the results' ``bestofl`` block (names in CONTRACT.md).

The stages add to a :class:`CostLedger` per ``simple_evaluate`` call: seconds per stage (``sampling``,
``scoring``, ``selection``, ``translation``), the tokens of what this run generated, and, once the
answers are chosen, the tokens of every candidate the answers used, made in this run or earlier (read from the
store: a rerun over a full store reports the same ``gen_tokens`` and 0 ``gen_tokens_this_run``). Totals count each
candidate once (Best-of-L's pool samples of a problem serve every target language of it); ``*_per_answer`` counts
what one answer used, shared candidates included, which is what methods are compared by. A candidate or a
score stored before bestofl recorded tokens counts as ``unknown``. ``flops_estimate`` is 2 x parameters x tokens
(prompt plus generated tokens for the generator, input tokens for the verifier), with each model's parameters
counted when it is loaded and kept in the store, so a rerun that loads nothing still has them.
"""

from __future__ import annotations

import collections
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from ..store import Candidate

STAGES = ("sampling", "scoring", "selection", "translation")


@dataclass
class CostLedger:
    seconds: collections.Counter = field(default_factory=collections.Counter)
    #: This run's own work: tokens of the candidates it generated.
    gen_tokens_this_run: int = 0
    #: The candidates the answers used (each distinct key once per call), made now or earlier.
    gen_tokens_by_lang: collections.Counter = field(default_factory=collections.Counter)
    prompt_tokens: int = 0
    verifier_tokens: int = 0
    hit_cap: int = 0
    used: int = 0
    unknown_candidates: int = 0
    unknown_scores: int = 0
    #: Per answer: the tokens of the candidates it used, a candidate shared by several answers (a problem's
    #: pool samples serve every target language) counted in each.
    answers: int = 0
    answer_gen_tokens: int = 0
    answer_verifier_tokens: int = 0

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the wall time of the block to ``stage``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start

    def add_generated(self, made: Iterable[Candidate]) -> None:
        for c in made:
            self.gen_tokens_this_run += c.gen_tokens or 0

    def add_used(self, answers: list[list[tuple[str | None, Candidate]]],
                 verifier_tokens: dict[str, int | None] | None) -> None:
        """The candidates each answer used, as (pool language, candidate), and the verifier's stored input tokens
        per key (None: no verifier). Totals count a candidate once; per-answer sums count it in every answer."""
        for used in answers:
            self.answers += 1
            self.answer_gen_tokens += sum(c.gen_tokens or 0 for _, c in used)
            self.answer_verifier_tokens += sum((verifier_tokens or {}).get(c.key) or 0 for _, c in used)
        distinct = {c.key: (lang, c) for used in answers for lang, c in used}
        for lang, c in distinct.values():
            self.used += 1
            if c.gen_tokens is None:
                self.unknown_candidates += 1
            else:
                self.gen_tokens_by_lang[lang or "?"] += c.gen_tokens
                self.prompt_tokens += c.prompt_tokens or 0
                self.hit_cap += bool(c.hit_cap)
            if verifier_tokens is not None:
                tokens = verifier_tokens.get(c.key)
                if tokens is None:
                    self.unknown_scores += 1
                else:
                    self.verifier_tokens += tokens

    def merged(self, others: Iterable["CostLedger"]) -> "CostLedger":
        """The ledgers of every rank added up (seconds: the slowest rank's)."""
        total = CostLedger()
        for ledger in others:
            for stage, seconds in ledger.seconds.items():
                total.seconds[stage] = max(total.seconds[stage], seconds)
            total.gen_tokens_by_lang.update(ledger.gen_tokens_by_lang)
            for name in ("gen_tokens_this_run", "prompt_tokens", "verifier_tokens", "hit_cap", "used", "unknown_candidates", "unknown_scores", "answers",
                         "answer_gen_tokens", "answer_verifier_tokens"):
                setattr(total, name, getattr(total, name) + getattr(ledger, name))
        return total

    def as_dict(self, counts: collections.Counter, parameters: dict[str, int | None], scored: bool) -> dict[str, Any]:
        """The results' ``cost`` object; ``counts``: the run's counts (generated, reused); ``parameters``: the
        generator's and the verifier's parameter counts (None: unknown); ``scored``: whether a verifier ran."""
        gen_total = sum(self.gen_tokens_by_lang.values())
        verifier_tokens = self.verifier_tokens if scored else None

        def flops(params: int | None, tokens: int | None) -> float | None:
            return None if params is None or tokens is None else 2.0 * params * tokens

        return {
            "gen_tokens": {"total": gen_total, "by_lang": dict(sorted(self.gen_tokens_by_lang.items()))},
            "gen_tokens_this_run": self.gen_tokens_this_run,
            "gen_tokens_per_answer": round(self.answer_gen_tokens / self.answers, 2) if self.answers else None,
            "verifier_tokens_per_answer": round(self.answer_verifier_tokens / self.answers, 2)
            if self.answers and scored else None,
            "prompt_tokens": self.prompt_tokens,
            "verifier_tokens": verifier_tokens,
            "candidates_generated": counts["generated"],
            "candidates_reused": counts["reused"],
            "candidates_used": self.used,
            "candidates_hit_cap": self.hit_cap,
            "unknown": {"candidates": self.unknown_candidates, "scores": self.unknown_scores if scored else None},
            "seconds": {stage: round(self.seconds[stage], 3) for stage in STAGES},
            "flops_estimate": {"generator": flops(parameters.get("generator"), self.prompt_tokens + gen_total),
                               "verifier": flops(parameters.get("verifier"), verifier_tokens)},
            "parameters": parameters,
        }


def parameter_count(model) -> int | None:
    """The parameters of a loaded torch model (a ``transformers``/``peft`` model), None for anything else."""
    count = getattr(model, "num_parameters", None)
    if callable(count):
        return int(count())
    parameters = getattr(model, "parameters", None)
    return sum(p.numel() for p in parameters()) if callable(parameters) else None


def safetensors_parameters(folder: str) -> int | None:
    """The parameters in a local folder's ``*.safetensors`` files, read from their headers (no weights loaded);
    None when it is not a local folder with such files."""
    import json
    import math
    from pathlib import Path

    files = sorted(Path(folder).glob("*.safetensors")) if Path(folder).is_dir() else []
    total = 0
    for path in files:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size <= 100_000_000:
                return None
            header = json.loads(f.read(size))
        total += sum(math.prod(entry["shape"]) for name, entry in header.items() if name != "__metadata__")
    return total or None


def loaded_parameters(loaded, folder: str | None) -> int | None:
    """A loaded generator backend's or verifier's parameters: its torch model's, else (vLLM) the safetensors
    files of ``folder``."""
    model = getattr(loaded, "model", None)
    count = parameter_count(model) if model is not None else None
    return count if count is not None else (safetensors_parameters(folder) if folder else None)
