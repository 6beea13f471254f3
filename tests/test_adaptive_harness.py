"""adaptive= in the harness: rounds, reuse both ways with fixed-budget runs, the simulation on the harness's own
order, and the pool warnings (languages=auto:FILE, a target outside the pool)."""

from __future__ import annotations

import json
import logging
import math
import shutil

import numpy as np
import pytest
from lm_eval.api.instance import Instance

from bestofl_models.harness import model as harness
from bestofl_models.harness import run_log
from bestofl_models.selection.adaptive import AdaptiveRule, samples_used, stopping_round
from bestofl_models.selection.pool import RECOMMENDED_POOL_FILE, RECOMMENDED_POOL_FORMAT, plan_samples
from bestofl_models.report.adaptive_budget import replay, simulate
from bestofl_models.report.build import Options, ReportContext
from bestofl_models.report.data import build_data, load_stores
from bestofl_models.harness.results_info import model_info
from bestofl_models.selection.methods import Scored, select
from bestofl_models.store import CandidateStore
from bestofl_tasks.answers import extract_answer
from bestofl_tasks.data import load_docs

POOL = ("en", "de", "fr", "es")
TASK, TARGET = "arith_xling_de", "de"
PROBLEMS = 40


@pytest.fixture(autouse=True)
def offline_data(monkeypatch):
    from fixtures import DATA_DIR

    monkeypatch.setenv("BESTOFL_DATA_DIR", str(DATA_DIR))


def requests(count=PROBLEMS):
    return [Instance("generate_until", doc, ("ignored", {"until": ["Frage:"]}), 0, (TASK, i, 1))
            for i, doc in enumerate(load_docs("arith_test", TARGET)[:count])]


def run(args, count=PROBLEMS):
    lm = harness.BestOfL(**args)
    generated = []
    original = lm._generator

    def counting_generator():
        backend = original()
        if not hasattr(backend, "counted"):  # the backend stays loaded across rounds: wrap it once
            real = backend.generate
            backend.generate = lambda prompts, *rest: generated.append(len(prompts)) or real(prompts, *rest)
            backend.counted = True
        return backend

    lm._generator = counting_generator
    outputs = lm.generate_until(requests(count), disable_tqdm=True)
    lm.close()
    return lm, outputs, generated


@pytest.fixture(scope="module")
def full_store(tmp_path_factory, tiny_generator_dir):
    """A fixed-budget run (n=8 over 4 languages, 40 problems) with the tiny chat reward model as verifier."""
    from fixtures import tiny_chat_reward_model

    directory = tmp_path_factory.mktemp("adaptive-harness")
    args = {"pretrained": str(tiny_generator_dir), "verifier": str(tiny_chat_reward_model()),
            "languages": ":".join(POOL), "n": 8, "max_gen_toks": 24, "batch_size": 64,
            "store": str(directory / "full")}
    lm, outputs, _ = run(args)
    return args, lm, outputs


def in_plan_order(store_dir, verifier_id):
    """Per problem id, its n=8 stored candidates as Scored, in the order a harness run draws them."""
    store = CandidateStore(store_dir, read_only=True)
    scores = store.scores(verifier_id)
    by_slot = {(c.problem_id, c.lang, c.sample_idx): c for c in store.candidates()}
    ordered = {}
    for problem_id in sorted({problem for problem, _, _ in by_slot}):
        drawn = []
        for lang, index in plan_samples(8, POOL):
            c = by_slot[problem_id, lang, index]
            score = scores[(c.key, verifier_id)]
            drawn.append(Scored(c.key, lang, index, c.answer, math.nan if score is None else score))
        ordered[problem_id] = (drawn, c.gold)
    return ordered


def harness_order_context(store_dir):
    """The report's context with one ordering: each language's candidates by sample index (the harness order)."""
    data = build_data(load_stores([store_dir]))
    ctx = ReportContext(data, Options(seed=0, mc_samples=1))
    depth = ctx.orders.shape[1]
    ctx.orders = (data.offsets.T[:, None, :] + np.arange(depth)[None, :, None])[..., None].astype(ctx.orders.dtype)
    return data, ctx


def rules_for(ordered):
    """A score threshold half the problems reach in round 1 (from the store, not fixed), and a vote margin."""
    first_round_tops = [max(c.score for c in drawn[:len(POOL)] if c.answer is not None) for drawn, _ in
                        ordered.values() if any(c.answer is not None for c in drawn[:len(POOL)])]
    return [AdaptiveRule(score=round(float(np.median(first_round_tops)), 6)), AdaptiveRule(margin=1)]


def test_adaptive_run_on_a_full_store_matches_the_simulation_on_the_harness_order(full_store, tmp_path):
    args, full_lm, full_outputs = full_store
    ordered = in_plan_order(args["store"], full_lm.verifier_id)
    data, ctx = harness_order_context(args["store"])
    problem_of = {request.doc["problem_id"]: i for i, request in enumerate(requests())}
    assert sorted(problem_of) == sorted(ordered) == sorted(data.problem_ids)
    for rule in rules_for(ordered):
        copy = tmp_path / f"copy-{rule.family}"
        shutil.copytree(args["store"], copy)
        lm, outputs, generated = run({**args, "store": str(copy), "adaptive": str(rule)})
        assert generated == [] and lm.run_counts["scored"] == 0  # everything reused
        used = {problem_id: len(lm.sample_records[TASK, problem_of[problem_id]]["candidates"])
                for problem_id in ordered}
        simulated = replay(ctx, POOL, (TARGET,), 8, [rule])
        for p, problem_id in enumerate(data.problem_ids):
            drawn, gold = ordered[problem_id]
            expected = samples_used(stopping_round(rule, drawn, len(POOL), 8), len(POOL), 8)
            chosen = select("cross_orm", drawn[:expected], TARGET, POOL)
            record = lm.sample_records[TASK, problem_of[problem_id]]
            assert used[problem_id] == expected == simulated.used[0][p, 0], (rule, problem_id)
            assert record["bestofl_selected_lang"] == chosen.lang and record["bestofl_selected_score"] == chosen.score
            assert simulated.right[0][p, 0] == (chosen.answer == gold)
            if expected == 8:
                assert outputs[problem_of[problem_id]] == full_outputs[problem_of[problem_id]]
        if rule.score is not None:  # the median threshold stops some problems early, not all
            assert 0 < sum(used.values()) - 4 * len(used) < 4 * len(used)
        info = model_info(lm)["bestofl"]
        assert info["adaptive"] == str(rule)
        assert info["samples_used"] == {"adaptive": str(rule), "n": 8, "requests": PROBLEMS,
                                        "total": sum(used.values()), "mean_per_request": sum(used.values()) / PROBLEMS,
                                        "generated": 0}


def wilson(share, count, z=1.96):
    """95% Wilson interval of a proportion (sound at 0 and 1, unlike the normal one)."""
    centre = (share + z * z / (2 * count)) / (1 + z * z / count)
    spread = z * math.sqrt(share * (1 - share) / count + z * z / (4 * count * count)) / (1 + z * z / count)
    return centre - spread, centre + spread


def averaged_vs_real(store_dir, rule, real_used, real_right, orderings=200):
    """The simulation averaged over orderings, and the real run's samples used and accuracy with 95% intervals.
    n=8 over 4 languages is 2 rounds, so samples used is 8 - 4 x (share stopped after round 1): a proportion."""
    ctx = ReportContext(build_data(load_stores([store_dir])), Options(seed=0, mc_samples=orderings))
    row = simulate(ctx, POOL, (TARGET,), 8, [rule]).rows[0]
    early_low, early_high = wilson(np.mean(np.asarray(real_used) == 4), len(real_used))
    return row, (8 - 4 * early_high, 8 - 4 * early_low), wilson(float(np.mean(real_right)), len(real_right))


def test_the_averaged_simulation_falls_within_the_real_runs_interval(full_store, tmp_path):
    args, full_lm, _ = full_store
    ordered = in_plan_order(args["store"], full_lm.verifier_id)
    for rule in rules_for(ordered):
        copy = tmp_path / f"copy-{rule.family}"
        shutil.copytree(args["store"], copy)
        lm, outputs, _ = run({**args, "store": str(copy), "adaptive": str(rule)})
        used = [len(lm.sample_records[TASK, i]["candidates"]) for i in range(PROBLEMS)]
        # what the task scores: the answer in the returned text
        right = [extract_answer(output, TARGET) == request.doc["answer"] for output, request in zip(outputs, requests())]
        row, (used_low, used_high), (right_low, right_high) = averaged_vs_real(args["store"], rule, used, right)
        print(f"{rule}: simulated {row['samples_mean']:.2f} samples, accuracy {row['accuracy']:.4f}; real "
              f"{np.mean(used):.2f} [{used_low:.2f}, {used_high:.2f}] samples, accuracy {np.mean(right):.4f} "
              f"[{right_low:.4f}, {right_high:.4f}]")
        assert used_low <= row["samples_mean"] <= used_high
        assert right_low <= row["accuracy"] <= right_high


def test_adaptive_and_fixed_budget_runs_reuse_each_others_candidates(tiny_generator_dir, tmp_path):
    """Adaptive first (rounds batched across problems), then the fixed budget draws only the rest, then adaptive
    again draws nothing and answers as before."""
    args = {"pretrained": str(tiny_generator_dir), "languages": ":".join(POOL), "n": 8, "max_gen_toks": 16,
            "batch_size": 64, "store": str(tmp_path / "s"), "selection": "cross_self_consistency",
            "adaptive": "margin:1"}
    count = 12
    first, outputs, calls = run(args, count)
    used = [len(first.sample_records[TASK, i]["candidates"]) for i in range(count)]
    assert set(used) <= {4, 8} and sum(used) == first.run_counts["generated"] == sum(calls)
    rounds_running = [count, used.count(8)]  # round 1: every problem; round 2: those not stopped
    assert calls == [4 * running for running in rounds_running if running]  # one batch per round
    fixed, _, calls = run({**args, "adaptive": "none"}, count)
    assert sum(calls) == 8 * count - sum(used) and len(CandidateStore(args["store"], read_only=True)) == 8 * count
    again, again_outputs, calls = run(args, count)
    assert calls == [] and again_outputs == outputs
    assert [len(again.sample_records[TASK, i]["candidates"]) for i in range(count)] == used


def test_a_target_outside_the_pool_is_warned_about_once_per_task(tiny_generator_dir, caplog):
    args = {"pretrained": str(tiny_generator_dir), "languages": "en:fr", "n": 2, "max_gen_toks": 4, "store": None,
            "selection": "cross_self_consistency"}
    run_log.warn_target_outside_pool.cache_clear()
    with caplog.at_level(logging.WARNING):
        run(args, 3)
    warnings = [r.getMessage() for r in caplog.records if "is not in the pool" in r.getMessage()]
    assert warnings == [f"{TASK}: the target language de is not in the pool en:fr, so every answer comes from another "
                        "language's candidate and none is in de. To let de compete, add it: languages=en:fr:de."]


def test_a_pool_file_for_another_generator_is_used_with_a_warning(tiny_generator_dir, tmp_path, caplog):
    file = tmp_path / RECOMMENDED_POOL_FILE
    file.write_text(json.dumps({"format": RECOMMENDED_POOL_FORMAT, "version": 1, "pool": ["fr", "de"],
                                "generator_id": "generator-elsewhere", "verifier_id": None}), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        lm = harness.BestOfL(pretrained=str(tiny_generator_dir), languages=f"auto:{tmp_path}", n=2, max_gen_toks=4,
                             store=None, selection="cross_self_consistency")
    assert lm.config.languages == ("fr", "de")
    assert f"was chosen for generator generator-elsewhere, and this run's generator is {lm.generator_id}" in caplog.text
    info = model_info(lm)["bestofl"]
    assert (info["pool"], info["languages_file"]) == (["fr", "de"], str(file))


def test_a_score_rule_scores_each_round_before_deciding(tiny_generator_dir, tmp_path):
    from fixtures import tiny_chat_reward_model

    from bestofl_models.selection.adaptive import should_stop

    rule = AdaptiveRule(score=0.3)
    args = {"pretrained": str(tiny_generator_dir), "verifier": str(tiny_chat_reward_model()), "n": 8,
            "languages": ":".join(POOL), "max_gen_toks": 16, "store": str(tmp_path / "s"), "adaptive": str(rule)}
    lm, outputs, calls = run(args, 8)
    used = [lm.sample_records[TASK, i]["candidates"] for i in range(8)]
    assert lm.run_counts["scored"] == lm.run_counts["generated"] == sum(calls) == sum(map(len, used))
    for drawn in used:
        first_round = [Scored(str(k), c["lang"], 0, c["answer"], c["score"]) for k, c in enumerate(drawn[:4])]
        assert len(drawn) == (4 if should_stop(rule, first_round) else 8)
    again, again_outputs, calls = run(args, 8)
    assert calls == [] and again.run_counts["scored"] == 0 and again_outputs == outputs
