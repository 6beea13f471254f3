"""What the report's answers cost in generated tokens (issue #27).

* Stores written before bestofl recorded tokens: :func:`recount_tokens` counts a candidate's generated tokens from
  its stored text with its generator's tokenizer, loaded offline; where it cannot load, the count stays unknown.
* :func:`expected_tokens`: the mean generated tokens of an ``n``-sample selection, averaged over the same
  stratified subsets as the accuracy estimators (:mod:`.estimators`); by linearity it is exact:
  ``sum_l m_l(n) * t_l``, ``t_l`` the mean tokens of language ``l``'s stored candidates.
* :func:`accuracy_at_tokens`: a budget curve read at a token budget, linear between its points, never beyond.
* :func:`cost_tables`: the per-language cost table, accuracy against tokens for every curve row, and the
  compute-matched table (each method at greedy x 1, 2, 4, 8 tokens; greedy: one target-language sample).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ..store import Candidate
from .estimators import budget_counts

logger = logging.getLogger(__name__)

#: The compute-matched table's budgets, in multiples of greedy's tokens.
GREEDY_MULTIPLES = (1, 2, 4, 8)
ALL_LANGUAGES = "all"


def load_tokenizer(name: str):
    """The tokenizer at ``name`` (a folder or a cached Hub id), offline and without remote code; None and the
    reason when it cannot be loaded."""
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name, local_files_only=True, trust_remote_code=False), None
    except Exception as exc:  # noqa: BLE001 - any failure means "unknown", said in the report's notes
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]


def recount_tokens(candidates: Sequence[Candidate], names: dict[str, str]) -> tuple[dict[str, int], list[str]]:
    """Generated tokens of the candidates that have no stored count, recounted from their text (one tokenizer
    call per generator); and notes saying what was recounted and what stays unknown. ``names``: the store's
    generator names by id (the tokenizer's path), else the candidate's ``generator``."""
    lacking: dict[str, dict[str, str]] = {}
    for c in candidates:
        if c.gen_tokens is None:
            lacking.setdefault(names.get(c.generator_id, c.generator), {})[c.key] = c.text
    counts: dict[str, int] = {}
    notes = []
    for name, texts in lacking.items():
        tokenizer, reason = load_tokenizer(name)
        if tokenizer is None:
            notes.append(f"{len(texts)} candidate(s) have no stored token counts and the tokenizer of {name} could "
                         f"not be loaded offline ({reason}): their cost is unknown.")
            continue
        ids = tokenizer(list(texts.values()), add_special_tokens=False)["input_ids"]
        counts.update(zip(texts, map(len, ids)))
        notes.append(f"{len(texts)} candidate(s) have no stored token counts (a store written before bestofl "
                     f"recorded them): recounted from their text with the tokenizer of {name} (end-of-sequence and "
                     "cut stop strings not counted; whether they hit the cap stays unknown).")
    for note in notes:
        logger.warning(note)
    return counts, notes


def language_token_sums(lang: np.ndarray, tokens: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``(P, L)`` generated tokens of each problem's stored candidates in each language of ``index`` (NaN when
    one of them is unknown). ``lang``/``tokens``: ``(P, X)`` language index and tokens per slot."""
    mine = lang[:, :, None] == np.asarray(index)[None, None, :]
    return np.where(mine, tokens[:, :, None], 0.0).sum(axis=1)


def expected_tokens(stored: np.ndarray, token_sums: np.ndarray, max_budget: int) -> np.ndarray:
    """``(N, P)`` expected generated tokens of the candidates an ``n``-sample selection uses, ``n = 1..N``
    (unknown, NaN, only where a language it samples has an unknown count)."""
    m = budget_counts(stored.shape[1], max_budget)[:, None, :]  # (N, 1, L)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(stored > 0, token_sums / np.maximum(stored, 1), 0.0)[None]  # (1, P, L)
    return np.where(m > 0, m * mean, 0.0).sum(axis=2)


def accuracy_at_tokens(tokens: np.ndarray, accuracy: np.ndarray, budget: float) -> float | None:
    """Accuracy of a budget curve (``tokens`` non-decreasing in ``n``) at ``budget`` tokens, linear between its
    points; None when the budget lies outside the curve (never extrapolated) or its cost is unknown."""
    if not len(tokens) or np.isnan(tokens).any() or not np.isfinite(budget):
        return None
    low, high = tokens[0] * (1 - 1e-9), tokens[-1] * (1 + 1e-9)
    if not low <= budget <= high:
        return None
    return float(np.interp(min(max(budget, tokens[0]), tokens[-1]), tokens, accuracy))


def _known_mean(values: np.ndarray) -> float | None:
    known = values[~np.isnan(values)]
    return float(known.mean()) if known.size else None


def language_cost_rows(data, codes: Sequence[str]) -> list[dict]:
    """Per language of ``codes`` and for them all: candidates, generated tokens (total and mean per candidate,
    over those with a known count), share that hit the cap (of those known), accuracy of one sample, accuracy
    per 1k generated tokens, and how many counts are unknown."""
    index = [data.languages.index(code) for code in codes]
    rows = []
    for code, chosen in [*((code, [i]) for code, i in zip(codes, index)), (ALL_LANGUAGES, index)]:
        mine = np.isin(data.lang, chosen)
        tokens, cap = data.gen_tokens[mine], data.hit_cap[mine]
        mean = _known_mean(tokens)
        accuracy = float(data.correct[mine].mean()) if mine.any() else None
        rows.append({
            "lang": code,
            "candidates": int(mine.sum()),
            "gen_tokens": None if mean is None else int(np.nansum(tokens)),
            "mean_gen_tokens": mean,
            "hit_cap_share": _known_mean(cap),
            "accuracy": accuracy,
            "accuracy_per_1k_tokens": None if not mean or accuracy is None else 1000 * accuracy / mean,
            "unknown_tokens": int(np.isnan(tokens).sum()),
        })
    return rows


def cost_tables(report, main, target_views: dict, cross_methods: Sequence[str], average: str) -> None:
    """Fill ``report.language_costs``, ``report.token_curves`` (every curve row with its mean generated tokens
    per problem) and ``report.compute_matched``. ``main``/``target_views``: the report's main pool view and
    target-language views (the problems each curve averages over); ``cross_methods``: the methods that sample
    over the pool; ``average``: the target name of the rows averaged over target languages."""
    data = report.data
    report.language_costs = language_cost_rows(data, report.pool)

    def curve_tokens(view) -> np.ndarray:
        sums = language_token_sums(data.lang[view.rows], data.gen_tokens[view.rows], view.index)
        return expected_tokens(view.stored, sums, view.max_budget).mean(axis=1)

    pool_tokens = curve_tokens(main)
    target_tokens = {t: curve_tokens(view) for t, view in target_views.items()}
    for row in report.curves:
        if row["method"] in cross_methods:
            tokens = pool_tokens[row["n"] - 1]
        elif row["target"] == average:
            tokens = np.mean([curve[row["n"] - 1] for curve in target_tokens.values()])
        else:
            tokens = target_tokens[row["target"]][row["n"] - 1]
        report.token_curves.append({**row, "gen_tokens": float(tokens)})
    greedy = {t: curve[0] for t, curve in target_tokens.items()}
    if greedy:
        greedy[average] = float(np.mean(list(greedy.values())))
    report.compute_matched = compute_matched_rows(report.token_curves, greedy)


def compute_matched_rows(token_curves: Sequence[dict], greedy: dict[str, float]) -> list[dict]:
    """Each (target, method)'s accuracy at ``greedy[target] x GREEDY_MULTIPLES`` tokens, read from its curve of
    accuracy against mean generated tokens per problem (None outside the curve or where tokens are unknown)."""
    curves: dict[tuple[str, str], list[dict]] = {}
    for row in token_curves:
        curves.setdefault((row["target"], row["method"]), []).append(row)
    rows = []
    for (target, method), points in curves.items():
        if target not in greedy:
            continue
        points = sorted(points, key=lambda r: r["n"])
        tokens = np.array([r["gen_tokens"] for r in points])
        accuracy = np.array([r["accuracy"] for r in points])
        for multiple in GREEDY_MULTIPLES:
            budget = multiple * greedy[target]
            rows.append({"target": target, "method": method, "greedy_multiple": multiple,
                         "gen_tokens": None if np.isnan(budget) else float(budget),
                         "accuracy": accuracy_at_tokens(tokens, accuracy, budget),
                         "estimator": points[0]["estimator"]})
    return rows
