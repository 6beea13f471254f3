"""Candidate store: round trip, no duplicates, torn lines, reuse, unwritable directories, in-memory mode."""

from __future__ import annotations

import errno
import json
import logging
import math
import os

import pytest

from bestofl_models import store as store_module
from bestofl_models.store import (
    CANDIDATES_FILE,
    MISSING,
    SCORES_FILE,
    Candidate,
    CandidateStore,
    StoreNotWritableError,
    candidate_key,
    prompt_hash,
)

SETTINGS = {"temperature": 0.7, "top_p": 1.0, "max_gen_toks": 256, "seed": 1234, "stop": ["</s>"]}


def make(i, lang="en", problem="mgsm-0001", target="de", generator="gen-a", text=None):
    prompt = f"prompt {problem} {lang}"
    return Candidate(
        key=candidate_key(generator, prompt, SETTINGS, i),
        problem_id=problem,
        task=f"mgsm_xling_{target}",
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


def lines(path):
    with open(path, "rb") as f:
        return f.read().splitlines()


def test_key_depends_on_generator_prompt_settings_index_only():
    base = candidate_key("g", "p", SETTINGS, 0)
    assert base == candidate_key("g", "p", dict(SETTINGS, temperature=0.70, stop=["</s>", "</s>"]), 0)
    assert base != candidate_key("g2", "p", SETTINGS, 0)
    assert base != candidate_key("g", "p2", SETTINGS, 0)
    assert base != candidate_key("g", "p", dict(SETTINGS, seed=1), 0)
    assert base != candidate_key("g", "p", SETTINGS, 1)
    # Same prompt from another task or target language: same key.
    assert make(0, target="de").key == make(0, target="fr").key
    # 1 and 1.0 are the same temperature; stop order does not matter.
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
    for line in lines(tmp_path / CANDIDATES_FILE) + lines(tmp_path / SCORES_FILE):
        json.loads(line)  # plain JSON Lines


def test_texts_with_any_line_break_round_trip_and_export(tmp_path):
    """Generated text may hold form feeds, NEL, U+2028, CR: one JSON line each in the store and the export."""
    from bestofl_models.report.cli import main as report_main

    odd = "a\x0cb\x85c\u2028d\u2029e\rf\r\ng\x1ch\x0bi\n"
    store = CandidateStore(tmp_path / "store")
    store.add_candidates([make(0, text=odd), make(1)])
    assert CandidateStore(tmp_path / "store", read_only=True).get(make(0).key).text == odd
    assert len(lines(tmp_path / "store" / CANDIDATES_FILE)) == 2
    assert report_main(["export", "--store", str(tmp_path / "store"), "--out", str(tmp_path / "export.jsonl")]) in (0, None)
    with open(tmp_path / "export.jsonl", encoding="utf-8") as f:  # iterating a file splits on newlines only
        exported = [json.loads(line) for line in f]
    assert len(exported) == 2 and {row["text"] for row in exported} == {odd, make(1).text}


def test_duplicates_are_never_written(tmp_path):
    store = CandidateStore(tmp_path)
    assert len(store.add_candidates([make(0), make(0), make(1)])) == 2
    assert [fields(c) for c in store.add_candidates([make(0, target="fr"), make(2)])] == [fields(make(2))]
    assert store.add_scores("v", {make(0).key: 0.5}) == 1
    assert store.add_scores("v", {make(0).key: 0.9}) == 0
    assert store.score(make(0).key, "v") == 0.5  # first score wins
    other = CandidateStore(tmp_path)
    assert [c.key for c in other.add_candidates([make(1), make(2), make(3)])] == [make(3).key]
    assert len(lines(tmp_path / CANDIDATES_FILE)) == 4
    assert len(lines(tmp_path / SCORES_FILE)) == 1


def test_two_writers_on_one_directory_do_not_duplicate(tmp_path):
    first, second = CandidateStore(tmp_path), CandidateStore(tmp_path)
    first.add_candidates([make(0), make(1)])
    # ``second`` opened before those were written; it must still not write them again.
    assert [c.key for c in second.add_candidates([make(1), make(2)])] == [make(2).key]
    second.add_scores("v", {make(0).key: 0.1})
    assert first.add_scores("v", {make(0).key: 0.2, make(2).key: 0.3}) == 1
    assert len(lines(tmp_path / CANDIDATES_FILE)) == 3
    assert len(lines(tmp_path / SCORES_FILE)) == 2


def test_torn_last_line_is_dropped_and_truncated(tmp_path, caplog):
    CandidateStore(tmp_path).add_candidates([make(0), make(1)])
    path = tmp_path / CANDIDATES_FILE
    good = path.read_bytes()
    torn = json.dumps(make(2).to_record()).encode()[:57]
    path.write_bytes(good + torn)
    with caplog.at_level(logging.WARNING, logger="bestofl_models.store"):
        store = CandidateStore(tmp_path)
    assert "torn last line" in caplog.text
    assert len(store) == 2
    assert path.read_bytes() == good
    store.add_candidates([make(2)])
    assert [json.loads(line)["sample_idx"] for line in lines(path)] == [0, 1, 2]


def test_complete_last_record_without_newline_is_kept(tmp_path):
    CandidateStore(tmp_path).add_candidates([make(0)])
    path = tmp_path / CANDIDATES_FILE
    path.write_bytes(path.read_bytes() + json.dumps(make(1).to_record()).encode())
    store = CandidateStore(tmp_path)
    assert len(store) == 2
    assert path.read_bytes().endswith(b"}\n")
    store.add_candidates([make(2)])
    assert len(CandidateStore(tmp_path)) == 3


def test_read_only_open_ignores_a_torn_line_without_touching_the_file(tmp_path):
    CandidateStore(tmp_path).add_candidates([make(0)])
    path = tmp_path / CANDIDATES_FILE
    path.write_bytes(path.read_bytes() + b'{"key": "tor')
    before = path.read_bytes()
    store = CandidateStore(tmp_path, read_only=True)
    assert len(store) == 1
    assert path.read_bytes() == before
    with pytest.raises(PermissionError, match="read-only"):
        store.add_candidates([make(1)])


def test_read_only_store_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="No candidate store"):
        CandidateStore(tmp_path / "missing", read_only=True)


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


def test_full_disk_leaves_no_partial_line(tmp_path, monkeypatch):
    store = CandidateStore(tmp_path)
    store.add_candidates([make(0)])
    good = (tmp_path / CANDIDATES_FILE).read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store_module.os, "fsync", full)
    with pytest.raises(StoreNotWritableError, match="not writable: No space left on device; pass store="):
        store.add_candidates([make(1), make(2)])
    assert (tmp_path / CANDIDATES_FILE).read_bytes() == good
    assert make(1).key not in store
    with pytest.raises(StoreNotWritableError):
        CandidateStore(tmp_path / "other")  # the probe on open sees it too
    monkeypatch.undo()
    assert len(CandidateStore(tmp_path).add_candidates([make(1), make(2)])) == 2


def test_scores_need_known_candidates_and_numbers(tmp_path):
    for store in (CandidateStore(tmp_path), CandidateStore(None)):
        store.add_candidates([make(0)])
        with pytest.raises(ValueError, match="not candidates in this store"):
            store.add_scores("v", {"nope": 0.5})
        with pytest.raises(TypeError, match="number or None"):
            store.add_scores("v", {make(0).key: "0.5"})
        with pytest.raises(ValueError, match="non-empty name"):
            store.add_scores("", {make(0).key: 0.5})
        assert store.add_scores("v", {make(0).key: float("inf")}) == 1
        assert math.isnan(store.score(make(0).key, "v"))
        assert store.scores("v") == {(make(0).key, "v"): None}


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


def test_unreadable_middle_line_is_skipped_with_a_warning(tmp_path, caplog):
    CandidateStore(tmp_path).add_candidates([make(0)])
    path = tmp_path / CANDIDATES_FILE
    path.write_bytes(path.read_bytes() + b"garbage\n" + json.dumps(make(1).to_record()).encode() + b"\n")
    with caplog.at_level(logging.WARNING, logger="bestofl_models.store"):
        assert len(CandidateStore(tmp_path)) == 2
    assert "unreadable line" in caplog.text


def test_no_pickle_in_the_store_module():
    source = open(store_module.__file__, encoding="utf-8").read()
    assert "pickle" not in source and "eval(" not in source


def test_writer_killed_mid_batch_leaves_a_repairable_store(tmp_path, caplog):
    """kill -9 a process in the middle of an append (a slow disk: small writes): reopening drops the torn
    line, keeps every whole one, and later appends never duplicate."""
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    script = textwrap.dedent(f"""
        import os, time
        from bestofl_models import store as store_module
        from bestofl_models.store import Candidate, CandidateStore

        def slow_write(fd, data):
            time.sleep(0.002)
            return os.write(fd, bytes(data[:4096]))

        store = CandidateStore({str(tmp_path)!r})
        store_module.os = type("SlowOs", (), {{"__getattr__": lambda self, name: getattr(os, name),
                                             "write": staticmethod(slow_write)}})()
        for batch in range(1000):
            store.add_candidates([
                Candidate(key=f"k{{batch}}-{{i}}", problem_id="p", task="t", doc_id=0, target_lang="en", lang="en",
                          sample_idx=batch * 10 + i, generator="g", prompt_hash="h", settings={{}},
                          text="x" * 5_000, answer="1", gold="1")
                for i in range(10)
            ])
    """)
    child = subprocess.Popen([sys.executable, "-c", script])
    path = tmp_path / CANDIDATES_FILE
    deadline = time.monotonic() + 60
    while (not path.exists() or path.stat().st_size < 200_000) and time.monotonic() < deadline:
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait()
    torn = not path.read_bytes().endswith(b"\n")
    with caplog.at_level(logging.WARNING, logger="bestofl_models.store"):
        store = CandidateStore(tmp_path)
    assert torn == ("torn last line" in caplog.text)
    data = path.read_bytes()
    assert data.endswith(b"\n")
    keys = [json.loads(line)["key"] for line in data.splitlines()]
    assert len(keys) == len(set(keys)) == len(store) > 0
    assert torn, "the writer was expected to die mid-line (slow writes of 4 KB)"
