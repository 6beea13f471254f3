"""Compute every report table from :class:`ReportData`: budget curves, pool ablations, pass@k, picks.

Methods (``METHOD_ORDER``): every selection of the registry ``bestofl_models.selection.methods.METHODS``, then
the baselines ``random`` and ``oracle`` (one sample picked uniformly / pass@n, among target-language
samples) and ``cross_random`` and ``cross_oracle`` (the same over the pool). Target-only methods spend the
budget ``n`` in the target language; the cross-lingual ones spread it over the pool with ``plan_samples``.
Each selection's estimator follows from its spec (:func:`estimator`): the top-ranked pick is exact (order
statistics), a vote is Monte Carlo. Methods without a verifier are reported verifier-free (ties by canonical
order), as their presets run without one. ``average`` rows are macro means over the target languages that have the method, at the
budgets all of them reach.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from ..selection.pool import validate_pool
from ..selection.methods import METHODS, Method
from .costs import cost_tables
from .data import ReportData, language_order
from .estimators import (
    draw_orders,
    exact_best_of_n,
    exact_oracle,
    exact_random,
    feasible_budget,
    monte_carlo_top_k_vote,
    monte_carlo_vote,
)

#: Baselines (not selections): one sample picked uniformly / pass@n, in the target language and over the pool.
TARGET_BASELINES = ("random", "oracle")
CROSS_BASELINES = ("cross_random", "cross_oracle")
#: The selections, then the baselines.
METHOD_ORDER = (*METHODS, *TARGET_BASELINES, *CROSS_BASELINES)
CROSS_METHODS = (*(name for name, m in METHODS.items() if not m.target_only), *CROSS_BASELINES)
TARGET_METHODS = (*(name for name, m in METHODS.items() if m.target_only), *TARGET_BASELINES)
EXACT = "exact"
MONTE_CARLO = "monte_carlo"
AVERAGE = "average"


def estimator(name: str) -> str:
    """``exact`` or ``monte_carlo``: how the report estimates method ``name`` (a selection or a baseline)."""
    return MONTE_CARLO if name in METHODS and METHODS[name].vote is not None else EXACT


def reported(names: Sequence[str], has_scores: bool) -> list[str]:
    """The methods of ``names`` a store can report: without verifier scores, those that need none."""
    return [name for name in names if has_scores or name not in METHODS or not METHODS[name].needs_verifier]


@dataclass(frozen=True)
class Options:
    languages: tuple[str, ...] | None = None  # main pool, in order (default: every stored language)
    targets: tuple[str, ...] | None = None
    pools: tuple[tuple[str, ...], ...] = ()  # extra pools to ablate
    budget: int | None = None  # one budget for every summary table (default: each method's / pool's own largest)
    max_budget: int | None = None
    seed: int = 0
    mc_samples: int = 200


@dataclass
class Report:
    data: ReportData
    options: Options
    pool: tuple[str, ...]
    targets: tuple[str, ...]
    budget: int  # --budget, or the largest budget of the main pool (what a run of the cross-lingual methods spent)
    ablation_budget: int  # the largest budget every ablation pool reaches
    curves: list[dict] = field(default_factory=list)
    ablation: list[dict] = field(default_factory=list)
    pass_at_k: list[dict] = field(default_factory=list)
    selected: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: what the answers cost (:mod:`.costs`): per language, every curve row with its tokens, compute-matched
    language_costs: list[dict] = field(default_factory=list)
    token_curves: list[dict] = field(default_factory=list)
    compute_matched: list[dict] = field(default_factory=list)

    @property
    def fixed(self) -> bool:
        """True when ``--budget`` set one budget for every table; otherwise each method, pool and scope is shown at
        its own largest budget (the run's own n)."""
        return self.options.budget is not None

    def _largest(self, table: str, columns: tuple[str, ...], size: str) -> dict[tuple, int]:
        """The largest ``size`` (n or k) of each value of ``columns`` in ``table`` (computed once per table and
        columns)."""
        cache = self.__dict__.setdefault("_largest_cache", {})
        if (table, columns) not in cache:
            largest: dict[tuple, int] = {}
            for row in getattr(self, table):
                key = tuple(row[c] for c in columns)
                largest[key] = max(largest.get(key, 0), row[size])
            cache[table, columns] = largest
        return cache[table, columns]

    def _at(self, reached: int | None) -> int | None:
        return None if reached is None else self.budget if self.fixed else reached

    def cell_budget(self, target: str, method: str) -> int | None:
        """The n of the summary's cell (target, method): ``--budget``, or the largest n the method reaches for
        that target (None: no row)."""
        return self._at(self._largest("curves", ("target", "method"), "n").get((target, method)))

    def method_budget(self, method: str) -> int | None:
        """The n of a method's column: its ``average`` row's (or ``--budget``)."""
        return self.cell_budget(AVERAGE, method)

    def pool_budget(self, pool: str) -> int | None:
        """The n an ablation pool is shown at: ``--budget``, or the largest it reaches."""
        return self._at(self._largest("ablation", ("pool",), "n").get((pool,)))

    def ablation_cell_budget(self, pool: str, method: str) -> int | None:
        """The n of an ablation cell: ``--budget``, or the largest n the method reaches in that pool (the pool's
        own largest for the exact methods; the budget every pool reaches for the Monte Carlo votes)."""
        return self._at(self._largest("ablation", ("pool", "method"), "n").get((pool, method)))

    def scope_budget(self, scope: str) -> int | None:
        """The k of a pass@k scope: ``--budget``, or the largest k it reaches."""
        return self._at(self._largest("pass_at_k", ("scope",), "k").get((scope,)))


@dataclass(frozen=True)
class PoolView:
    """The problems that have candidates in every language of ``codes``, and their counts."""

    codes: tuple[str, ...]
    index: np.ndarray  # data language index of each pool language
    rows: np.ndarray  # problem rows
    stored: np.ndarray  # (P', L)
    right: np.ndarray  # (P', L) correct candidates
    max_budget: int

    @property
    def label(self) -> str:
        return ":".join(self.codes)


class ReportContext:
    """Shared state of one report run: data, per-language correct counts, the Monte Carlo draws."""

    def __init__(self, data: ReportData, options: Options):
        self.data = data
        self.options = options
        self.progress: Callable[[int], object] | None = None
        languages = np.arange(len(data.languages))
        self.right = ((data.lang[:, :, None] == languages) & data.correct[:, :, None]).sum(axis=1)
        rng = np.random.default_rng([options.seed, zlib.crc32(b"bestofl-report-draws")])
        self.orders = draw_orders(data.stored, data.offsets, options.mc_samples, rng)

    def view(self, codes: Sequence[str], cap: int | None, among: np.ndarray | None = None) -> PoolView:
        """The pool ``codes`` over the problems (of ``among``, default all) that have every one of its languages."""
        codes = validate_pool(codes)
        missing = [code for code in codes if code not in self.data.languages]
        if missing:
            raise ValueError(
                f"No stored candidates in {', '.join(missing)}; the store has {', '.join(self.data.languages)}."
            )
        index = np.array([self.data.languages.index(code) for code in codes])
        rows = np.flatnonzero((self.data.stored[:, index] > 0).all(axis=1))
        if among is not None:
            rows = np.intersect1d(rows, among)
        stored = self.data.stored[rows][:, index]
        budget = feasible_budget(stored)
        return PoolView(codes, index, rows, stored, self.right[rows][:, index], min(budget, cap or budget))

    def tie_orders(self, view: PoolView, targets: Sequence[str], use_scores: bool) -> tuple[np.ndarray, list[int]]:
        """Selection-rank orders (best first) of the view's problems, one per group of targets that rank alike.

        The rank is ``selection.rank_order``'s (without scores for the self-consistency methods); slots
        outside the pool come last. Returns ``(G, P', X)`` slot orders and each target's group."""
        data, rows = self.data, view.rows
        pool_position = np.full(len(data.languages) + 1, len(view.index) + 1)  # [-1]: padding
        pool_position[view.index] = np.arange(1, len(view.index) + 1)
        lang = data.lang[rows]
        position = pool_position[lang]
        outside = position > len(view.index)
        key = outside * 2 + (data.answer[rows] < 0)  # most significant first
        if use_scores:
            score = data.score[rows]
            dense = np.unique(np.where(np.isnan(score), np.inf, -score), return_inverse=True)[1].reshape(score.shape)
            key = key * (dense.max() + 1) + dense  # missing/NaN scores rank last (inf)
        within = data.within[rows]
        key = key * (len(view.index) + 2)
        orders: list[np.ndarray] = []
        seen: dict[bytes, int] = {}
        group_of = []
        for target in targets:
            code = data.languages.index(target) if target in data.languages else -2
            canonical = np.where((lang == code) & ~outside, 0, position)
            order = np.argsort((key + canonical) * (within.max() + 1) + within, axis=1)
            group_of.append(seen.setdefault(order.tobytes(), len(orders)))
            if group_of[-1] == len(orders):
                orders.append(order)
        return np.stack(orders), group_of

    def curves(
        self, view: PoolView, targets: Sequence[str], methods: Sequence[str], average: bool = True
    ) -> tuple[dict, dict]:
        """``{method: {target: (accuracy (N,), se (N,))}}`` and, for the ORM method, ``{target: (N, L)}`` the
        distribution of the chosen candidate's language; with ``average``, AVERAGE is one more target."""
        curves: dict = {}
        shares: dict = {}
        for method in methods:
            spec = METHODS.get(method)
            if spec is not None and spec.vote is None:
                curves[method], shares = self._best_of_n(view, targets)
            elif spec is not None:
                curves[method] = self._vote(view, targets, spec)
            else:
                estimate = exact_random if method.endswith("random") else exact_oracle
                accuracy = estimate(view.stored, view.right, view.max_budget).mean(axis=1)
                curves[method] = {t: (accuracy, np.zeros(view.max_budget)) for t in [*targets, AVERAGE]}
        if not average:
            for per_target in [*curves.values(), shares]:
                per_target.pop(AVERAGE, None)
        return curves, shares

    def _best_of_n(self, view: PoolView, targets: Sequence[str]) -> tuple[dict, dict]:
        results, group_of = self.best_of_n_by_problem(view, targets)
        accuracy = {t: results[g][0].mean(axis=1) for t, g in zip(targets, group_of)}
        accuracy[AVERAGE] = np.mean([accuracy[t] for t in targets], axis=0)
        shares = {t: results[g][1].mean(axis=1) for t, g in zip(targets, group_of)}
        shares[AVERAGE] = np.mean([shares[t] for t in targets], axis=0)
        return {t: (a, np.zeros(view.max_budget)) for t, a in accuracy.items()}, shares

    def best_of_n_by_problem(
        self, view: PoolView, targets: Sequence[str]
    ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[int]]:
        """Exact ``cross_orm`` per problem: for each group of targets that rank alike, ``(N, P')`` accuracy and
        ``(N, P', L)`` chosen-language shares (:func:`exact_best_of_n`); and each target's group."""
        data, budget = self.data, view.max_budget
        by_rank, group_of = self.tie_orders(view, targets, use_scores=True)
        width = int(view.stored.sum(axis=1).max())
        pool_lang = np.full(len(data.languages) + 1, -1)
        pool_lang[view.index] = np.arange(len(view.index))
        lang, correct = pool_lang[data.lang[view.rows]], data.correct[view.rows]

        def best_of_n(rows: np.ndarray | slice, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return exact_best_of_n(
                np.take_along_axis(lang[rows], order[rows], axis=1),
                np.take_along_axis(correct[rows], order[rows], axis=1),
                view.stored[rows],
                budget,
            )

        first = by_rank[0, :, :width]
        results = [best_of_n(slice(None), first)]
        for order in by_rank[1:, :, :width]:
            # Groups differ only in tie-breaks: recompute just the problems ranked differently.
            rows = np.flatnonzero((order != first).any(axis=1))
            accuracy, share = results[0][0].copy(), results[0][1].copy()
            if rows.size:
                accuracy[:, rows], share[:, rows] = best_of_n(rows, order)
            results.append((accuracy, share))
        return results, group_of

    def vote_rates(self, view: PoolView, targets: Sequence[str], spec: Method) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Monte Carlo of the vote ``spec``: ``(G, N, P')`` fraction of draws picking right per group of targets
        that rank alike, ``(N, P')`` the variance of their weighted mix (:func:`monte_carlo_vote`), each target's
        group. Ranked with scores only when the method needs a verifier."""
        data, problems = self.data, len(view.rows)
        by_rank, group_of = self.tie_orders(view, targets, use_scores=spec.needs_verifier)
        ranks = np.empty_like(by_rank, dtype=np.int32)
        np.put_along_axis(ranks, by_rank, np.arange(by_rank.shape[2], dtype=np.int32)[None, None], axis=2)
        group_weight = np.bincount(group_of, minlength=len(by_rank)) / len(targets)
        weight = np.nan_to_num(data.score[view.rows], nan=0.0) if spec.vote == "score" else None
        inputs = (self.orders if problems == len(data.problem_ids) else self.orders[:, :, view.rows], view.index,
                  view.max_budget, data.answer[view.rows], data.answer_correct[view.rows], ranks, group_weight)
        if spec.top_k is None:
            rate, mix_variance = monte_carlo_vote(*inputs, weight=weight, progress=self.progress)
        else:
            if weight is None:
                weight = (data.answer[view.rows] >= 0).astype(np.float64)  # a count vote: one per answer
            rate, mix_variance = monte_carlo_top_k_vote(*inputs, weight=weight, top_k=spec.top_k,
                                                        progress=self.progress)
        return rate, mix_variance, group_of

    def _vote(self, view: PoolView, targets: Sequence[str], spec: Method) -> dict:
        draws, problems = self.options.mc_samples, len(view.rows)
        rate, mix_variance, group_of = self.vote_rates(view, targets, spec)
        group_weight = np.bincount(group_of, minlength=rate.shape[0]) / len(targets)
        se = np.sqrt((rate * (1 - rate)).sum(axis=2) / max(draws - 1, 1)) / problems  # (G, N)
        curves = {t: (rate[g].mean(axis=1), se[g]) for t, g in zip(targets, group_of)}
        curves[AVERAGE] = (group_weight @ rate.mean(axis=2), np.sqrt(mix_variance.sum(axis=1) / draws) / problems)
        return curves


def _rows(pool: str, curves: dict, problems: int, extra: dict | None = None) -> list[dict]:
    rows = []
    for method in METHOD_ORDER:
        for target, (accuracy, se) in curves.get(method, {}).items():
            for n in range(len(accuracy)):
                rows.append({
                    **(extra or {}),
                    "pool": pool,
                    "target": target,
                    "method": method,
                    "n": n + 1,
                    "accuracy": float(accuracy[n]),
                    "se": float(se[n]),
                    "estimator": estimator(method),
                    "problems": problems,
                })
    return rows


def _average_target_only(rows: list[dict], targets: Sequence[str]) -> list[dict]:
    """Macro average over targets of the target-only methods, at the budgets every such target reaches."""
    averaged = []
    for method in TARGET_METHODS:
        by_target: dict[str, dict[int, dict]] = {}
        for row in rows:
            if row["method"] == method:
                by_target.setdefault(row["target"], {})[row["n"]] = row
        if not by_target:
            continue
        for n in range(1, min(len(v) for v in by_target.values()) + 1):
            cells = [by_target[t][n] for t in targets if t in by_target]
            averaged.append({
                **cells[0],
                "target": AVERAGE,
                "accuracy": float(np.mean([c["accuracy"] for c in cells])),
                "se": float(np.sqrt(sum(c["se"] ** 2 for c in cells)) / len(cells)),
                "problems": min(c["problems"] for c in cells),
            })
    return averaged


def ablation_pools(pool: Sequence[str], extra: Sequence[Sequence[str]]) -> list[tuple[str, tuple[str, ...]]]:
    """``(kind, pool)``: prefixes of ``pool`` of every size, ``pool`` without English, then ``extra``."""
    pools = [(f"size {k}", tuple(pool[:k])) for k in range(1, len(pool) + 1)]
    if "en" in pool and len(pool) > 1:
        pools.append(("without en", tuple(code for code in pool if code != "en")))
    pools += [("custom", tuple(p)) for p in extra]
    unique: dict[tuple[str, ...], str] = {}
    for kind, languages in pools:
        unique.setdefault(languages, kind)
    return [(kind, languages) for languages, kind in unique.items()]


def default_targets(data: ReportData) -> tuple[str, ...]:
    """With ``--tasks``: the target languages the selected tasks' requests had (what the runs asked for).
    Without: every stored language and stored target language, in the data's language order."""
    if data.tasks is not None and data.stored_targets:
        return language_order(data.stored_targets, data.languages)
    return language_order(set(data.stored_targets) | set(data.languages), data.languages)


def build_report(data: ReportData, options: Options, show_progress: bool | None = None) -> Report:
    """All tables. ``show_progress``: a tqdm bar over the Monte Carlo steps (None: only on large stores)."""
    ctx = ReportContext(data, options)
    pool = validate_pool(options.languages or data.languages)
    targets = validate_pool(options.targets or default_targets(data))
    main = ctx.view(pool, options.max_budget)
    if main.max_budget < 1:
        raise ValueError(f"No problem has candidates in every language of the pool {main.label}.")
    target_views = {t: ctx.view((t,), options.max_budget) for t in targets if t in data.languages}
    pools = [(kind, ctx.view(languages, options.max_budget)) for kind, languages in ablation_pools(pool, options.pools)]
    empty = [view.label for _, view in pools if view.max_budget < 1]
    if empty:
        raise ValueError(f"No problem has candidates in every language of the pool(s) {', '.join(empty)}.")
    ablation_budget = min(view.max_budget for _, view in pools)
    if options.budget is not None:  # one budget for every table: no pool needs curves beyond it
        pools = [(kind, dataclasses.replace(view, max_budget=min(view.max_budget, options.budget)))
                 for kind, view in pools]
    cross = reported(CROSS_METHODS, data.has_scores)
    target_only = reported(TARGET_METHODS, data.has_scores)
    budget = options.budget or main.max_budget
    if not 1 <= budget <= main.max_budget:
        raise ValueError(f"--budget {budget} is outside 1..{main.max_budget}, the budgets the pool {main.label} reaches.")
    report = Report(data, options, pool, targets, budget, ablation_budget, notes=list(data.notes))

    votes = sum(estimator(m) == MONTE_CARLO for m in cross)
    target_votes = sum(estimator(m) == MONTE_CARLO for m in target_only)
    vote_budget = ablation_budget
    steps = (votes * (main.max_budget + (sum(view.max_budget for _, view in pools) if options.budget is not None
                                         else vote_budget * len(pools)))
             + target_votes * sum(v.max_budget for v in target_views.values()))
    if show_progress is None:
        disable = None if data.lang.size >= 10_000 else True  # None: tqdm shows it on terminals only
    else:
        disable = not show_progress
    with tqdm(total=steps, desc="report (Monte Carlo steps)", disable=disable) as bar:
        ctx.progress = bar.update
        main_curves, main_shares = ctx.curves(main, targets, cross)
        report.curves = _rows(main.label, main_curves, len(main.rows))
        for view in target_views.values():
            report.curves += _rows(main.label, ctx.curves(view, view.codes, target_only, average=False)[0],
                                   len(view.rows))
        report.curves += _average_target_only(report.curves, targets)
        cost_tables(report, main, target_views, CROSS_METHODS, AVERAGE)
        exact = [m for m in cross if estimator(m) == EXACT]
        monte_carlo = [m for m in cross if estimator(m) == MONTE_CARLO]
        for kind, view in pools:
            # The exact methods to each pool's own largest budget; the Monte Carlo votes, whose cost grows with n,
            # to the budget every pool reaches (or --budget), as before: a report of a large store stays fast.
            curves = ctx.curves(view, targets, exact)[0]
            if monte_carlo:
                cut = view if report.fixed else dataclasses.replace(view, max_budget=vote_budget)
                curves.update(ctx.curves(cut, targets, monte_carlo)[0])
            report.ablation += _rows(view.label, curves, len(view.rows), {"kind": kind, "pool_size": len(view.codes)})

    for target, share in main_shares.items():
        for n in range(share.shape[0]):
            for position, code in enumerate(pool):
                report.selected.append({"target": target, "n": n + 1, "lang": code, "share": float(share[n, position])})
    for code in data.languages:
        view = ctx.view((code,), None)
        for k, value in enumerate(exact_oracle(view.stored, view.right, view.max_budget).mean(axis=1), start=1):
            report.pass_at_k.append({"scope": code, "k": k, "pass_at_k": float(value), "problems": len(view.rows)})
    for k, value in enumerate(main_curves["cross_oracle"][AVERAGE][0], start=1):  # the same for every target
        report.pass_at_k.append({"scope": f"pool {main.label}", "k": k, "pass_at_k": float(value),
                                 "problems": len(main.rows)})

    missing_targets = [t for t in targets if t not in data.languages]
    if missing_targets:
        report.notes.append(f"No candidates in target language(s) {', '.join(missing_targets)}: "
                            "only the cross-lingual methods are reported for them.")
    if len(main.rows) < len(data.problem_ids):
        report.notes.append(f"{len(data.problem_ids) - len(main.rows)} problem(s) lack some pool language and are "
                            f"left out of the pool {main.label}.")
    return report
