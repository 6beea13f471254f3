"""Raw views of a store's SQLite tables for tests (read-only connections, no bestofl code in between)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from bestofl_models.store import STORE_FILE

COLUMNS = {"candidates": "key, text_hash, text, created", "scores": "key, text_hash, verifier, score, created",
           "uses": "key, task, doc_id, target_lang, problem_id"}


def row_count(store_dir: Path, table: str) -> int:
    """Rows in ``table``; 0 while the store or the table does not exist yet."""
    path = Path(store_dir) / STORE_FILE
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        try:
            return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        except sqlite3.OperationalError:  # tables not created yet
            return 0


def snapshot(store_dir: Path, table: str) -> set[tuple]:
    """Every row of ``table`` (the columns that would change if a row were rewritten)."""
    with contextlib.closing(sqlite3.connect(f"file:{Path(store_dir) / STORE_FILE}?mode=ro", uri=True)) as db:
        return set(db.execute(f"SELECT {COLUMNS[table]} FROM {table}"))
