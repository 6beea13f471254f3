"""Candidate store (SQLite): round trip, uses, text-bound scores, concurrency, kills, full disk, symlinks,
the import of 0.1's JSON Lines stores, reading several stores."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from bestofl_models.store import store as store_module
from bestofl_models.store import (
    LEGACY_CANDIDATES,
    MISSING,
    STORE_FILE,
    Candidate,
    CandidateStore,
    StoreError,
    StoreNotWritableError,
    Use,
    candidate_key,
    prompt_hash,
)
from store_tables import row_count

SETTINGS = {"temperature": 0.7, "top_p": 1.0, "max_gen_toks": 256, "seed": 1234, "stop": ["</s>"]}


def make(i, lang="en", problem="mgsm-0001", target="de", generator="gen-a", text=None, task=None):
    prompt = f"prompt {problem} {lang}"
    return Candidate(
        key=candidate_key(generator, prompt, SETTINGS, i),
        problem_id=problem,
        task=task or f"mgsm_xling_{target}",
        doc_id=1,
        target_lang=target,
        lang=lang,
        sample_idx=i,
        generator=generator,
        prompt_hash=prompt_hash(prompt),
        settings=dict(SETTINGS),
        text=text if text is not None else f"Step {i}. Die Antwort lautet {i}.",
        answer=str(i),
        gold="3",
    )


def fields(candidate):
    """A candidate's stored fields except its creation time."""
    return {k: v for k, v in candidate.to_record().items() if k != "created"}


def test_key_depends_on_generator_prompt_settings_index_only():
    base = candidate_key("g", "p", SETTINGS, 0)
    assert base == candidate_key("g", "p", dict(SETTINGS, temperature=0.70, stop=["</s>", "</s>"]), 0)
    assert base != candidate_key("g2", "p", SETTINGS, 0)
    assert base != candidate_key("g", "p2", SETTINGS, 0)
    assert base != candidate_key("g", "p", dict(SETTINGS, seed=1), 0)
    assert base != candidate_key("g", "p", SETTINGS, 1)
    # Same prompt from another task or target language: same key.
    assert make(0, target="de").key == make(0, target="fr").key
    assert candidate_key("g", "p", dict(SETTINGS, temperature=1), 0) == candidate_key(
        "g", "p", dict(SETTINGS, temperature=1.0), 0
    )
    assert candidate_key("g", "p", dict(SETTINGS, stop=["a", "b"]), 0) == candidate_key(
        "g", "p", dict(SETTINGS, stop=["b", "a"]), 0
    )


def test_round_trip_and_reopen(tmp_path):
    store = CandidateStore(tmp_path)
    written = store.add_candidates([make(0), make(1, lang="fr", text="Ünïcode ☃ ৩")])
    assert len(written) == 2
    assert store.add_scores("ver-1", {make(0).key: 0.25, make(1, lang="fr").key: float("nan")}) == 2
    reopened = CandidateStore(tmp_path)
    assert reopened.candidates() == store.candidates()
    assert fields(reopened.get(make(0).key)) == fields(make(0))
    assert reopened.score(make(0).key, "ver-1") == 0.25
    assert math.isnan(reopened.score(make(1, lang="fr").key, "ver-1"))  # NaN: stored as null, read back as NaN
    assert reopened.score(make(0).key, "ver-2") is MISSING
    assert reopened.verifiers() == ["ver-1"]
    assert reopened.scores("ver-1") == {(make(0).key, "ver-1"): 0.25, (make(1, lang="fr").key, "ver-1"): None}
    assert os.listdir(tmp_path) and STORE_FILE in os.listdir(tmp_path)


def test_texts_with_any_line_break_round_trip_and_export(tmp_path):
    """Generated text may hold form feeds, NEL, U+2028, CR: stored as is, one JSON line each in the export."""
    from bestofl_models.report.cli import main as report_main

    odd = "a\x0cb\x85c\u2028d\u2029e\rf\r\ng\x1ch\x0bi\n"
    store = CandidateStore(tmp_path / "store")
    store.add_candidates([make(0, text=odd), make(1)])
    assert CandidateStore(tmp_path / "store", read_only=True).get(make(0).key).text == odd
    assert report_main(["export", "--store", str(tmp_path / "store"), "--out", str(tmp_path / "export.jsonl")]) in (0, None)
    with open(tmp_path / "export.jsonl", encoding="utf-8") as f:  # iterating a file splits on newlines only
        exported = [json.loads(line) for line in f]
    assert len(exported) == 2 and {row["text"] for row in exported} == {odd, make(1).text}


def test_duplicates_are_never_written_and_every_use_is_recorded(tmp_path):
    store = CandidateStore(tmp_path)
    assert len(store.add_candidates([make(0), make(0), make(1)])) == 2
    assert [fields(c) for c in store.add_candidates([make(0, target="fr"), make(2)])] == [fields(make(2))]
    assert store.add_scores("v", {make(0).key: 0.5}) == 1
    assert store.add_scores("v", {make(0).key: 0.9}) == 0
    assert store.score(make(0).key, "v") == 0.5  # first score wins
    other = CandidateStore(tmp_path)
    assert [c.key for c in other.add_candidates([make(1), make(2), make(3)])] == [make(3).key]
    assert row_count(tmp_path, "candidates") == 4 and row_count(tmp_path, "scores") == 1
    assert [(u.task, u.target_lang) for u in store.uses(make(0).key)] == [("mgsm_xling_de", "de"),
                                                                           ("mgsm_xling_fr", "fr")]
    assert store.get(make(0).key).target_lang == "de"  # candidates() shows the first use
    with pytest.raises(ValueError, match="not candidates in this store"):
        store.add_uses([Use("nope", "t", 0, "en", "p", None)])


def test_two_and_three_concurrent_writers_do_not_duplicate(tmp_path):
    first, second = CandidateStore(tmp_path), CandidateStore(tmp_path)
    first.add_candidates([make(0), make(1)])
    # ``second`` opened before those were written; it must still not write them again.
    assert [c.key for c in second.add_candidates([make(1), make(2)])] == [make(2).key]
    second.add_scores("v", {make(0).key: 0.1})
    assert first.add_scores("v", {make(0).key: 0.2, make(2).key: 0.3}) == 1
    assert row_count(tmp_path, "candidates") == 3 and row_count(tmp_path, "scores") == 2

    # three processes writing overlapping batches at once: each key once, each score once
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_store import make
        from bestofl_models.store import CandidateStore
        store = CandidateStore({str(tmp_path / "shared")!r})
        worker = int(sys.argv[1])
        for batch in range(30):
            cands = [make(batch * 10 + i, problem=f"p{{batch}}") for i in range(10)]
            store.add_candidates(cands[worker:] + cands[:worker])
            store.add_scores("v", {{c.key: 0.5 for c in cands[:5]}})
    """)
    workers = [subprocess.Popen([sys.executable, "-c", script, str(w)]) for w in range(3)]
    assert [w.wait(timeout=300) for w in workers] == [0, 0, 0]
    assert row_count(tmp_path / "shared", "candidates") == 300
    assert row_count(tmp_path / "shared", "scores") == 150
    assert row_count(tmp_path / "shared", "uses") == 300


def test_a_writer_killed_mid_transaction_loses_only_its_open_batch(tmp_path):
    """kill -9 while a batch is being written: the store opens cleanly with every committed batch whole."""
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_store import make
        from bestofl_models.store import store as store_module
        from bestofl_models.store import CandidateStore

        real_insert = store_module.CandidateStore._insert
        def slow_insert(self, candidates):  # each batch sits uncommitted for a while
            real_insert(self, candidates)
            time.sleep(0.05)
        store_module.CandidateStore._insert = slow_insert
        store = CandidateStore({str(tmp_path)!r})
        for batch in range(1000):
            store.add_candidates([make(batch * 10 + i, text="x" * 5000) for i in range(10)])
    """)
    child = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 120
    while row_count(tmp_path, "candidates") < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    store = CandidateStore(tmp_path)
    written = len(store)
    assert written >= 30 and written % 10 == 0  # whole batches only
    assert len({c.key for c in store.candidates()}) == written
    assert len(store.add_candidates([make(i) for i in range(written + 10)])) == 10


def test_read_only_store_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="No candidate store"):
        CandidateStore(tmp_path / "missing", read_only=True)
    with pytest.raises(FileNotFoundError, match="No candidate store"):
        CandidateStore(tmp_path, read_only=True)  # a directory holding no store


def test_read_only_open_never_writes(tmp_path):
    CandidateStore(tmp_path).add_candidates([make(0)])
    before = {name: (tmp_path / name).stat().st_mtime_ns for name in os.listdir(tmp_path)}
    store = CandidateStore(tmp_path, read_only=True)
    assert len(store) == 1
    with pytest.raises(PermissionError, match="read-only"):
        store.add_candidates([make(1)])
    assert len(CandidateStore(tmp_path, read_only=True)) == 1
    assert {name: (tmp_path / name).stat().st_mtime_ns for name in before} == before


def test_unwritable_directory_fails_early_with_a_clear_message(tmp_path):
    # A path below a regular file cannot be created, even by root (chmod would not stop root).
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreNotWritableError, match=r"store directory .*file/store is not writable: .*pass store="):
        CandidateStore(blocker / "store")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions; covered by the test above")
def test_read_only_directory_fails_early(tmp_path):
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(StoreNotWritableError, match="is not writable"):
            CandidateStore(tmp_path / "store")
    finally:
        tmp_path.chmod(0o755)


def test_full_disk_rolls_back_the_batch_with_a_clear_error(tmp_path):
    """SQLite's own 'database or disk is full' (a page limit stands in for the disk) rolls the batch back."""
    store = CandidateStore(tmp_path)
    store.add_candidates([make(0)])
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(StoreNotWritableError, match="not writable: No space left on device; pass store="):
        store.add_candidates([make(i, text="x" * 20_000) for i in range(1, 4)])
    assert len(store) == 1 and make(1).key not in store
    store._db.execute("PRAGMA max_page_count=1073741823")  # space freed
    assert len(store.add_candidates([make(i, text="x" * 20_000) for i in range(1, 4)])) == 3


def test_scores_belong_to_the_exact_text_scored(tmp_path):
    """Issue #8 case 1: a score is keyed by the text's hash; a changed text is unscored, never paired with the
    old score; a score of another text is refused."""
    for store in (CandidateStore(tmp_path), CandidateStore(None)):
        store.add_candidates([make(0)])
        with pytest.raises(ValueError, match="not candidates in this store"):
            store.add_scores("v", {"nope": 0.5})
        with pytest.raises(TypeError, match="number or None"):
            store.add_scores("v", {make(0).key: "0.5"})
        with pytest.raises(ValueError, match="non-empty name"):
            store.add_scores("", {make(0).key: 0.5})
        with pytest.raises(ValueError, match="not its stored text"):
            store.add_scores("v", {make(0).key: 0.5}, texts={make(0).key: "another text"})
        assert store.add_scores("v", {make(0).key: float("inf")}, texts={make(0).key: make(0).text}) == 1
        assert math.isnan(store.score(make(0).key, "v"))
        assert store.scores("v") == {(make(0).key, "v"): None}
    db = store_module.sqlite3.connect(tmp_path / STORE_FILE)
    with db:  # the candidate's row is lost and comes back with another text (a regeneration)
        db.execute("DELETE FROM candidates WHERE key = ?", (make(0).key,))
    db.close()
    store = CandidateStore(tmp_path)
    store.add_candidates([make(0, text="a new text")])
    assert store.score(make(0).key, "v") is MISSING and store.scores() == {}
    assert store.add_scores("v", {make(0).key: 0.75}) == 1
    assert store.score(make(0).key, "v") == 0.75


def test_in_memory_store_has_the_same_api(tmp_path):
    store = CandidateStore(None)
    assert len(store.add_candidates([make(0), make(0), make(1)])) == 2
    assert make(0).key in store and "other" not in store
    assert store.add_scores("v", {make(0).key: 0.5, make(1).key: None}) == 2
    assert store.add_scores("v", {make(0).key: 0.7}) == 0
    assert store.score(make(0).key, "v") == 0.5
    assert math.isnan(store.score(make(1).key, "v"))
    assert store.score(make(1).key, "w") is MISSING
    assert store.scores() == {(make(0).key, "v"): 0.5, (make(1).key, "v"): None}
    assert list(tmp_path.iterdir()) == []


def test_generators_are_kept_apart(tmp_path):
    store = CandidateStore(tmp_path)
    store.add_candidates([make(0, generator="gen-a"), make(0, generator="gen-b")])
    assert sorted(c.generator for c in CandidateStore(tmp_path).candidates()) == ["gen-a", "gen-b"]


def test_symlinked_store_files_are_refused(tmp_path):
    """Issue #8 case 4: a store file that is a link is never followed (nothing is written to its target)."""
    target = tmp_path / "precious.db"
    target.write_bytes(b"somebody else's data\n")
    store = tmp_path / "store"
    store.mkdir()
    (store / STORE_FILE).symlink_to(target)
    for read_only in (False, True):
        with pytest.raises(StoreError, match="is a symbolic link; bestofl never follows store files"):
            CandidateStore(store, read_only=read_only)
    assert target.read_bytes() == b"somebody else's data\n"
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / LEGACY_CANDIDATES).symlink_to(target)
    with pytest.raises(StoreError, match="is a symbolic link"):
        CandidateStore(legacy, read_only=True)
    assert target.read_bytes() == b"somebody else's data\n"


def _legacy_store(directory, records):
    directory.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in records]
    (directory / LEGACY_CANDIDATES).write_bytes(b"\n".join(lines) + b"\n")
    (directory / "scores.jsonl").write_bytes(json.dumps({"key": make(0).key, "verifier": "v", "score": 0.9}).encode()
                                             + b"\n")


def test_a_legacy_jsonl_store_is_imported_once_without_touching_it(tmp_path, caplog):
    """Issue #8 case 7 too: rows of the wrong type are skipped with a warning naming the row."""
    directory = tmp_path / "old"
    good = [make(0).to_record(), make(1).to_record()]
    for record in good:
        record.pop("generator_id")
    _legacy_store(directory, [good[0], b"garbage", {**good[1], "key": ["a", "list"]}, {**good[1], "text": None},
                              {**good[1], "sample_idx": "one"}, good[1]])
    before = {name: (directory / name).read_bytes() for name in os.listdir(directory)}
    with caplog.at_level(logging.WARNING, logger="bestofl_models.store.database"):
        reader = CandidateStore(directory, read_only=True)
    assert [c.key for c in reader.candidates()] == [make(0).key, make(1).key]
    assert reader.scores() == {}  # 0.1 scores do not say which text they scored
    assert all(c.generator_id == "legacy:gen-a" for c in reader.candidates())
    for line in (2, 3, 4, 5):
        assert f"{LEGACY_CANDIDATES} line {line}: skipping a row" in caplog.text
    assert not (directory / STORE_FILE).exists()  # reading imports into memory

    writer = CandidateStore(directory)
    assert len(writer) == 2
    writer.add_candidates([make(5)])
    assert len(CandidateStore(directory)) == 3  # imported once: reopening does not import again
    assert {name: (directory / name).read_bytes() for name in before} == before


def test_a_question_shared_by_two_tasks_belongs_to_both_problems(tmp_path):
    """Issue #8 case 6: one candidate used by mgsm_xling_en and gsm8k_xling_en is in both problems, never split."""
    from bestofl_models.report.data import build_data, load_stores
    from bestofl_models.report.export import export_records

    store = CandidateStore(tmp_path)
    mgsm = [make(i, lang="en", problem="mgsm-0001", target="en", task="mgsm_xling_en") for i in range(2)]
    store.add_candidates(mgsm)
    store.add_uses(Use(c.key, "gsm8k_xling_en", 1, "en", "gsm8k-test-0001", "3") for c in mgsm)
    store.add_uses(Use(c.key, "mgsm_xling_de", 1, "de", "mgsm-0001", "3") for c in mgsm)  # another target
    store.add_candidates([make(i, lang="de", problem="mgsm-0001", target="de") for i in range(2)])
    rows = list(export_records([str(tmp_path)]))
    assert sorted((r["problem_id"], r["lang"], r["sample_idx"], r["task"]) for r in rows) == [
        ("gsm8k-test-0001", "en", 0, "gsm8k_xling_en"), ("gsm8k-test-0001", "en", 1, "gsm8k_xling_en"),
        ("mgsm-0001", "de", 0, "mgsm_xling_de"), ("mgsm-0001", "de", 1, "mgsm_xling_de"),
        ("mgsm-0001", "en", 0, "mgsm_xling_en"), ("mgsm-0001", "en", 1, "mgsm_xling_en")]
    data = build_data(load_stores([str(tmp_path)]))
    assert data.problem_ids == ["gsm8k-test-0001", "mgsm-0001"]
    assert data.languages == ("en", "de") and data.stored.tolist() == [[2, 0], [2, 2]]


def test_several_stores_are_read_together_and_copied_on_use(tmp_path):
    a, b = CandidateStore(tmp_path / "a"), CandidateStore(tmp_path / "b")
    a.add_candidates([make(0), make(1)])
    a.add_scores("v", {make(0).key: 0.5})
    b.add_candidates([make(1), make(2)])
    from bestofl_models.report.data import load_stores

    loaded = load_stores([str(tmp_path / "a"), str(tmp_path / "b")])
    assert sorted(c.sample_idx for c in loaded.candidates) == [0, 1, 2]
    mine = CandidateStore(tmp_path / "mine")
    assert mine.copy_from(CandidateStore(tmp_path / "a", read_only=True), [make(0).key, make(9).key], "v") == 1
    assert mine.score(make(0).key, "v") == 0.5 and mine.uses(make(0).key) == a.uses(make(0).key)
    assert mine.copy_from(CandidateStore(tmp_path / "a", read_only=True), [make(0).key], "v") == 0


def test_the_schema_enforces_types_and_a_newer_schema_is_refused(tmp_path):
    store = CandidateStore(tmp_path)
    with pytest.raises(TypeError, match="sample_idx must be an integer"):
        store.add_candidates([Candidate(**{**make(0).__dict__, "sample_idx": "0"})])
    with pytest.raises(sqlite3.IntegrityError):  # STRICT tables: no wrong type reaches the file
        store._db.execute("INSERT INTO candidates VALUES ('k', 'en', 'zero', 'g', 'g', 'h', '{}', 't', 'h', NULL, 'c', NULL, NULL, NULL)")
    store._db.execute("UPDATE meta SET value='99' WHERE name='schema_version'")
    with pytest.raises(StoreError, match="newer bestofl"):
        CandidateStore(tmp_path)
