"""recommend-pool on stores whose best pool is known, and the pool file that languages=auto:FILE reads."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from bestofl_models.selection.pool import RECOMMENDED_POOL_FILE, read_recommended_pool
from bestofl_models.report import cli, recommend
from bestofl_models.report.build import Options, ReportContext
from bestofl_models.report.data import build_data, load_stores
from bestofl_models.report.recommend import (
    CANDIDATES_CSV,
    PLOT,
    recommend_pool,
    split_problems,
)
from bestofl_models.report.synthetic import build_synthetic_store

LANGUAGES = ("en", "de", "fr", "ru", "zh", "ja")
#: de and fr are both the most accurate and the best verified: the best pool of two is fr:de (MGSM order).
KNOWN_BEST = {"languages": LANGUAGES, "accuracies": (0.3, 0.6, 0.65, 0.25, 0.2, 0.15),
              "separation": (0.5, 3.0, 3.0, 0.5, 0.5, 0.5)}


@pytest.fixture(scope="module")
def known_store(tmp_path_factory):
    directory = tmp_path_factory.mktemp("known-best")
    build_synthetic_store(str(directory), problems=120, samples_per_language=2, seed=5, text=False, **KNOWN_BEST)
    return str(directory)


@pytest.fixture(scope="module")
def known_data(known_store):
    return build_data(load_stores([known_store]))


def test_the_cli_picks_the_known_best_pool_and_writes_the_pool_file(known_store, tmp_path, caplog):
    out = tmp_path / "pool"
    assert cli.main(["recommend-pool", "--store", known_store, "--out", str(out), "--size", "2", "--seed", "3"]) == 0
    assert read_recommended_pool(out) == read_recommended_pool(out / RECOMMENDED_POOL_FILE) == ("fr", "de")
    written = json.loads((out / RECOMMENDED_POOL_FILE).read_text(encoding="utf-8"))
    assert written["generator"] == "synthetic-generator" and written["verifier"] == "synthetic-verifier"
    assert written["search"] == "exhaustive" and written["budget"] == 4 and written["seed"] == 3
    assert written["dev_problems"] + written["heldout_problems"] == 120
    assert set(written["accuracy"]) == {"recommended", "default", "english_only", "target_only"}
    difference = written["difference_vs_default"]
    assert difference["low"] > 0 and written["warning"] is None and "no better" not in caplog.text
    recommended = written["accuracy"]["recommended"]
    assert recommended["heldout_low"] <= recommended["heldout_accuracy"] <= recommended["heldout_high"]
    with open(out / CANDIDATES_CSV, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len([r for r in rows if r["kind"] in ("recommended", "searched")]) == 15  # C(6, 2)
    assert (out / PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "**Recommended pool: `fr:de`**" in (out / "summary.md").read_text(encoding="utf-8")


def test_greedy_forward_selection_finds_it_too(known_data, monkeypatch):
    monkeypatch.setattr(recommend, "EXHAUSTIVE_LIMIT", 1)
    result = recommend_pool(known_data, 2, seed=3)
    assert result.search == recommend.GREEDY and result.pool == ("fr", "de")
    # Scored: 6 single languages, then 5 pairs holding the first pick; the pairs are kept.
    assert len([row for row in result.pools if row["kind"] in ("recommended", "searched")]) == 5


def test_dev_accuracy_is_the_exact_cross_orm_accuracy_on_the_dev_problems(known_data):
    result = recommend_pool(known_data, 2, seed=1)
    dev = np.array([known_data.problem_ids.index(p) for p in result.dev_problems])
    ctx = ReportContext(known_data, Options(mc_samples=1))
    view = ctx.view(("fr", "de"), 4, among=dev)
    curves, _ = ctx.curves(view, known_data.languages, ["cross_orm"])
    assert result.pools[0]["dev_accuracy"] == pytest.approx(curves["cross_orm"]["average"][0][3], abs=1e-12)


def test_the_split_is_seeded_and_disjoint():
    rows = np.arange(50)
    dev, held = split_problems(rows, 0.3, seed=7)
    again, _ = split_problems(rows, 0.3, seed=7)
    other, _ = split_problems(rows, 0.3, seed=8)
    assert len(dev) == 15 and not set(dev) & set(held) and set(dev) | set(held) == set(rows)
    assert np.array_equal(dev, again) and not np.array_equal(dev, other)


def test_it_warns_when_the_pool_is_no_better_than_the_default(tmp_path, caplog):
    directory = tmp_path / "alike"
    build_synthetic_store(str(directory), problems=30, languages=("en", "de", "fr"), samples_per_language=2, seed=2,
                          text=False, accuracies=(0.5, 0.5, 0.5))
    out = tmp_path / "pool"
    assert cli.main(["recommend-pool", "--store", str(directory), "--out", str(out), "--size", "2"]) == 0
    written = json.loads((out / RECOMMENDED_POOL_FILE).read_text(encoding="utf-8"))
    assert written["difference_vs_default"]["low"] <= 0
    assert "no better than the default pool" in written["warning"] and written["warning"] in caplog.text


def test_cli_errors_say_what_to_change(known_store, tmp_path, capsys):
    for argv, message in [
        (["--size", "7"], "pass --size 6 or less"),
        (["--size", "2", "--budget", "5"], "pass --budget 4 or less"),
        (["--size", "2", "--dev-fraction", "1"], "strictly between 0 and 1"),
    ]:
        with pytest.raises(SystemExit):
            cli.main(["recommend-pool", "--store", known_store, "--out", str(tmp_path / "r"), *argv])
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (None, "no file"),
    ("{not json", "cannot read"),
    ('{"pool": ["en"]}', "not a recommend-pool file"),
    ('{"format": "bestofl-recommended-pool", "version": 2, "pool": ["en"]}', "upgrade bestofl"),
    ('{"format": "bestofl-recommended-pool", "version": 1, "pool": "en:de"}', "list of language codes"),
    ('{"format": "bestofl-recommended-pool", "version": 1, "pool": ["en", "en"]}', "more than once"),
    ('{"format": "bestofl-recommended-pool", "version": 1, "pool": []}', "empty"),
])
def test_bad_pool_files_say_what_to_pass(tmp_path, content, message):
    path = tmp_path / RECOMMENDED_POOL_FILE
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as caught:
        read_recommended_pool(path)
    assert str(caught.value).startswith(f"languages=auto:{path}")
    if content is None:
        assert "bestofl-report recommend-pool --store" in str(caught.value)
