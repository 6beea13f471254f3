"""Adaptive budget: the rule module, and the report's vectorised replay against a loop over the pure functions."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from bestofl_models.selection.adaptive import (
    AdaptiveRule,
    plan_rounds,
    samples_used,
    should_stop,
    stopping_round,
    top_score,
    vote_margin,
)
from bestofl_models.selection.pool import plan_samples
from bestofl_models.report import cli
from bestofl_models.report.adaptive_budget import (
    PLOT,
    RULES_CSV,
    default_rules,
    replay,
    simulate,
)
from bestofl_models.report.build import Options, ReportContext, build_report
from bestofl_models.report.data import build_data, load_stores
from bestofl_models.report.estimators import draw_steps
from bestofl_models.report.synthetic import build_synthetic_store
from bestofl_models.selection.methods import Scored, select
from bestofl_models.store import CandidateStore

POOL = ("en", "de", "fr")
RULES = [AdaptiveRule(score=0.8), AdaptiveRule(score=0.5), AdaptiveRule(margin=1), AdaptiveRule(margin=2),
         AdaptiveRule(score=0.9, margin=2)]


def c(lang, i, answer, score):
    return Scored(key=f"{lang}-{i}", lang=lang, sample_idx=i, answer=answer, score=score)


@pytest.mark.parametrize("text, rule", [
    ("score:0.9", AdaptiveRule(score=0.9)),
    ("margin:3", AdaptiveRule(margin=3)),
    (" Score:0.95 + margin:2 ", AdaptiveRule(score=0.95, margin=2)),
    ("margin:2+score:1", AdaptiveRule(score=1.0, margin=2)),
])
def test_rules_parse_and_print_canonically(text, rule):
    assert AdaptiveRule.parse(text) == rule
    assert AdaptiveRule.parse(str(rule)) == rule
    assert rule.needs_verifier == (rule.score is not None)


@pytest.mark.parametrize("text, message", [
    ("", "cannot read"), ("score", "cannot read"), ("votes:3", "cannot read"), ("score:high", "not a number"),
    ("score:0", "not a probability"), ("score:1.5", "not a probability"), ("margin:0", "not a vote margin"),
    ("margin:2.5", "not a whole number"), ("score:0.9+score:0.8", "score twice"),
])
def test_bad_rules_say_what_to_write(text, message):
    with pytest.raises(ValueError, match=message) as caught:
        AdaptiveRule.parse(text)
    assert "score:0.9+margin:3" in str(caught.value)


def test_rounds_are_plan_samples_in_pool_sized_chunks():
    rounds = plan_rounds(8, POOL)
    assert [slot for r in rounds for slot in r] == plan_samples(8, POOL)
    assert [len(r) for r in rounds] == [3, 3, 2]
    assert [samples_used(r, 3, 8) for r in (1, 2, 3)] == [3, 6, 8]


def test_score_and_margin_tests_on_hand_made_candidates():
    drawn = [c("en", 0, "4", 0.6), c("de", 0, "5", 0.7), c("fr", 0, None, 0.99),  # round 1
             c("en", 1, "4", 0.85), c("de", 1, "4", float("nan")), c("fr", 1, "4", None)]  # round 2
    assert top_score(drawn[:3]) == 0.7  # the answerless 0.99 does not count
    assert vote_margin(drawn[:3]) == 0 and vote_margin(drawn) == 3 and vote_margin(drawn[:1]) == 1
    assert vote_margin([]) == 0 and top_score([]) == -math.inf
    assert stopping_round(AdaptiveRule(score=0.8), drawn, 3, 6) == 2
    assert stopping_round(AdaptiveRule(score=0.7), drawn, 3, 6) == 1
    assert stopping_round(AdaptiveRule(margin=3), drawn, 3, 6) == 2
    assert stopping_round(AdaptiveRule(margin=4), drawn, 3, 6) == 2  # the budget is used
    assert should_stop(AdaptiveRule(score=0.99, margin=1), drawn[:1])
    with pytest.raises(ValueError, match="n=6 candidates"):
        stopping_round(AdaptiveRule(margin=1), drawn[:5], 3, 6)


@pytest.fixture(scope="module")
def tied_store(tmp_path_factory):
    """6 problems x 3 languages x 3 samples; scores rounded to 1 decimal (exact ties), 20% None or NaN."""
    directory = tmp_path_factory.mktemp("adaptive-store")
    build_synthetic_store(str(directory), problems=6, languages=POOL, samples_per_language=3, seed=4,
                          score_decimals=1, missing_scores=0.2, text=False)
    return str(directory)


@pytest.mark.parametrize("budget", [9, 7])
def test_replay_matches_a_loop_over_the_pure_functions(tied_store, budget):
    """Per problem and ordering: the rounds stopping_round gives, and what select('cross_orm') picks then."""
    data = build_data(load_stores([tied_store]))
    draws, targets = 5, ("de", "fr")
    ctx = ReportContext(data, Options(seed=2, mc_samples=draws))
    result = replay(ctx, POOL, targets, budget, RULES)
    view = ctx.view(POOL, budget)
    language, depth = draw_steps(view.index, budget)
    sequence = ctx.orders[language, depth]  # (N, P, M) slot drawn at each step
    store = CandidateStore(tied_store, read_only=True)
    stored = {(x.problem_id, x.lang, x.sample_idx): x for x in store.candidates()}
    scores = store.scores("synthetic-verifier")
    for p, problem_id in enumerate(data.problem_ids):
        for m in range(draws):
            drawn = []
            for x in sequence[:, p, m]:
                candidate = stored[(problem_id, data.languages[data.lang[p, x]], int(data.within[p, x]))]
                score = scores[(candidate.key, "synthetic-verifier")]
                drawn.append(Scored(candidate.key, candidate.lang, candidate.sample_idx, candidate.answer,
                                    math.nan if score is None else score))
            gold = candidate.gold
            for rule, used, right in zip(RULES, result.used, result.right):
                rounds = stopping_round(rule, drawn, len(POOL), budget)
                assert used[p, m] == samples_used(rounds, len(POOL), budget), (rule, problem_id, m)
                picks = [select("cross_orm", drawn[:used[p, m]], t, POOL).answer == gold for t in targets]
                assert right[p, m] == pytest.approx(np.mean(picks), abs=1e-12), (rule, problem_id, m)
            full = [select("cross_orm", drawn, t, POOL).answer == gold for t in targets]
            assert result.full[p, m] == pytest.approx(np.mean(full), abs=1e-12)


def test_simulation_names_the_cheapest_rule_within_tolerance_and_the_cli_writes_it(tied_store, tmp_path):
    data = build_data(load_stores([tied_store]))
    ctx = ReportContext(data, Options(seed=0, mc_samples=20))
    report = simulate(ctx, POOL, POOL, None, None, tolerance=0.5)
    # With every stored candidate used, the full budget is cross_orm's exact accuracy at n = 9.
    exact = build_report(data, Options(languages=POOL, targets=POOL, mc_samples=4), show_progress=False)
    full = [r["accuracy"] for r in exact.curves if r["method"] == "cross_orm" and r["target"] == "average"][-1]
    assert report.budget == 9 and report.full_accuracy == pytest.approx(full, abs=1e-12) and report.full_se == 0
    assert [row["rule"] for row in report.rows] == [str(rule) for rule in default_rules(9)]
    within = [row for row in report.rows if row["accuracy"] >= report.full_accuracy - 0.005]
    assert report.best == min(within, key=lambda row: (row["samples_mean"], -row["accuracy"]))
    for row in report.rows:
        assert 3 <= row["samples_mean"] <= 9 and row["delta_low"] <= row["delta_vs_full"] + 1e-12

    out = tmp_path / "adaptive"
    assert cli.main(["adaptive", "--store", tied_store, "--out", str(out), "--languages", "en:de:fr", "--targets",
                     "en:de:fr", "--rule", "margin:2", "--rule", "score:0.9+margin:2", "--orderings", "20",
                     "--tolerance", "100"]) == 0
    with open(out / RULES_CSV, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["rule"] for r in rows] == ["margin:2", "score:0.9+margin:2"]
    assert {r["margin"]: float(r["accuracy"]) for r in rows}["2"] == pytest.approx(report.rows[
        [row["rule"] for row in report.rows].index("margin:2")]["accuracy"])
    assert (out / PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "adaptive=" in (out / "summary.md").read_text(encoding="utf-8")


def test_adaptive_cli_errors_say_what_to_change(tied_store, tmp_path, capsys):
    for argv, message in [
        (["--rule", "votes:3"], "cannot read"),
        (["--budget", "10"], "pass --budget 9 or less"),
        (["--languages", "en:xx"], "No stored candidates in xx"),
    ]:
        with pytest.raises(SystemExit):
            cli.main(["adaptive", "--store", tied_store, "--out", str(tmp_path / "r"), *argv])
        assert message in capsys.readouterr().err
    unscored = tmp_path / "unscored"
    build_synthetic_store(str(unscored), problems=2, languages=POOL, samples_per_language=1, verifier=None, text=False)
    with pytest.raises(SystemExit):
        cli.main(["adaptive", "--store", str(unscored), "--out", str(tmp_path / "r")])
    assert "needs verifier scores" in capsys.readouterr().err


#: A small model's spread: English best, low-resource languages far behind; the verifier separates correct from
#: wrong answers less well in weaker languages (score = sigmoid(N(0, 1) + separation) when correct).
REALISTIC = {"languages": ("en", "de", "fr", "es", "ru", "zh", "ja", "th"),
             "accuracies": (0.45, 0.36, 0.37, 0.38, 0.30, 0.28, 0.20, 0.12),
             "separation": (1.4, 1.3, 1.3, 1.3, 1.1, 1.1, 0.9, 0.8)}


@pytest.fixture(scope="module")
def realistic(tmp_path_factory):
    directory = tmp_path_factory.mktemp("realistic")
    build_synthetic_store(str(directory), problems=200, samples_per_language=4, seed=11, text=False, **REALISTIC)
    data = build_data(load_stores([str(directory)]))
    return simulate(ReportContext(data, Options(seed=0, mc_samples=50)), data.languages, data.languages, None, None)


def test_on_a_realistic_store_the_best_rule_saves_samples_at_full_accuracy(realistic):
    best = realistic.best
    assert best is not None and best["accuracy"] >= realistic.full_accuracy - 0.005
    assert best["samples_fraction"] < 1
    cheapest = min(realistic.rows, key=lambda row: row["samples_mean"])
    assert cheapest["accuracy"] < realistic.full_accuracy - 0.05  # stopping after one round costs accuracy


@pytest.mark.xfail(strict=True, reason="measured: the cheapest rule within 0.5 points (score:0.93) uses 73% of "
                   "n=32 on this store (score:0.95, 70% of n=64 with 8 samples per language); the issue's 60% does "
                   "not hold here")
def test_issue_target_sixty_percent_of_the_samples(realistic):
    assert realistic.best["samples_fraction"] <= 0.6
