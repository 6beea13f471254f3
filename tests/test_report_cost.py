"""The report side of issue #27: per-language costs, accuracy against generated tokens, the compute-matched table,
recounts for stores written before tokens were recorded, and costs in ``bestofl-report compare``."""

from __future__ import annotations

import contextlib
import csv
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from bestofl_models.report import cli
from bestofl_models.report.build import AVERAGE, Options, build_report
from bestofl_models.report.compare_render import RUN_COSTS_CSV, SUMMARY_MD
from bestofl_models.report.cost_render import COMPUTE_MATCHED_CSV, LANGUAGE_COSTS_CSV, TOKENS_PLOT
from bestofl_models.report.costs import ALL_LANGUAGES, accuracy_at_tokens, expected_tokens
from bestofl_models.report.data import Loaded, build_data, load_stores
from bestofl_models.report.synthetic import build_synthetic_store
from bestofl_models.store import STORE_FILE, Candidate, CandidateStore, candidate_key, prompt_hash
from test_compare import BESTOFL, HF, write_run

SETTINGS = {"temperature": 0.7, "top_p": 1.0, "max_gen_toks": 300, "seed": 1, "stop": []}


def hand_store(directory: Path) -> str:
    """One problem (gold 1), pool en:de, no verifier. en: right (50 tokens), right (150); de: right (100), wrong
    (300, ran to the cap)."""
    store = CandidateStore(str(directory))
    rows = [("en", 0, "1", 50), ("en", 1, "1", 150), ("de", 0, "1", 100), ("de", 1, "2", 300)]
    store.add_candidates([
        Candidate(key=candidate_key("gen", f"prompt {lang}", SETTINGS, i), problem_id="p", task="mgsm_xling_de",
                  doc_id=0, target_lang="de", lang=lang, sample_idx=i, generator="gen",
                  prompt_hash=prompt_hash(f"prompt {lang}"), settings=dict(SETTINGS), text=f"The answer is {answer}.",
                  answer=answer, gold="1", gen_tokens=tokens, hit_cap=tokens == 300)
        for lang, i, answer, tokens in rows])
    store.close()
    return str(directory)


@pytest.fixture
def hand(tmp_path):
    data = build_data(load_stores([hand_store(tmp_path / "store")]))
    return build_report(data, Options(languages=("en", "de"), targets=("de",)))


def test_compute_matched_table_gives_the_hand_computed_numbers(hand):
    cells = {(r["method"], r["greedy_multiple"]): r for r in hand.compute_matched if r["target"] == AVERAGE}
    # greedy: one de sample, (100 + 300) / 2 = 200 tokens
    assert [cells["random", k]["gen_tokens"] for k in (1, 2, 4, 8)] == [200, 400, 800, 1600]
    # de alone: n=1 200 tokens, n=2 400 tokens; random 1/2 at both, pass@n 1/2 then 1
    assert [cells["random", k]["accuracy"] for k in (1, 2, 4)] == [0.5, 0.5, None]
    assert [cells["oracle", k]["accuracy"] for k in (1, 2, 4)] == [0.5, 1.0, None]
    # en:de: n=1 en (100 tokens, right), n=2 en+de (300, (1 + 1/2) / 2), n=3 2 en + 1 de (400, 5/6), n=4 (600, 3/4)
    assert cells["cross_random", 1]["accuracy"] == pytest.approx((1.0 + 0.75) / 2)  # halfway from 100 to 300
    assert cells["cross_random", 2]["accuracy"] == pytest.approx(5 / 6)
    assert cells["cross_random", 4]["accuracy"] is None  # 800 > 600: never extrapolated
    assert cells["cross_oracle", 1]["accuracy"] == 1.0
    tokens = {(r["method"], r["n"]): r["gen_tokens"] for r in hand.token_curves if r["target"] == AVERAGE}
    assert [tokens["cross_random", n] for n in (1, 2, 3, 4)] == [100, 300, 400, 600]


def test_language_costs_are_hand_computed_and_add_up(hand):
    rows = {r["lang"]: r for r in hand.language_costs}
    assert (rows["en"]["gen_tokens"], rows["en"]["mean_gen_tokens"], rows["en"]["hit_cap_share"]) == (200, 100, 0)
    assert (rows["de"]["gen_tokens"], rows["de"]["mean_gen_tokens"], rows["de"]["hit_cap_share"]) == (400, 200, 0.5)
    assert rows["en"]["accuracy_per_1k_tokens"] == pytest.approx(10.0)  # accuracy 1 per 100 tokens
    assert rows["de"]["accuracy_per_1k_tokens"] == pytest.approx(2.5)
    assert rows[ALL_LANGUAGES]["gen_tokens"] == 600 and rows[ALL_LANGUAGES]["candidates"] == 4


def test_per_language_totals_add_up_on_a_synthetic_store():
    store = build_synthetic_store(None, problems=12, languages=["en", "de", "th"], samples_per_language=4)
    data = build_data(Loaded(store.rows(), store.scores(), ("memory",)))
    report = build_report(data, Options())
    *languages, total = report.language_costs
    assert total["lang"] == ALL_LANGUAGES
    assert sum(r["gen_tokens"] for r in languages) == total["gen_tokens"] == int(np.nansum(data.gen_tokens))
    assert sum(r["candidates"] for r in languages) == total["candidates"] == int(data.stored.sum())
    assert all(r["unknown_tokens"] == 0 for r in report.language_costs)


def test_expected_tokens_is_the_mean_over_every_stratified_subset():
    import itertools

    stored = np.array([[2, 3]])
    tokens = [np.array([10.0, 30.0]), np.array([5.0, 7.0, 12.0])]
    sums = np.array([[t.sum() for t in tokens]])
    got = expected_tokens(stored, sums, 5)[:, 0]
    for n, (m_en, m_de) in enumerate([(1, 0), (1, 1), (2, 1), (2, 2)], start=1):
        brute = np.mean([sum(a) + sum(b) for a in itertools.combinations(tokens[0], m_en)
                         for b in itertools.combinations(tokens[1], m_de)])
        assert got[n - 1] == pytest.approx(brute)


def test_accuracy_at_tokens_interpolates_inside_the_curve_only():
    tokens, accuracy = np.array([100.0, 300.0, 400.0]), np.array([0.2, 0.6, 0.7])
    assert accuracy_at_tokens(tokens, accuracy, 200) == pytest.approx(0.4)
    assert accuracy_at_tokens(tokens, accuracy, 100) == pytest.approx(0.2)
    assert accuracy_at_tokens(tokens, accuracy, 50) is None and accuracy_at_tokens(tokens, accuracy, 401) is None
    assert accuracy_at_tokens(np.array([100.0, np.nan]), accuracy[:2], 100) is None


def _as_old_store(directory: Path) -> None:
    with contextlib.closing(sqlite3.connect(directory / STORE_FILE)) as db, db:
        for table, column in (("candidates", "prompt_tokens"), ("candidates", "gen_tokens"),
                              ("candidates", "hit_cap"), ("scores", "input_tokens")):
            db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")


def _report_files(store: Path, out: Path) -> dict[str, str]:
    assert cli.main(["--store", str(store), "--out", str(out), "--targets", "de", "--mc-samples", "20"]) == 0
    return {p.name: p.read_text() for p in out.iterdir() if p.suffix in (".csv", ".md")}


def test_an_old_store_gives_the_same_report_plus_recounted_costs(tiny_generator_dir, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    store = tmp_path / "store"
    build_synthetic_store(str(store), problems=6, languages=["en", "de"], samples_per_language=3,
                          generator=str(tiny_generator_dir)).close()
    before = _report_files(store, tmp_path / "before")
    _as_old_store(store)
    after = _report_files(store, tmp_path / "after")
    for name in ("budget_curves.csv", "pool_ablation.csv", "pass_at_k.csv", "selected_language.csv"):
        assert after[name] == before[name], name
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_generator_dir))
    texts = [c for c in CandidateStore(str(store), read_only=True).rows()]
    recounted = {lang: sum(len(tokenizer(c.text, add_special_tokens=False)["input_ids"]) for c in texts
                           if c.lang == lang) for lang in ("en", "de")}
    rows = {r["lang"]: r for r in csv.DictReader(after[LANGUAGE_COSTS_CSV].splitlines())}
    assert {lang: int(rows[lang]["gen_tokens"]) for lang in ("en", "de")} == recounted
    assert rows["all"]["hit_cap_share"] == "" and rows["all"]["unknown_tokens"] == "0"  # the cap: not recounted
    assert "recounted from their text" in after["summary.md"]
    assert "unknown" not in after[COMPUTE_MATCHED_CSV]

    def no_tokenizer(*args, **kwargs):
        raise OSError("not available offline")

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", no_tokenizer)
    unknown = _report_files(store, tmp_path / "unknown")
    assert unknown["budget_curves.csv"] == before["budget_curves.csv"]
    rows = {r["lang"]: r for r in csv.DictReader(unknown[LANGUAGE_COSTS_CSV].splitlines())}
    assert rows["all"]["gen_tokens"] == "" and rows["all"]["unknown_tokens"] == str(6 * 2 * 3)
    summary = unknown["summary.md"]
    assert "could not be loaded offline" in summary and "| all | 36 | unknown | unknown |" in summary
    assert all(r["accuracy"] == "" for r in csv.DictReader(unknown[COMPUTE_MATCHED_CSV].splitlines()))


def test_the_report_writes_the_cost_tables_and_plot(tmp_path):
    build_synthetic_store(str(tmp_path / "store"), problems=8, languages=["en", "de", "fr"],
                          samples_per_language=4).close()
    assert cli.main(["--store", str(tmp_path / "store"), "--out", str(tmp_path / "out"), "--mc-samples", "20"]) == 0
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "## What the answers cost (generated tokens)" in summary
    assert "| method | greedy x1 (" in summary and "greedy x8" in summary
    assert (tmp_path / "out" / TOKENS_PLOT).read_bytes().startswith(b"\x89PNG")


def test_compare_puts_each_runs_cost_beside_its_accuracy(tmp_path):
    cost = {"gen_tokens": {"total": 12345, "by_lang": {"en": 5000, "de": 7345}}, "verifier_tokens": 6789,
            "unknown": {"candidates": 0, "scores": 0}, "seconds": {"sampling": 10.0, "scoring": 2.5,
                                                                     "selection": 0.25, "translation": 0.0}}
    config = {**BESTOFL, "bestofl": {**BESTOFL["bestofl"], "cost": cost}}
    values = {"mgsm_xling_de": {i: float(i < 6) for i in range(10)}}
    out = tmp_path / "cmp"
    assert cli.main(["compare", str(write_run(tmp_path / "hf", HF, values)),
                     str(write_run(tmp_path / "bol", config, values)), "--out", str(out)]) == 0
    rows = {r["run"]: r for r in csv.DictReader((out / RUN_COSTS_CSV).read_text().splitlines())}
    mine = rows["bestofl tiny-generator verifier=ver n=4 pool=en:de"]
    assert (mine["gen_tokens"], mine["verifier_tokens"], mine["seconds"], mine["accuracy"]) == \
        ("12345", "6789", "12.75", "0.6")
    assert rows["hf tiny-generator"]["gen_tokens"] == "" and rows["hf tiny-generator"]["accuracy"] == "0.6"
    summary = (out / SUMMARY_MD).read_text()
    assert "| `bestofl tiny-generator verifier=ver n=4 pool=en:de` | 10 | 60.0 | 12,345 | 6,789 | 12.75 |" in summary
    assert "| `hf tiny-generator` | 10 | 60.0 | unknown | unknown | unknown |" in summary
    json.dumps(rows)
