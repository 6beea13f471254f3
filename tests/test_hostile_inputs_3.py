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


def _store(directory, problems: int = 4):
    from bestofl_models.report.synthetic import build_synthetic_store

    build_synthetic_store(str(directory), problems=problems, languages=("en", "de"), samples_per_language=2,
                          text=False).close()
    return directory


def _report(argv, capsys):
    """``bestofl-report`` with ``argv``: (exit code, stderr); never a traceback."""
    from bestofl_models.report.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


# ------------------------------------------------------------------------------ 1. export onto the store


def test_export_never_replaces_the_store_it_reads(tmp_path, capsys):
    store = _store(tmp_path / "S")
    before = {p.name: p.read_bytes() for p in store.iterdir()}
    link = tmp_path / "looks-harmless.jsonl"
    os.link(store / "store.sqlite", link)  # the same file under another name
    for out in (store / "store.sqlite", store / "store.sqlite-wal", store / "candidates.jsonl", link,
                tmp_path / "S" / ".." / "S" / "store.sqlite"):
        code, err = _report(["export", "--store", store, "--out", out], capsys)
        assert code == 2 and "the export would replace the store" in err and "Traceback" not in err, (out, err)
    assert {p.name: p.read_bytes() for p in store.iterdir()} == before
    code, err = _report(["export", "--store", store, "--out", tmp_path / "export.jsonl"], capsys)
    assert code == 0 and (tmp_path / "export.jsonl").read_text().count("\n") == 4 * 2 * 2


# ------------------------------------------------------------------------------ 8. messages, not tracebacks


def _damage(path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "random":
        data = bytearray(os.urandom(len(data)))
    elif how == "truncated":
        data = data[: len(data) // 3]
    elif how == "zeroed":
        data[4096:] = bytes(len(data) - 4096)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["random", "truncated", "zeroed"])
def test_a_damaged_store_is_a_message_in_report_and_export(tmp_path, capsys, how):
    store = _store(tmp_path / "S", problems=40)
    assert not (store / "store.sqlite-wal").exists()
    _damage(store / "store.sqlite", how)
    for argv in (["--store", store, "--out", tmp_path / "R"], ["export", "--store", store]):
        code, err = _report(argv, capsys)
        assert code == 2 and "is damaged or not a bestofl store" in err and ".recover" in err, (argv, err)
        assert "Traceback" not in err


def test_a_non_numeric_schema_version_is_a_message(tmp_path, capsys):
    import sqlite3

    from bestofl_models.store import CandidateStore, StoreError

    store = _store(tmp_path / "S")
    with sqlite3.connect(store / "store.sqlite") as db:
        db.execute("UPDATE meta SET value='one' WHERE name='schema_version'")
    db.close()
    with pytest.raises(StoreError, match="schema version 'one' is not a number"):
        CandidateStore(store)
    code, err = _report(["export", "--store", store], capsys)
    assert code == 2 and "schema version 'one' is not a number" in err


def test_export_out_at_a_folder_or_under_a_missing_folder_is_a_message(tmp_path, capsys):
    store = _store(tmp_path / "S")
    code, err = _report(["export", "--store", store, "--out", tmp_path], capsys)
    assert code == 2 and "is a folder; give a file name" in err
    code, err = _report(["export", "--store", store, "--out", tmp_path / "no" / "such" / "x.jsonl"], capsys)
    assert code == 2 and "does not exist; create it" in err


# ------------------------------------------------------------------------------ 10. adaptive --tolerance


@pytest.mark.parametrize("value", ["nan", "-0.5", "inf", "lots"])
def test_adaptive_refuses_a_tolerance_that_is_not_a_finite_non_negative_number(tmp_path, capsys, value):
    from bestofl_models.report.adaptive_budget import simulate

    code, err = _report(["adaptive", "--store", tmp_path, "--out", tmp_path / "A", "--tolerance", value], capsys)
    assert code == 2 and "--tolerance" in err and "finite number of accuracy points >= 0" in err
    with pytest.raises(ValueError, match="tolerance must be a finite number"):
        simulate(None, (), (), None, None, float(value) if value != "lots" else -1.0)
