"""Pool recommendation from stored candidates (``bestofl-report recommend-pool``).

The problems that have candidates in every stored language are split at random (seeded) into a dev part and a
held-out part. Pools of ``K`` stored languages (each in the data's language order: the runs' pool order, then
MGSM's) are scored on dev by exact ``cross_orm`` accuracy at a budget ``n`` (average over target languages,
:meth:`ReportContext.best_of_n_by_problem`): every pool when there are at most ``EXHAUSTIVE_LIMIT`` of them,
else greedy forward selection (add the language that helps most, ``K`` times). The best dev pool is then
measured on the held-out problems next to the default pool (every stored language), English only and the
target language only, with paired bootstrap intervals over problems (:func:`paired.paired_bootstrap`).
"""

from __future__ import annotations

import itertools
import json
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..selection.pool import (
    RECOMMENDED_POOL_FILE,
    RECOMMENDED_POOL_FORMAT,
    RECOMMENDED_POOL_VERSION,
)
from .build import Options, ReportContext, default_targets
from .data import ReportData
from .paired import paired_bootstrap
from .render import _csv_bytes, _figure_bytes, _table

#: Above this many pools of size K the search is greedy forward selection instead of exhaustive.
EXHAUSTIVE_LIMIT = 2000
CANDIDATES_CSV = "pool_candidates.csv"
SUMMARY_MD = "summary.md"
PLOT = "recommended_pool.png"
EXHAUSTIVE, GREEDY = "exhaustive", "greedy forward selection"
_BOOTSTRAP_ITERS = 2000
_PLOTTED_POOLS = 8
#: How each kind of row reads in the summary and the plot.
KIND_LABELS = {"recommended": "recommended", "searched": "searched", "default": "default: every stored language",
               "english_only": "English only", "target_only": "target language only"}


@dataclass
class Recommendation:
    pool: tuple[str, ...]
    search: str
    budget: int
    seed: int
    dev_fraction: float
    dev_problems: list[str]
    heldout_problems: list[str]
    heldout_candidates: int
    data: ReportData
    targets: tuple[str, ...]
    #: every pool the search scored: pool, kind, budget, dev and held-out accuracy, held-out interval
    pools: list[dict] = field(default_factory=list)
    difference: dict = field(default_factory=dict)  # recommended minus default on held-out, with interval
    warning: str | None = None
    notes: list[str] = field(default_factory=list)

    def row(self, kind: str) -> dict | None:
        return next((row for row in self.pools if row["kind"] == kind), None)


class _Scorer:
    """Per-problem exact cross_orm accuracy of a pool on a set of problems, averaged over targets."""

    def __init__(self, data: ReportData, targets: Sequence[str]):
        self.ctx = ReportContext(data, Options(mc_samples=1))
        self.targets = tuple(targets)

    def __call__(self, codes: Sequence[str], rows: np.ndarray, budget: int,
                 targets: Sequence[str] | None = None) -> tuple[np.ndarray, int]:
        """``(P,)`` accuracy per problem of ``rows`` and the budget used (``budget``, or less if not stored)."""
        targets = self.targets if targets is None else tuple(targets)
        view = self.ctx.view(codes, budget, among=rows)
        results, group_of = self.ctx.best_of_n_by_problem(view, targets)
        weights = np.bincount(group_of, minlength=len(results)) / len(targets)
        return sum(w * accuracy[view.max_budget - 1] for w, (accuracy, _) in zip(weights, results)), view.max_budget


def split_problems(rows: np.ndarray, dev_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random ``(dev, held_out)`` split of problem rows (each part at least one problem)."""
    rng = np.random.default_rng([seed, zlib.crc32(b"bestofl-recommend-pool")])
    shuffled = rng.permutation(rows)
    dev = min(max(round(dev_fraction * len(rows)), 1), len(rows) - 1)
    return np.sort(shuffled[:dev]), np.sort(shuffled[dev:])


def search_pools(score, languages: Sequence[str], size: int, budget: int, step_budget: int
                 ) -> tuple[str, list[tuple[tuple[str, ...], float, int]]]:
    """``(search kind, [(pool, dev accuracy, budget)])`` of every pool scored, the chosen one first.

    ``score(pool, budget) -> (accuracy, budget used)``; greedy steps of ``k`` languages use
    ``min(budget, k * step_budget)``."""
    order = {code: i for i, code in enumerate(languages)}
    if math.comb(len(languages), size) <= EXHAUSTIVE_LIMIT:
        scored = [(pool, *score(pool, budget)) for pool in itertools.combinations(languages, size)]
        kind = EXHAUSTIVE
    else:
        scored, chosen = [], ()
        for k in range(1, size + 1):
            step = [(pool, *score(pool, min(budget, k * step_budget)))
                    for pool in (tuple(sorted((*chosen, code), key=order.get)) for code in languages
                                 if code not in chosen)]
            chosen = max(step, key=lambda item: item[1])[0]  # first of equals: the data's language order
            scored += step
        scored = [item for item in scored if len(item[0]) == size]
        kind = GREEDY
    best = max(range(len(scored)), key=lambda i: (scored[i][1], -i))
    return kind, [scored[best]] + scored[:best] + scored[best + 1:]


def recommend_pool(data: ReportData, size: int, dev_fraction: float = 0.5, seed: int = 0, budget: int | None = None,
                   targets: Sequence[str] | None = None) -> Recommendation:
    """Search pools of ``size`` languages on dev problems and measure the best one on the held-out ones."""
    if not data.has_scores:
        raise ValueError("recommend-pool ranks pools by cross_orm (the bestofl preset), which needs verifier scores, "
                         "and the store has none; score the candidates with a verifier first.")
    languages = data.languages
    if size > len(languages):
        raise ValueError(f"--size {size} is more than the {len(languages)} stored languages "
                         f"({', '.join(languages)}); pass --size {len(languages)} or less.")
    targets = tuple(targets or default_targets(data))
    scorer = _Scorer(data, targets)
    eligible = np.flatnonzero((data.stored > 0).all(axis=1))
    if len(eligible) < 2:
        raise ValueError(f"{len(eligible)} problem(s) have candidates in every stored language "
                         f"({', '.join(languages)}); the dev/held-out split needs at least 2.")
    fewest = int(data.stored[eligible].min())
    if budget is not None and budget > size * fewest:
        raise ValueError(f"--budget {budget} is more than every pool of {size} languages has stored on every problem "
                         f"({size} x {fewest}); pass --budget {size * fewest} or less.")
    budget = budget or size * fewest
    dev, held = split_problems(eligible, dev_fraction, seed)
    kind, scored = search_pools(lambda pool, n: _mean(scorer(pool, dev, n)), languages, size, budget, fewest)
    result = Recommendation(
        pool=scored[0][0], search=kind, budget=budget, seed=seed, dev_fraction=dev_fraction,
        dev_problems=[data.problem_ids[p] for p in dev], heldout_problems=[data.problem_ids[p] for p in held],
        heldout_candidates=int(data.stored[held].sum()), data=data, targets=targets,
    )

    def add(kind: str, pool: tuple[str, ...], values: np.ndarray, used: int, dev_accuracy: float | None) -> np.ndarray:
        low, high = paired_bootstrap(np.zeros_like(values), values, iters=_BOOTSTRAP_ITERS, seed=seed)
        result.pools.append({"pool": ":".join(pool), "kind": kind, "budget": used, "dev_accuracy": dev_accuracy,
                             "heldout_accuracy": float(values.mean()), "heldout_low": low, "heldout_high": high,
                             "heldout_problems": len(values)})
        return values

    chosen = add("recommended", scored[0][0], *scorer(scored[0][0], held, budget), scored[0][1])
    default = add("default", languages, *scorer(languages, held, budget), None)
    if "en" in languages:
        add("english_only", ("en",), *scorer(("en",), held, budget), None)
    own = [t for t in targets if t in languages]
    if own:
        per_target = [scorer((t,), held, budget, targets=(t,)) for t in own]
        add("target_only", ("target",), np.mean([values for values, _ in per_target], axis=0),
            min(used for _, used in per_target), None)
    if len(own) < len(targets):
        result.notes.append(f"Target-only leaves out {', '.join(t for t in targets if t not in own)} "
                            "(no candidates in that language).")
    for pool, dev_accuracy, used in scored[1:]:
        add("searched", pool, *scorer(pool, held, used), dev_accuracy)

    low, high = paired_bootstrap(default, chosen, iters=_BOOTSTRAP_ITERS, seed=seed)
    result.difference = {"estimate": float(chosen.mean() - default.mean()), "low": low, "high": high}
    if low <= 0:
        result.warning = (
            f"The recommended pool {':'.join(result.pool)} is no better than the default pool {':'.join(languages)} "
            f"within the 95% interval on {len(held)} held-out problems (difference "
            f"{100 * result.difference['estimate']:+.1f} points [{100 * low:+.1f}, {100 * high:+.1f}]); "
            "more problems would tell them apart, or keep the default.")
        result.notes.append(result.warning)
    if len(languages) > budget:
        result.notes.append(f"Every pool gets the same budget n = {budget}, so the default pool of {len(languages)} "
                            f"languages samples only its first {budget}.")
    skipped = len(data.problem_ids) - len(eligible)
    if skipped:
        result.notes.append(f"{skipped} problem(s) lack some stored language and are left out.")
    return result


def _mean(scored: tuple[np.ndarray, int]) -> tuple[float, int]:
    values, used = scored
    return float(values.mean()), used


def pool_file(result: Recommendation) -> dict:
    """What ``recommended_pool.json`` holds (``pool.read_recommended_pool`` reads it)."""
    data = result.data
    baselines = {row["kind"]: {key: row[key] for key in ("pool", "budget", "heldout_accuracy", "heldout_low",
                                                         "heldout_high")}
                 for row in result.pools if row["kind"] != "searched"}
    return {
        "format": RECOMMENDED_POOL_FORMAT, "version": RECOMMENDED_POOL_VERSION,
        "pool": list(result.pool), "size": len(result.pool),
        "generator": data.generator, "generator_id": data.generator_id,
        "verifier": data.verifier, "verifier_id": data.verifier_id, "settings": data.settings,
        "selection": "cross_orm", "budget": result.budget, "targets": list(result.targets),
        "search": result.search, "seed": result.seed, "dev_fraction": result.dev_fraction,
        "dev_problems": len(result.dev_problems), "heldout_problems": len(result.heldout_problems),
        "accuracy": baselines, "difference_vs_default": result.difference, "warning": result.warning,
        "stores": list(data.stores),
    }


def _plotted(result: Recommendation) -> list[dict]:
    searched = sorted((row for row in result.pools if row["kind"] == "searched"),
                      key=lambda row: -row["dev_accuracy"])[:_PLOTTED_POOLS - 1]
    return [result.pools[0], *searched, *(row for row in result.pools[1:] if row["kind"] != "searched")]


def summary_markdown(result: Recommendation) -> str:
    data, difference = result.data, result.difference
    lines = [
        "# Recommended language pool",
        "",
        f"- Generator: `{data.generator}`; verifier: `{data.verifier}`; selection `cross_orm`, budget n = "
        f"{result.budget}; targets {', '.join(result.targets)}",
        f"- Problems: {len(result.dev_problems)} dev (the search sees only these) and {len(result.heldout_problems)} "
        f"held out ({result.heldout_candidates} candidates), split at random with seed {result.seed} "
        f"(dev fraction {result.dev_fraction})",
        f"- Search: {result.search} over pools of {len(result.pool)} of {', '.join(data.languages)}",
        "- Accuracy is exact (averaged over all stored subsets of the budget's shape); intervals are paired "
        "bootstrap 95% over held-out problems.",
        "",
        f"**Recommended pool: `{':'.join(result.pool)}`**, held-out accuracy "
        f"{100 * result.pools[0]['heldout_accuracy']:.1f}%; vs the default pool "
        f"{100 * difference['estimate']:+.1f} points [{100 * difference['low']:+.1f}, {100 * difference['high']:+.1f}]. "
        f"Use it with `languages=auto:{RECOMMENDED_POOL_FILE}` (the file in this folder).",
        "",
    ]
    lines += _table(["pool", "kind", "n", "dev (%)", "held-out (%)", "95% interval"], (
        [f"`{row['pool']}`", KIND_LABELS[row["kind"]], str(row["budget"]),
         "–" if row["dev_accuracy"] is None else f"{100 * row['dev_accuracy']:.1f}",
         f"{100 * row['heldout_accuracy']:.1f}", f"[{100 * row['heldout_low']:.1f}, {100 * row['heldout_high']:.1f}]"]
        for row in _plotted(result)))
    if result.notes:
        lines += ["## Notes", "", *(f"- {note}" for note in result.notes), ""]
    lines += ["## Files", "", f"- `{RECOMMENDED_POOL_FILE}`: the pool for `languages=auto:FILE`",
              f"- `{CANDIDATES_CSV}`: every pool scored, with dev and held-out accuracy", f"- `{PLOT}`", ""]
    return "\n".join(lines)


def figure(result: Recommendation):
    """Held-out accuracy of the recommended pool, the best other searched pools and the baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _plotted(result)
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(rows) + 2))
    accuracy = np.array([100 * row["heldout_accuracy"] for row in rows])
    error = np.array([[100 * row["heldout_accuracy"] - 100 * row["heldout_low"] for row in rows],
                      [100 * row["heldout_high"] - 100 * row["heldout_accuracy"] for row in rows]])
    colors = ["tab:green" if row["kind"] == "recommended" else "tab:grey" if row["kind"] == "searched"
              else "tab:blue" for row in rows]
    ax.barh(range(len(rows)), accuracy, xerr=error, color=colors, capsize=3)
    ax.set_yticks(range(len(rows)), [f"{row['pool']} ({KIND_LABELS[row['kind']]}, n={row['budget']})" for row in rows],
                  fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel="held-out accuracy (%), 95% bootstrap interval",
           title=f"Held-out accuracy per candidate pool (cross_orm)\n({len(result.heldout_problems)} held-out "
                 f"problems, {result.heldout_candidates} candidates; chosen on {len(result.dev_problems)} dev problems)")
    ax.grid(alpha=0.3, axis="x")
    return fig


def files(result: Recommendation) -> dict[str, bytes]:
    """The folder's files by name, the pool file first (written with ``render.write_folder``)."""
    return {
        RECOMMENDED_POOL_FILE: (json.dumps(pool_file(result), indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
        CANDIDATES_CSV: _csv_bytes(result.pools),
        SUMMARY_MD: summary_markdown(result).encode("utf-8"),
        PLOT: _figure_bytes(figure(result)),
    }
