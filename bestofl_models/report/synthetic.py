"""Synthetic candidate stores for tests and benchmarks (no model involved).

Each problem has a gold answer and a few plausible wrong answers; each language has its own accuracy;
the fake verifier scores correct candidates higher on average. Some candidates have no answer and
some scores are missing or NaN, so every code path of the report is exercised.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bestofl_tasks.languages import MGSM_LANGUAGES

from ..store import Candidate, CandidateStore, candidate_key, prompt_hash

SYNTHETIC_SETTINGS = {"temperature": 0.7, "top_p": 1.0, "max_gen_toks": 512, "seed": 1234, "stop": []}
#: About 200 tokens of filler reasoning, so stores have the size of real ones.
_FILLER = " ".join(["We add the numbers step by step and check the units of every quantity again."] * 12)


def build_synthetic_store(
    directory: str | None,
    problems: int = 250,
    languages: Sequence[str] = MGSM_LANGUAGES,
    samples_per_language: int = 16,
    seed: int = 0,
    generator: str = "synthetic-generator",
    verifier: str | None = "synthetic-verifier",
    score_decimals: int | None = None,
    missing_scores: float = 0.02,
    text: bool = True,
    accuracies: Sequence[float] | None = None,
    separation: float | Sequence[float] = 1.5,
    tokens: bool = True,
) -> CandidateStore:
    """Fill a store (``directory`` None: in memory) with ``problems x languages x samples_per_language``
    candidates and, unless ``verifier`` is None, one score each. ``score_decimals`` rounds scores
    (creating exact ties); a ``missing_scores`` fraction of scores is None or NaN (half each);
    ``text=False`` keeps the texts short. ``accuracies``: each language's accuracy on a problem of average
    difficulty (default: 0.75 down to 0.35); ``separation``: how far (in logits, one value or one per language)
    the verifier scores correct candidates above wrong ones (a score is ``sigmoid(N(0, 1) + separation)``
    for a correct candidate, ``sigmoid(N(0, 1))`` for a wrong one). ``tokens``: each candidate's generated tokens
    (more in later languages, capped at ``max_gen_toks``; drawn from their own generator, so the rest is the same
    either way); False leaves them unknown, as a store written before bestofl recorded them."""
    rng = np.random.default_rng(seed)
    token_rng = np.random.default_rng([seed, 27])
    cap = SYNTHETIC_SETTINGS["max_gen_toks"]
    store = CandidateStore(directory)
    accuracy = np.linspace(0.75, 0.35, len(languages)) if accuracies is None else np.asarray(accuracies, dtype=float)
    shift = np.broadcast_to(np.asarray(separation, dtype=float), (len(languages),))
    if accuracy.shape != (len(languages),):
        raise ValueError(f"accuracies has {accuracy.size} values for {len(languages)} languages; give one each.")
    for p in range(problems):
        problem_id = f"synthetic-{p:04d}"
        gold = int(rng.integers(1, 1000))
        wrong = [str(gold + int(d)) for d in rng.choice([-10, -2, -1, 1, 2, 5, 10, 100], size=3, replace=False)]
        ease = rng.normal(0.0, 1.0)
        batch, scores = [], {}
        for lang, lang_accuracy, lang_shift in zip(languages, accuracy, shift):
            prompt = f"synthetic prompt for {problem_id} in {lang}"
            chance = 1 / (1 + np.exp(-(np.log(lang_accuracy / (1 - lang_accuracy)) + ease)))
            for i in range(samples_per_language):
                right = rng.random() < chance
                answer = str(gold) if right else (None if rng.random() < 0.1 else str(rng.choice(wrong)))
                key = candidate_key(generator, prompt, SYNTHETIC_SETTINGS, i)
                body = f"{_FILLER} " if text else ""
                made = min(cap, int(token_rng.integers(60, 300) * (1 + 0.25 * languages.index(lang)))) if tokens else None
                batch.append(Candidate(
                    key=key, problem_id=problem_id, task=f"synthetic_{languages[0]}", doc_id=p,
                    target_lang=languages[0], lang=lang, sample_idx=i, generator=generator,
                    prompt_hash=prompt_hash(prompt), settings=dict(SYNTHETIC_SETTINGS),
                    text=f"{body}The answer is {answer if answer is not None else 'unclear'}.",
                    answer=answer, gold=str(gold), created="2025-01-01T00:00:00+00:00",
                    gen_tokens=made, hit_cap=None if made is None else made == cap,
                ))
                score = float(1 / (1 + np.exp(-(rng.normal(0.0, 1.0) + (lang_shift if right else 0.0)))))
                if score_decimals is not None:
                    score = round(score, score_decimals)
                draw = rng.random()
                scores[key] = None if draw < missing_scores / 2 else float("nan") if draw < missing_scores else score
        store.add_candidates(batch)
        if verifier is not None:
            store.add_scores(verifier, scores)
    return store
