"""bestofl_models.store.atomic: a write is all or nothing."""

from __future__ import annotations

import pytest

from bestofl_models.store.atomic import atomic_open, atomic_write


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.jsonl"
    atomic_write(path, "old\n")
    with pytest.raises(RuntimeError), atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write("half of the new")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_a_finished_write_replaces_the_file(tmp_path):
    path = tmp_path / "out.bin"
    atomic_write(path, "old")
    atomic_write(path, b"\x00new")
    assert path.read_bytes() == b"\x00new" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]
