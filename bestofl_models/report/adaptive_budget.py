"""Adaptive-budget simulation from stored candidates (``bestofl-report adaptive``).

Each rule of a grid (:mod:`bestofl_models.selection.adaptive`) is replayed the way the harness runs it: rounds of one
candidate per pool language, the rule checked after each round, ``cross_orm`` (the ``bestofl`` preset, tie
rule of ``selection.py``) choosing among the candidates drawn when the problem stops. The stored candidates of
each language are taken in seeded random orders (the report's Monte Carlo draws), so every estimate averages
over orderings; the standard error over orderings is reported, and the difference to the full budget comes
with a paired bootstrap interval over problems. The cheapest rule within ``tolerance`` points of the full
budget's accuracy is named.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..selection.adaptive import AdaptiveRule, samples_used
from .build import ReportContext
from .estimators import draw_steps
from .paired import paired_bootstrap
from .render import _MARKERS, _csv_bytes, _figure_bytes, _table

DEFAULT_SCORES = (0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)
DEFAULT_MARGINS = (1, 2, 3, 4, 5, 6, 8, 10)
RULES_CSV = "adaptive_rules.csv"
SUMMARY_MD = "summary.md"
PLOT = "adaptive_accuracy_vs_samples.png"
_Z95 = 1.96


def default_rules(budget: int) -> list[AdaptiveRule]:
    """The grid: score thresholds, vote margins below the budget, and a few of both."""
    margins = [m for m in DEFAULT_MARGINS if m <= budget]
    both = [AdaptiveRule(score=t, margin=m) for t in (0.9, 0.95, 0.99) for m in (2, 3, 4) if m <= budget]
    return [AdaptiveRule(score=t) for t in DEFAULT_SCORES] + [AdaptiveRule(margin=m) for m in margins] + both


def running_margin(answer: np.ndarray, ends: np.ndarray, answers: int) -> np.ndarray:
    """``(R, P, M)`` vote margin (top answer's votes minus the runner-up's) after steps ``ends``.

    ``answer``: ``(N, P, M)`` answer id drawn at each step (-1: none, which does not vote)."""
    steps, problems, draws = answer.shape
    width = max(answers, 2)
    tally = np.zeros((problems * draws, width + 1), dtype=np.int32)  # last column: no answer
    cell = np.arange(problems * draws)
    margin = np.empty((len(ends), problems, draws), dtype=np.int32)
    end_of = {int(step): r for r, step in enumerate(ends)}
    for step in range(steps):
        drawn = answer[step].ravel()
        tally[cell, np.where(drawn >= 0, drawn, width)] += 1
        if step in end_of:
            top = np.partition(tally[:, :width], (width - 2, width - 1), axis=1)
            margin[end_of[step]] = (top[:, -1] - top[:, -2]).reshape(problems, draws)
    return margin


@dataclass
class Replay:
    """Per rule, per problem and ordering: samples used and the (target-averaged) correctness of the pick."""

    rules: list[AdaptiveRule]
    used: list[np.ndarray]  # (P, M) each
    right: list[np.ndarray]  # (P, M) each
    full: np.ndarray  # (P, M) correctness with the whole budget


def replay(ctx: ReportContext, codes: Sequence[str], targets: Sequence[str], budget: int,
           rules: Sequence[AdaptiveRule]) -> Replay:
    """Run every rule on the context's draws over pool ``codes`` with budget ``budget`` (vectorised)."""
    data = ctx.data
    view = ctx.view(codes, budget)
    size, rows, width = len(view.index), view.rows, data.lang.shape[1]
    language, depth = draw_steps(view.index, budget)
    slots = ctx.orders[language, depth][:, rows].astype(np.int64)  # (N, P, M) slot drawn at each step
    flat = slots + (rows * width)[None, :, None]
    answer, score = data.answer.ravel()[flat], data.score.ravel()[flat]
    best_score = np.maximum.accumulate(np.where((answer >= 0) & ~np.isnan(score), score, -np.inf), axis=0)
    ends = np.array([samples_used(r, size, budget) - 1 for r in range(1, math.ceil(budget / size) + 1)])
    margin = running_margin(answer, ends, data.answer_correct.shape[1])
    best_score = best_score[ends]

    by_rank, group_of = ctx.tie_orders(view, targets, use_scores=True)
    ranks = np.empty_like(by_rank)
    np.put_along_axis(ranks, by_rank, np.arange(width)[None, None], axis=2)
    local = slots + (np.arange(len(rows)) * width)[None, :, None]
    correct = data.correct[rows].ravel()
    right = np.zeros(best_score.shape)
    for group, weight in enumerate(np.bincount(group_of, minlength=len(by_rank)) / len(targets)):
        best = np.minimum.accumulate(ranks[group].ravel()[local], axis=0)[ends]  # (R, P, M) rank of the pick
        pick = by_rank[group].ravel()[best + (np.arange(len(rows)) * width)[None, :, None]]
        right += weight * correct[pick + (np.arange(len(rows)) * width)[None, :, None]]

    used, picked = [], []
    for rule in rules:
        stop = np.zeros(best_score.shape, dtype=bool)
        stop[-1] = True
        if rule.score is not None:
            stop |= best_score >= rule.score
        if rule.margin is not None:
            stop |= margin >= rule.margin
        rounds = stop.argmax(axis=0)  # (P, M), 0-based
        used.append(np.minimum((rounds + 1) * size, budget))
        picked.append(np.take_along_axis(right, rounds[None], axis=0)[0])
    return Replay(list(rules), used, picked, right[-1])


@dataclass
class AdaptiveReport:
    pool: tuple[str, ...]
    targets: tuple[str, ...]
    budget: int
    orderings: int
    seed: int
    tolerance: float  # points
    problems: int
    candidates: int
    generator: str
    verifier: str
    full_accuracy: float
    full_se: float
    rows: list[dict] = field(default_factory=list)
    best: dict | None = None
    notes: list[str] = field(default_factory=list)


def _ordering_se(values: np.ndarray) -> float:
    """Standard error over orderings of the mean of ``(P, M)`` values."""
    problems, draws = values.shape
    return float(np.sqrt(values.var(axis=1, ddof=1).sum() / draws) / problems) if draws > 1 else 0.0


def simulate(ctx: ReportContext, codes: Sequence[str], targets: Sequence[str], budget: int | None,
             rules: Sequence[AdaptiveRule] | None, tolerance: float = 0.5) -> AdaptiveReport:
    """Accuracy and mean samples used of each rule, and the cheapest rule within ``tolerance`` points."""
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be a finite number of accuracy points >= 0, got {tolerance!r}")
    data = ctx.data
    if not data.has_scores:
        raise ValueError("The adaptive simulation replays cross_orm (the bestofl preset), which needs verifier "
                         "scores, and the store has none; score the candidates with a verifier first.")
    view = ctx.view(codes, budget)
    if view.max_budget < 1:
        raise ValueError(f"No problem has candidates in every language of the pool {view.label}.")
    if budget is not None and budget > view.max_budget:
        raise ValueError(f"--budget {budget} is more than the pool {view.label} reaches ({view.max_budget} samples "
                         f"stored on every problem); pass --budget {view.max_budget} or less.")
    budget = view.max_budget
    rules = list(rules) if rules else default_rules(budget)
    result = replay(ctx, codes, targets, budget, rules)
    report = AdaptiveReport(
        pool=tuple(codes), targets=tuple(targets), budget=budget, orderings=ctx.orders.shape[3],
        seed=ctx.options.seed, tolerance=tolerance, problems=len(view.rows), candidates=int(view.stored.sum()),
        generator=data.generator, verifier=str(data.verifier),
        full_accuracy=float(result.full.mean()), full_se=_ordering_se(result.full),
    )
    full_by_problem = result.full.mean(axis=1)
    for rule, used, right in zip(rules, result.used, result.right):
        by_problem = right.mean(axis=1)
        low, high = paired_bootstrap(full_by_problem, by_problem, iters=2000, seed=ctx.options.seed)
        accuracy = float(right.mean())
        report.rows.append({
            "rule": str(rule), "family": rule.family, "score": rule.score, "margin": rule.margin,
            "accuracy": accuracy, "se": _ordering_se(right),
            "samples_mean": float(used.mean()), "samples_fraction": float(used.mean() / budget),
            "delta_vs_full": accuracy - report.full_accuracy, "delta_low": low, "delta_high": high,
            "within_tolerance": accuracy >= report.full_accuracy - tolerance / 100,
            "budget": budget, "problems": report.problems, "orderings": report.orderings,
        })
    within = [row for row in report.rows if row["within_tolerance"]]
    if within:
        report.best = min(within, key=lambda row: (row["samples_mean"], -row["accuracy"]))
    else:
        report.notes.append(f"No rule of the grid reaches the full budget's accuracy within {tolerance} points.")
    skipped = len(data.problem_ids) - report.problems
    if skipped:
        report.notes.append(f"{skipped} problem(s) lack some pool language or hold fewer than the budget's "
                            "samples and are left out.")
    return report


def summary_markdown(report: AdaptiveReport) -> str:
    lines = [
        "# Adaptive budget: accuracy vs samples used",
        "",
        f"- Generator: `{report.generator}`; verifier: `{report.verifier}`",
        f"- Pool `{':'.join(report.pool)}`, budget n = {report.budget}, targets {', '.join(report.targets)}; "
        f"{report.problems} problems, {report.candidates} candidates",
        f"- Each rule replays the harness's rounds (one candidate per pool language per round) on {report.orderings} "
        f"random orderings of the stored candidates of each language (seed {report.seed}); the pick is `cross_orm`'s. "
        "`se`: standard error over orderings; the difference to the full budget has a paired bootstrap 95% "
        "interval over problems.",
        f"- Full budget (n = {report.budget}): accuracy {100 * report.full_accuracy:.1f}% "
        f"(± {100 * _Z95 * report.full_se:.1f} over orderings)",
        "",
    ]
    if report.best is not None:
        best = report.best
        lines += [f"**Cheapest rule within {report.tolerance} points of the full budget: `adaptive={best['rule']}`**: "
                  f"accuracy {100 * best['accuracy']:.1f}% with {best['samples_mean']:.2f} samples per problem "
                  f"({100 * best['samples_fraction']:.0f}% of n = {report.budget}); difference "
                  f"{100 * best['delta_vs_full']:+.1f} points [{100 * best['delta_low']:+.1f}, "
                  f"{100 * best['delta_high']:+.1f}].", ""]
    lines += _table(["rule", "accuracy (%)", "mean samples", "% of n", "vs full (points, 95% interval)"], (
        [f"`{row['rule']}`", f"{100 * row['accuracy']:.1f} ± {100 * _Z95 * row['se']:.1f}",
         f"{row['samples_mean']:.2f}", f"{100 * row['samples_fraction']:.0f}",
         f"{100 * row['delta_vs_full']:+.1f} [{100 * row['delta_low']:+.1f}, {100 * row['delta_high']:+.1f}]"]
        for row in sorted(report.rows, key=lambda row: row["samples_mean"])))
    if report.notes:
        lines += ["## Notes", "", *(f"- {note}" for note in report.notes), ""]
    lines += ["## Files", "", f"- `{RULES_CSV}`: one row per rule", f"- `{PLOT}`", ""]
    return "\n".join(lines)


def figure(report: AdaptiveReport):
    """Accuracy vs mean samples used, one line per rule family, the full budget as a reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    families = list(dict.fromkeys(row["family"] for row in report.rows))
    for index, family in enumerate(families):
        rows = sorted((row for row in report.rows if row["family"] == family), key=lambda row: row["samples_mean"])
        ax.errorbar([row["samples_mean"] for row in rows], [100 * row["accuracy"] for row in rows],
                    yerr=[100 * _Z95 * row["se"] for row in rows], marker=_MARKERS[index % len(_MARKERS)],
                    markerfacecolor="none", capsize=3, label=family, alpha=0.85)
    full = 100 * report.full_accuracy
    ax.axhline(full, color="black", linewidth=1, label=f"full budget n = {report.budget}")
    ax.axhspan(full - report.tolerance, full + report.tolerance, color="grey", alpha=0.15,
               label=f"± {report.tolerance} points")
    if report.best is not None:
        ax.annotate(report.best["rule"], (report.best["samples_mean"], 100 * report.best["accuracy"]),
                    textcoords="offset points", xytext=(8, -14), fontsize=8, arrowprops={"arrowstyle": "-"})
    ax.set(xlabel="mean samples used per problem", ylabel="accuracy (%)",
           title=f"Adaptive budget: accuracy vs samples used (cross_orm, pool {':'.join(report.pool)})\n"
                 f"({report.problems} problems, {report.candidates} candidates, {report.orderings} orderings)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def files(report: AdaptiveReport) -> dict[str, bytes]:
    """The folder's files by name (written with ``render.write_folder``)."""
    return {RULES_CSV: _csv_bytes(report.rows), SUMMARY_MD: summary_markdown(report).encode("utf-8"),
            PLOT: _figure_bytes(figure(report))}
