"""Issue #21, the third round of hostile inputs: nothing lost, nothing silently wrong.

One test (or a few) per item of the issue; none needs a model or reads anything outside the checkout."""

from __future__ import annotations

import os

import pytest


# ------------------------------------------------------------------------------ 2. the atomic writer and links


def test_the_atomic_writer_never_follows_a_link_planted_at_its_temporary_name(tmp_path):
    from bestofl_models.atomic import atomic_open, atomic_write

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out.jsonl"
    # the name the old writer always used, and names a guesser would try
    for name in (f".out.jsonl.{os.getpid()}.tmp", ".out.jsonl.tmp"):
        (tmp_path / name).symlink_to(victim)
    atomic_write(out, "new\n")
    with atomic_open(out, "w", encoding="utf-8") as handle:
        handle.write("newer\n")
    assert victim.read_text() == "precious\n"
    assert out.read_text() == "newer\n" and not out.is_symlink()
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert sorted(p.name for p in tmp_path.iterdir() if not p.is_symlink()) == ["out.jsonl", "victim.txt"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
