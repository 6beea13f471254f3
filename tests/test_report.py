"""Reports from stored candidates: estimators checked against brute force and the export, files, CLI."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import itertools
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from bestofl_models.selection.pool import plan_samples, samples_per_language
from bestofl_models.report import cli
from bestofl_models.report.build import AVERAGE, Options, ReportContext, build_report
from bestofl_models.report.data import build_data, load_stores, settings_id
from bestofl_models.report.estimators import draw_steps
from bestofl_models.report.export import EXPORT_FIELDS
from bestofl_models.report.render import PLOTS, REPORT_MARKER, SUMMARY_MD, summary_markdown
from bestofl_models.report.synthetic import build_synthetic_store
from bestofl_models.selection.methods import METHODS, Scored, select
from fixtures import DATA_DIR
from bestofl_models.store import Candidate, CandidateStore

POOL = ("en", "de", "fr")
CONTRACT_FIELDS = {"problem_id", "task", "doc_id", "target_lang", "lang", "sample_idx", "generator", "text",
                   "answer", "score", "verifier", "gold", "correct"}


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """5 problems x 3 languages x 4 samples; scores rounded to 1 decimal (many exact ties), 20% None or NaN."""
    directory = tmp_path_factory.mktemp("store")
    build_synthetic_store(str(directory), problems=5, languages=POOL, samples_per_language=4, seed=3,
                          score_decimals=1, missing_scores=0.2, text=False)
    return str(directory)


@pytest.fixture(scope="module")
def exported(small_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "export.jsonl"
    assert cli.main(["export", "--store", small_store, "--out", str(out)]) == 0
    return [json.loads(line) for line in out.read_bytes().splitlines()]


@pytest.fixture(scope="module")
def report(small_store):
    data = build_data(load_stores([small_store]))
    return build_report(data, Options(languages=POOL, mc_samples=64, seed=5), show_progress=False)


def by_problem(records):
    grouped = defaultdict(list)
    for r in records:
        grouped[r["problem_id"]].append(r)
    return grouped


def scored(r, with_score=True):
    """Selection's view of an exported candidate. A missing score becomes NaN (ranks the same), because
    the report ranks subsets that happen to hold no score at all instead of refusing them as ``select`` does."""
    score = (float("nan") if r["score"] is None else r["score"]) if with_score else None
    return Scored(key=r["key"], lang=r["lang"], sample_idx=r["sample_idx"], answer=r["answer"], score=score)


def stratified_subsets(records, n, pool):
    """Every subset of a problem's candidates with plan_samples' per-language counts for budget n."""
    counts = samples_per_language(n, pool)
    per_language = [[r for r in records if r["lang"] == lang] for lang in pool]
    choices = [itertools.combinations(rs, counts[lang]) for lang, rs in zip(pool, per_language)]
    for parts in itertools.product(*choices):
        yield [r for part in parts for r in part]


def curve(report, target, method):
    rows = sorted((r for r in report.curves if r["target"] == target and r["method"] == method), key=lambda r: r["n"])
    return np.array([r["accuracy"] for r in rows])


def test_export_has_the_contract_fields(exported):
    assert len(exported) == 5 * 3 * 4
    assert any(r["score"] is None for r in exported) and any(r["answer"] is None for r in exported)
    for record in exported:
        assert set(EXPORT_FIELDS) <= set(record) and CONTRACT_FIELDS <= set(record)
        assert record["generator"] == "synthetic-generator"
        assert record["correct"] == (record["answer"] == record["gold"])
        assert record["verifier"] == "synthetic-verifier"
        assert record["score"] is None or 0 <= record["score"] <= 1


def test_pass_at_k_matches_the_unbiased_estimator_from_the_export(report, exported):
    rows = {(r["scope"], r["k"]): r["pass_at_k"] for r in report.pass_at_k}
    for lang in POOL:
        for k in range(1, 5):
            expected = []
            for records in by_problem(exported).values():
                mine = [r for r in records if r["lang"] == lang]
                c, right = len(mine), sum(r["correct"] for r in mine)
                expected.append(1 - math.comb(c - right, k) / math.comb(c, k))
            assert rows[(lang, k)] == pytest.approx(np.mean(expected), abs=1e-12)
    # Across the pool: the same estimator over stratified subsets, checked by enumeration.
    for n in range(1, 13):
        expected = np.mean([
            np.mean([any(r["correct"] for r in subset) for subset in stratified_subsets(records, n, POOL)])
            for records in by_problem(exported).values()
        ])
        assert rows[(f"pool {':'.join(POOL)}", n)] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("target", POOL)
def test_best_of_n_equals_brute_force_over_all_subsets(report, exported, target):
    """Order statistics (with exact tie handling) against ``select`` on every stratified subset."""
    problems = by_problem(exported).values()
    cross = [
        np.mean([np.mean([select("cross_orm", [scored(r) for r in s], target, POOL).answer == records[0]["gold"]
                          for s in stratified_subsets(records, n, POOL)]) for records in problems])
        for n in range(1, 13)
    ]
    np.testing.assert_allclose(curve(report, target, "cross_orm"), cross, atol=1e-12)
    multi = [
        np.mean([np.mean([select("multi_orm", [scored(r) for r in s], target, POOL).answer == records[0]["gold"]
                          for s in itertools.combinations([r for r in records if r["lang"] == target], n)])
                 for records in problems])
        for n in range(1, 5)
    ]
    np.testing.assert_allclose(curve(report, target, "multi_orm"), multi, atol=1e-12)


def test_random_choice_is_the_fraction_correct(report, exported):
    problems = by_problem(exported).values()
    for n in range(1, 13):
        expected = np.mean([np.mean([np.mean([r["correct"] for r in s]) for s in stratified_subsets(records, n, POOL)])
                            for records in problems])
        assert curve(report, "de", "cross_random")[n - 1] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("method", [name for name, m in METHODS.items() if m.vote is not None])
def test_vote_kernel_agrees_with_select_on_every_draw(small_store, method):
    """The vectorized vote of every voting method picks what ``select`` picks on the very same subsets, for every
    target."""
    data = build_data(load_stores([small_store]))
    ctx = ReportContext(data, Options(mc_samples=7, seed=1))
    pool, targets = (("de",), ["de"]) if METHODS[method].target_only else (POOL, list(POOL))
    view = ctx.view(pool, None)
    use_scores = METHODS[method].needs_verifier
    language, depth = draw_steps(view.index, view.max_budget)
    sequence = ctx.orders[language, depth]  # (N, P, M) slot drawn at each step
    rate, _, group_of = ctx.vote_rates(view, targets, METHODS[method])
    store = CandidateStore(small_store, read_only=True)
    stored = {(c.problem_id, c.lang, c.sample_idx): c for c in store.candidates()}
    scores = store.scores("synthetic-verifier")
    for p, problem_id in enumerate(data.problem_ids):
        for target, group in zip(targets, group_of):
            for n in range(1, view.max_budget + 1):
                right = []
                for m in range(7):
                    drawn = [stored[(problem_id, data.languages[data.lang[p, x]], int(data.within[p, x]))]
                             for x in sequence[:n, p, m]]
                    score = {c.key: scores[(c.key, "synthetic-verifier")] for c in drawn} if use_scores else {}
                    pick = select(method, [
                        Scored(c.key, c.lang, c.sample_idx, c.answer,
                               None if not use_scores else math.nan if score[c.key] is None else score[c.key])
                        for c in drawn
                    ], target, pool)
                    right.append(pick.answer == drawn[0].gold)
                assert rate[group, n - 1, p] == pytest.approx(np.mean(right), abs=1e-12), (problem_id, target, n)


def test_vote_curves_are_close_to_the_exact_expectation(report, exported):
    """Monte Carlo estimates within 4 standard errors of the all-subsets average (enumerated)."""
    problems = by_problem(exported).values()
    rows = {(r["target"], r["method"], r["n"]): r for r in report.curves}
    for n in (2, 5, 9):
        for method in ("cross_self_consistency", "weighted_vote", "top_k_weighted_vote"):
            exact = np.mean([
                np.mean([select(method, [scored(r, METHODS[method].needs_verifier) for r in s], "fr", POOL).answer
                         == records[0]["gold"]
                         for s in stratified_subsets(records, n, POOL)])
                for records in problems
            ])
            row = rows[("fr", method, n)]
            assert row["estimator"] == "monte_carlo"
            assert abs(row["accuracy"] - exact) <= 4 * row["se"] + 1e-9, (method, n, row, exact)


def test_monte_carlo_is_seeded(small_store):
    data = build_data(load_stores([small_store]))
    first = build_report(data, Options(mc_samples=16, seed=7), show_progress=False)
    again = build_report(data, Options(mc_samples=16, seed=7), show_progress=False)
    other = build_report(data, Options(mc_samples=16, seed=8), show_progress=False)
    assert first.curves == again.curves and first.ablation == again.ablation
    differs = [a["accuracy"] != b["accuracy"] for a, b in zip(first.curves, other.curves)]
    assert any(differs)
    for a, b, changed in zip(first.curves, other.curves, differs):
        assert a["method"] == b["method"] and a["n"] == b["n"]
        if a["estimator"] == "exact":
            assert not changed


def test_estimators_and_methods_follow_selection(report, tmp_path):
    """Every selection of the registry is reported; votes are the Monte Carlo rows; without scores the methods
    that need a verifier are left out."""
    assert set(METHODS) <= {r["method"] for r in report.curves}
    votes = {name for name, m in METHODS.items() if m.vote is not None}
    assert {r["method"] for r in report.curves if r["estimator"] == "monte_carlo"} == votes
    build_synthetic_store(str(tmp_path), problems=2, languages=POOL, samples_per_language=2, verifier=None, text=False)
    unscored = build_report(build_data(load_stores([str(tmp_path)])), Options(mc_samples=4), show_progress=False)
    methods = {r["method"] for r in unscored.curves}
    assert methods and not methods & {name for name, m in METHODS.items() if m.needs_verifier}


def test_budget_ranges_and_averages(report):
    cross = [r for r in report.curves if r["method"] == "cross_orm" and r["target"] == AVERAGE]
    target_only = [r for r in report.curves if r["method"] == "multi_orm" and r["target"] == AVERAGE]
    assert [r["n"] for r in cross] == list(range(1, 13))
    assert [r["n"] for r in target_only] == list(range(1, 5))
    for method in ("multi_orm", "oracle"):
        per_target = np.array([curve(report, t, method) for t in POOL])
        np.testing.assert_allclose(curve(report, AVERAGE, method), per_target.mean(axis=0))
    # by default each method and pool at its own largest budget (the pool's 12, the target language's 4)
    assert report.budget == 12 and report.ablation_budget == 4 and not report.fixed
    assert (report.method_budget("cross_orm"), report.method_budget("multi_orm")) == (12, 4)
    assert (report.pool_budget("en"), report.pool_budget("en:de"), report.pool_budget("en:de:fr")) == (4, 8, 12)
    shares = defaultdict(float)
    for row in report.selected:
        shares[(row["target"], row["n"])] += row["share"]
    assert all(v == pytest.approx(1.0) for v in shares.values())
    kinds = {r["kind"] for r in report.ablation}
    assert {"size 1", "size 2", "size 3", "without en"} <= kinds


def test_cli_writes_tables_summary_and_plots(small_store, tmp_path):
    out = tmp_path / "report"
    assert cli.main(["--store", small_store, "--out", str(out), "--languages", "en:de:fr", "--pool", "de:fr",
                     "--mc-samples", "32", "--seed", "3"]) == 0
    for name in ("budget_curves.csv", "pool_ablation.csv", "pass_at_k.csv", "selected_language.csv"):
        with open(out / name, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert rows, name
    with open(out / "budget_curves.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {"pool", "target", "method", "n", "accuracy", "se", "estimator", "problems"} == set(rows[0])
    assert {r["method"] for r in rows} == {*METHODS, "random", "oracle", "cross_random", "cross_oracle"}
    assert {r["estimator"] for r in rows if r["method"] == "weighted_vote"} == {"monte_carlo"}
    assert {r["estimator"] for r in rows if r["method"] == "cross_orm"} == {"exact"}
    with open(out / "pool_ablation.csv", newline="", encoding="utf-8") as f:
        assert "de:fr" in {r["pool"] for r in csv.DictReader(f)}
    summary = (out / SUMMARY_MD).read_text(encoding="utf-8")
    assert "**exact**" in summary and "**Monte Carlo**" in summary and "seed 3" in summary
    for name in PLOTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [REPORT_MARKER]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no staging folder left


def test_plots_keep_equal_lines_apart_show_ablations_as_bars_and_state_their_sizes(report):
    import matplotlib.pyplot as plt

    from bestofl_models.report.render import figures

    drawn = figures(report)
    try:
        sizes = f"({len(report.data.problem_ids)} problems, {int(report.data.stored.sum())} candidates)"
        assert all(sizes in fig.axes[0].get_title() for fig in drawn.values())
        lines = [line for line in drawn[PLOTS[0]].axes[0].get_lines() if line.get_label() in _methods_of(report)]
        assert len({line.get_marker() for line in lines}) == len(lines) > 1  # each method its own marker
        first_x = {tuple(line.get_xdata())[0] for line in lines}
        assert len(first_x) == len(lines)  # nudged sideways: equal points do not hide each other
        assert all(abs(x - 1) < 0.5 for x in first_x)  # ... by less than half a budget step
        ablation = drawn[PLOTS[4]].axes[0]
        pools = {r["pool"] for r in report.ablation}
        assert len(ablation.patches) == len(pools) * len({r["method"] for r in report.ablation})  # bars
    finally:
        for fig in drawn.values():
            plt.close(fig)


def _methods_of(report):
    return {r["method"] for r in report.curves}


def test_report_of_eight_samples_over_four_languages(tmp_path):
    """The issue's acceptance shape: n=8 over 4 languages gives cross budgets 1..8, target ones 1..2."""
    directory = tmp_path / "store"
    build_synthetic_store(str(directory), problems=4, languages=("en", "de", "fr", "ru"), samples_per_language=2,
                          seed=1, text=False)
    out = tmp_path / "report"
    assert cli.main(["--store", str(directory), "--out", str(out), "--mc-samples", "16"]) == 0
    with open(out / "budget_curves.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    budgets = defaultdict(set)
    for r in rows:
        budgets[r["method"]].add(int(r["n"]))
    assert budgets["cross_orm"] == budgets["weighted_vote"] == budgets["cross_oracle"] == set(range(1, 9))
    assert budgets["multi_orm"] == budgets["self_consistency"] == {1, 2}


def test_exported_candidates_follow_plan_samples_layout(tmp_path):
    directory = tmp_path / "store"
    build_synthetic_store(str(directory), problems=1, languages=POOL, samples_per_language=3, text=False)
    records = [json.loads(line) for line in _export_lines(directory)]
    assert sorted((r["lang"], r["sample_idx"]) for r in records) == sorted(plan_samples(9, POOL))


def _export_lines(directory, *extra):
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert cli.main(["export", "--store", str(directory), *extra]) == 0
    return buffer.getvalue().splitlines()


def _candidate(generator, i=0, problem="p-1"):
    return Candidate(key=f"{generator}-{problem}-{i}", problem_id=problem, task="t", doc_id=0, target_lang="en",
                     lang="en", sample_idx=i, generator=generator, prompt_hash="h", settings={"temperature": 0.5},
                     text="The answer is 3.", answer="3", gold="3")


def test_several_verifiers_or_generators_are_never_mixed(tmp_path, capsys):
    store = CandidateStore(tmp_path)
    store.add_candidates([_candidate("gen-a"), _candidate("gen-b")])
    store.add_scores("ver-1", {"gen-a-p-1-0": 0.9})
    store.add_scores("ver-2", {"gen-a-p-1-0": 0.2, "gen-b-p-1-0": 0.4})
    with pytest.raises(SystemExit):
        cli.main(["export", "--store", str(tmp_path)])
    assert "several verifiers; pick one with --verifier" in capsys.readouterr().err
    records = [json.loads(line) for line in _export_lines(tmp_path, "--verifier", "ver-1")]
    assert {(r["generator"], r["verifier"], r["score"]) for r in records} == {("gen-a", "ver-1", 0.9),
                                                                              ("gen-b", None, None)}
    with pytest.raises(SystemExit):
        cli.main(["--store", str(tmp_path), "--out", str(tmp_path / "r")])
    assert "several generators; pick one with --generator" in capsys.readouterr().err
    data = build_data(load_stores([str(tmp_path)]), generator="gen-b")
    assert data.verifier == "ver-2" and data.generator == "gen-b"
    hotter = dataclasses.replace(_candidate("gen-b", i=1), key="hot", settings={"temperature": 1.0})
    store.add_candidates([hotter])
    with pytest.raises(ValueError, match=r"several sampling-settings ids; pick one with --settings.*temperature"):
        build_data(load_stores([str(tmp_path)]), generator="gen-b")
    chosen = settings_id({"temperature": 1.0})
    assert build_data(load_stores([str(tmp_path)]), generator="gen-b", settings=chosen).problem_ids == ["p-1"]


def test_one_target_and_a_store_without_scores(tmp_path):
    directory = tmp_path / "store"
    build_synthetic_store(str(directory), problems=3, languages=POOL, samples_per_language=2, verifier=None,
                          text=False)
    out = tmp_path / "report"
    assert cli.main(["--store", str(directory), "--out", str(out), "--targets", "fr", "--mc-samples", "8"]) == 0
    with open(out / "budget_curves.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r["target"] for r in rows} == {"fr", AVERAGE}
    assert {r["method"] for r in rows} == {"self_consistency", "cross_self_consistency", "random", "oracle",
                                          "cross_random", "cross_oracle"}
    assert "Verifier: none in the store" in (out / SUMMARY_MD).read_text(encoding="utf-8")


def test_uneven_stores_limit_budgets_and_say_so(tmp_path):
    source = build_synthetic_store(None, problems=3, languages=POOL, samples_per_language=3, text=False)
    store = CandidateStore(tmp_path)
    kept = [c for c in source.candidates()
            if not (c.problem_id == "synthetic-0000" and c.lang == "fr")  # one problem has no fr at all
            and not (c.problem_id == "synthetic-0001" and c.lang == "de" and c.sample_idx == 2)]  # one de short
    store.add_candidates(kept)
    store.add_scores("synthetic-verifier", {c.key: 0.5 for c in kept})
    data = build_data(load_stores([str(tmp_path)]))
    report = build_report(data, Options(languages=POOL, mc_samples=8), show_progress=False)
    assert any("1 problem(s) lack some pool language" in note for note in report.notes)
    cross = {r["n"] for r in report.curves if r["method"] == "cross_orm"}
    assert cross == set(range(1, 8))  # de has 2 samples in one problem: budget 8 would need 3 in en and de
    assert {r["problems"] for r in report.curves if r["method"] == "cross_orm"} == {2}
    assert {r["problems"] for r in report.curves if r["method"] == "multi_orm" and r["target"] == "en"} == {3}
    with pytest.raises(ValueError, match="outside 1..7"):
        build_report(data, Options(languages=POOL, mc_samples=8, budget=8), show_progress=False)
    # In MGSM order (en, fr, de) de comes last, so budget 8 (3, 3, 2 samples) fits.
    default = build_report(data, Options(mc_samples=8), show_progress=False)
    assert default.pool == ("en", "fr", "de")
    assert max(r["n"] for r in default.curves if r["method"] == "cross_orm") == 8


def test_unknown_pool_language_is_a_clear_error(small_store, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["--store", small_store, "--out", str(tmp_path / "r"), "--languages", "en:xx"])
    assert "No stored candidates in xx" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["--store", small_store, "--out", str(tmp_path / "r"), "--languages", "en:en"])
    assert "more than once" in capsys.readouterr().err


def test_candidates_without_a_language_are_left_out_with_a_note(tmp_path, capsys, caplog):
    """`--tasks gsm8k` (no parallel questions) stores lang=None candidates: the report leaves them out."""
    directory = tmp_path / "store"
    source = build_synthetic_store(None, problems=2, languages=POOL, samples_per_language=2, verifier=None, text=False)
    fallback = [dataclasses.replace(_candidate("synthetic-generator", i=i, problem=f"gsm8k-{i}"), task="gsm8k",
                                    target_lang=None, lang=None, settings=dict(source.candidates()[0].settings))
                for i in range(3)]
    store = CandidateStore(directory)
    store.add_candidates([*source.candidates(), *fallback])
    out = tmp_path / "report"
    assert cli.main(["--store", str(directory), "--out", str(out), "--mc-samples", "8"]) == 0
    assert "3 candidate(s) have no language" in caplog.text  # the CLI's logging prints it on stderr
    data = build_data(load_stores([str(directory)]))
    assert set(data.languages) == set(POOL) and len(data.problem_ids) == 2
    assert "3 candidate(s) have no language" in (out / SUMMARY_MD).read_text(encoding="utf-8")

    only_fallback = tmp_path / "gsm8k"
    CandidateStore(only_fallback).add_candidates(fallback)
    with pytest.raises(ValueError, match="no language"):
        build_data(load_stores([str(only_fallback)]))
    with pytest.raises(SystemExit):
        cli.main(["--store", str(only_fallback), "--out", str(tmp_path / "r")])
    assert "no language" in capsys.readouterr().err


def test_per_language_stop_strings_share_one_settings_id(tmp_path):
    """Without a chat template each language stops at its own question prefix: still one report."""
    from bestofl_tasks.languages import get_language

    source = build_synthetic_store(None, problems=3, languages=POOL, samples_per_language=2, text=False)
    store = CandidateStore(tmp_path)
    store.add_candidates([dataclasses.replace(c, settings={**c.settings, "stop": [get_language(c.lang).question_prefix]})
                          for c in source.candidates()])
    store.add_scores("synthetic-verifier", {c.key: 0.5 for c in source.candidates()})
    assert len({json.dumps(c.settings, sort_keys=True) for c in store.candidates()}) == len(POOL)
    data = build_data(load_stores([str(tmp_path)]))
    assert set(data.languages) == set(POOL) and len(data.problem_ids) == 3 and data.stored.sum() == 18
    assert "stop" not in data.settings and data.settings["temperature"] == 0.7
    assert not any("Sampling settings" in note for note in data.notes)
    build_report(data, Options(mc_samples=4), show_progress=False)
    chosen = settings_id({"temperature": 0.7, "stop": ["Question:"]})
    assert chosen == settings_id({"temperature": 0.7}) == settings_id({"temperature": 0.7, "stop": ["Frage:"]})
    assert settings_id({"temperature": 0.7}) != settings_id({"temperature": 1.0})


def test_the_report_uses_the_runs_pool_order_and_the_readme_commands_run_as_written(
        tiny_generator_dir, tiny_verifier_dir, tmp_path, monkeypatch):
    """A store written with the pool fr:en:de (not MGSM's order) reports in that order, and README's two
    `bestofl-report` lines run as written on it."""
    import re
    import shlex

    from lm_eval.api.instance import Instance

    from bestofl_models.harness import model as harness
    from bestofl_tasks.data import load_docs

    monkeypatch.setenv("BESTOFL_DATA_DIR", str(DATA_DIR))
    monkeypatch.chdir(tmp_path)
    lm = harness.BestOfL(pretrained=str(tiny_generator_dir), verifier=str(tiny_verifier_dir), languages="fr:en:de",
                         n=3, max_gen_toks=8, store="./store")
    docs = load_docs("mgsm", "de")[:2]
    lm.generate_until([Instance("generate_until", d, ("", {"until": []}), 0, ("mgsm_xling_de", i, 1))
                       for i, d in enumerate(docs)], disable_tqdm=True)
    assert build_data(load_stores(["store"])).languages == ("fr", "en", "de")

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Candidate store and reports"):]
    commands = re.findall(r"^(bestofl-report (?:export )?--store \./store[^\n]*)$", section, re.M)
    assert len(commands) == 2, commands
    for command in commands:
        argv = shlex.split(command, comments=True)
        assert cli.main(argv[1:]) == 0, command
    with open(tmp_path / "report" / "budget_curves.csv", newline="", encoding="utf-8") as f:
        pools = {row["pool"] for row in csv.DictReader(f)}
    assert "fr:en:de" in pools
    assert (tmp_path / "candidates.jsonl").read_text(encoding="utf-8").count("\n") == 6


# ------------------------------------------------- issue #23 item 4: the report answers the run's own question

QUICK_POOL = ("en", "de", "fr", "zh")


def quick_start_store(directory, msvamp: bool = True) -> str:
    """The quick start's store: `--model bestofl ... languages=en:de:fr:zh,n=4 --tasks mgsm_xling_de --limit 5`
    (one candidate per language and problem; the verifier picks de on 3 problems and zh on 2), plus another run's
    MSVAMP problems targeting fr (two languages) that the report must be able to leave out."""
    store = CandidateStore(directory)
    candidates, scores = [], {}
    for p in range(5):
        best = "de" if p < 3 else "zh"
        for lang in QUICK_POOL:
            key = f"mgsm-{p}-{lang}"
            right = lang == best and p != 4  # en is never right: a pool of en alone scores 0
            candidates.append(Candidate(
                key=key, problem_id=f"mgsm-{p:04d}", task="mgsm_xling_de", doc_id=p, target_lang="de", lang=lang,
                sample_idx=0, generator="smollm2", prompt_hash=f"h-{lang}-{p}", settings={"temperature": 0.7},
                text="...", answer="7" if right else "1", gold="7"))
            scores[key] = 0.9 if lang == best else 0.1 + 0.1 * QUICK_POOL.index(lang)
    for p in range(3 if msvamp else 0):
        for lang in ("en", "fr"):
            key = f"msvamp-{p}-{lang}"
            candidates.append(Candidate(
                key=key, problem_id=f"msvamp-{p:04d}", task="msvamp_xling_fr", doc_id=p, target_lang="fr", lang=lang,
                sample_idx=0, generator="smollm2", prompt_hash=f"m-{lang}-{p}", settings={"temperature": 0.7},
                text="...", answer="2", gold="2"))
            scores[key] = 0.5
    store.add_candidates(candidates)
    store.add_scores("self", scores)
    store.close()
    return str(directory)


def _csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_default_view_is_the_runs_own_budget(tmp_path):
    """n=4 over 4 languages is one sample per language: "the largest budget every method reaches" was n=1, where
    the verifier's pick is always the pool's first language (100% English) and every ablation pool is alike.
    Each method and pool is now shown at its own largest budget, and each table says which n."""
    data = build_data(load_stores([quick_start_store(tmp_path / "store", msvamp=False)]))
    report = build_report(data, Options(languages=QUICK_POOL, targets=("de",), mc_samples=16), show_progress=False)
    assert report.budget == 4 and report.method_budget("cross_orm") == 4 and report.method_budget("multi_orm") == 1
    picks = {r["lang"]: r["share"] for r in report.selected if r["target"] == "de" and r["n"] == report.budget}
    assert picks == pytest.approx({"en": 0.0, "de": 0.6, "fr": 0.0, "zh": 0.4})
    oracle = {r["pool"]: r["accuracy"] for r in report.ablation
              if r["method"] == "cross_oracle" and r["target"] == AVERAGE and r["n"] == report.pool_budget(r["pool"])}
    assert oracle["en"] == 0.0 and oracle["en:de:fr:zh"] == pytest.approx(0.8)  # not flat
    summary = summary_markdown(report)
    assert "multi_orm (n=1)" in summary and "cross_orm (n=4)" in summary and "`cross_orm`, n = 4" in summary
    assert "| `en` | size 1 | 5 | 1 | 0.0 |" in summary and "| `en:de:fr:zh` | size 4 | 5 | 4 | 80.0 |" in summary
    assert (report.ablation_cell_budget("en:de:fr:zh", "cross_oracle"),
            report.ablation_cell_budget("en:de:fr:zh", "weighted_vote")) == (4, 1)  # votes where every pool reaches
    assert "(n=1)" in summary.split("## Pool ablations", 1)[1].split("\n## ", 1)[0]
    fixed = build_report(data, Options(languages=QUICK_POOL, targets=("de",), mc_samples=16, budget=1),
                         show_progress=False)
    assert fixed.fixed and "## Per target language at n = 1" in summary_markdown(fixed)


def test_tasks_choose_the_runs_like_lm_evals_tasks(tmp_path, capsys):
    store = quick_start_store(tmp_path / "store")
    everything = build_data(load_stores([store]))
    assert len(everything.problem_ids) == 8 and everything.tasks is None
    assert build_report(everything, Options(mc_samples=4), show_progress=False).targets == ("en", "fr", "de", "zh")
    chosen = build_data(load_stores([store], tasks="mgsm_xling_de"))
    assert build_report(chosen, Options(mc_samples=4), show_progress=False).targets == ("de",)  # the run's target
    for pattern in ("mgsm_xling_de", "mgsm_xling", "mgsm_*", "mgsm_xling_de, mgsm_xling_d*"):
        data = build_data(load_stores([store], tasks=pattern))
        assert data.problem_ids == [f"mgsm-{p:04d}" for p in range(5)] and data.tasks == ("mgsm_xling_de",)
    both = build_data(load_stores([store], tasks=["mgsm_xling_de", "msvamp_xling_fr"]))
    assert len(both.problem_ids) == 8 and set(both.stored_targets) == {"de", "fr"}
    out = tmp_path / "report"
    assert cli.main(["--store", store, "--out", str(out), "--tasks", "msvamp_xling_*", "--mc-samples", "4"]) == 0
    rows = _csv(out / "budget_curves.csv")
    assert {r["target"] for r in rows} == {"fr", AVERAGE} and {r["problems"] for r in rows} == {"3"}
    summary = (out / SUMMARY_MD).read_text(encoding="utf-8")
    assert "- Tasks: msvamp_xling_fr (`--tasks`)" in summary and "Problems with a gold answer: 3" in summary
    with pytest.raises(SystemExit):
        cli.main(["--store", store, "--out", str(tmp_path / "r2"), "--tasks", "gsm8k_xling_de"])
    err = capsys.readouterr().err
    assert "--tasks 'gsm8k_xling_de' names no task in the store; it holds mgsm_xling_de, msvamp_xling_fr" in err
    assert cli.main(["--store", store, "--out", str(tmp_path / "r3"), "--tasks", "mgsm_xling_de", "--targets",
                     "de:fr", "--mc-samples", "4"]) == 0  # --targets still chooses
    assert {r["target"] for r in _csv(tmp_path / "r3" / "budget_curves.csv")} == {"de", "fr", AVERAGE}


def test_the_store_defaults_to_where_runs_store_and_a_missing_one_names_it(tmp_path, monkeypatch, capsys):
    default = tmp_path / "default-store"
    monkeypatch.setenv("BESTOFL_STORE", str(default))
    with pytest.raises(SystemExit):
        cli.main(["--store", str(tmp_path / "store"), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert "No candidate store" in err and str(default) in err and "BESTOFL_STORE" in err
    quick_start_store(default)
    assert cli.main(["--out", str(tmp_path / "r"), "--tasks", "mgsm_xling_de", "--mc-samples", "4"]) == 0
    assert f"- Stores: {default}" in (tmp_path / "r" / SUMMARY_MD).read_text(encoding="utf-8")
