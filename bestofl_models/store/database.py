"""Opening a store: the SQLite file and its schema (version check, WAL, busy timeout), a read-only or
in-memory database, the one-time import of a bestofl 0.1 JSON Lines store, write transactions and the mapping
of SQLite's errors onto ``StoreError`` / ``StoreNotWritableError``. :class:`~.store.CandidateStore` reads and
writes on top of it."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence

from .files import damaged_store_error, refuse_network_filesystem, refuse_symlinks, uri_path
from .records import ADDED_COLUMNS, StoreError, StoreNotWritableError, canonical_json, chunks, legacy_candidate

logger = logging.getLogger(__name__)

STORE_FILE = "store.sqlite"
LEGACY_CANDIDATES = "candidates.jsonl"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 120

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS candidates (
    key TEXT PRIMARY KEY, lang TEXT, sample_idx INTEGER NOT NULL, generator TEXT NOT NULL,
    generator_id TEXT NOT NULL, prompt_hash TEXT NOT NULL, settings TEXT NOT NULL, text TEXT NOT NULL,
    text_hash TEXT NOT NULL, answer TEXT, created TEXT NOT NULL, prompt_tokens INTEGER,
    gen_tokens INTEGER, hit_cap INTEGER
) STRICT;
CREATE TABLE IF NOT EXISTS uses (
    key TEXT NOT NULL REFERENCES candidates(key), task TEXT NOT NULL, doc_id TEXT NOT NULL,
    target_lang TEXT NOT NULL, problem_id TEXT NOT NULL, gold TEXT, created TEXT NOT NULL,
    PRIMARY KEY (key, task, doc_id, target_lang)
) STRICT;
CREATE INDEX IF NOT EXISTS uses_by_problem ON uses (problem_id);
CREATE TABLE IF NOT EXISTS scores (
    key TEXT NOT NULL REFERENCES candidates(key), text_hash TEXT NOT NULL, verifier TEXT NOT NULL, score REAL,
    created TEXT NOT NULL, input_tokens INTEGER, PRIMARY KEY (key, text_hash, verifier)
) STRICT;
CREATE TABLE IF NOT EXISTS models (id TEXT PRIMARY KEY, role TEXT NOT NULL, name TEXT NOT NULL,
    identity TEXT NOT NULL, created TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS runs (generator_id TEXT NOT NULL, config TEXT NOT NULL, created TEXT NOT NULL,
    UNIQUE (generator_id, config)) STRICT;
CREATE TABLE IF NOT EXISTS translations (
    key TEXT PRIMARY KEY, translator TEXT NOT NULL, source_hash TEXT NOT NULL, source_lang TEXT NOT NULL,
    target_lang TEXT NOT NULL, settings TEXT NOT NULL, source TEXT NOT NULL, text TEXT NOT NULL,
    missing_numbers TEXT NOT NULL, created TEXT NOT NULL
) STRICT;
"""


class Database:
    """Candidates, their uses and verifier scores, in ``directory/store.sqlite`` or in memory when it is None.

    ``read_only=True`` (reports) never writes: the database is opened read-only (a legacy JSON Lines store is
    imported into memory).
    """

    def __init__(self, directory: str | os.PathLike[str] | None, *, read_only: bool = False):
        self.directory = None if directory is None else os.fspath(directory)
        self.read_only = read_only
        self._db_read_only = False
        if self.directory is None:
            self._db = self._connect(":memory:")
            self._create()
            return
        self.path = os.path.join(self.directory, STORE_FILE)
        if read_only:
            self._open_read_only()
            return
        try:
            os.makedirs(self.directory, exist_ok=True)
            refuse_network_filesystem(self.directory)
            refuse_symlinks(self.path)
            self._db = self._connect(self.path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._create()
            self._check_schema()
            self._import_legacy()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc
        except StoreError:
            raise
        except OSError as exc:
            raise self._not_writable(exc) from exc

    # ------------------------------------------------------------------------------------------ opening

    @staticmethod
    def _connect(target: str, uri: bool = False) -> sqlite3.Connection:
        db = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=uri, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        return db

    def _create(self) -> None:
        """Create the tables if missing and add the columns an older store lacks (idempotent, each statement its
        own transaction)."""
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        for table, column in self._absent_columns():
            kind = next(k for t, c, k in ADDED_COLUMNS if (t, c) == (table, column))
            try:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError as exc:  # another process added it meanwhile
                if "duplicate column" not in str(exc):
                    raise
        self.absent = frozenset()

    def _absent_columns(self) -> list[tuple[str, str]]:
        """The :data:`ADDED_COLUMNS` this database's tables lack, as (table, column)."""
        have = {table: {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                for table in {t for t, _, _ in ADDED_COLUMNS}}
        return [(table, column) for table, column, _ in ADDED_COLUMNS if column not in have[table]]

    def _check_schema(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
        try:
            version = None if row is None else int(row[0])
        except (TypeError, ValueError):
            raise StoreError(f"{self.path}: its schema version {row[0]!r} is not a number; the file is damaged or not "
                             "a bestofl store (restore it from a copy, or point store= elsewhere).") from None
        if version is None or version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer bestofl (schema {row and row[0]}); upgrade bestofl.")

    def _open_read_only(self) -> None:
        if not os.path.isdir(self.directory):
            raise FileNotFoundError(f"No candidate store at {self.directory} (not a directory).")
        refuse_symlinks(self.path)
        if os.path.exists(self.path):
            self._db_read_only = True
            try:
                try:
                    self._db = self._connect(f"file:{uri_path(self.path)}?mode=ro", uri=True)
                    self._check_schema()
                except sqlite3.OperationalError:  # a WAL database in a read-only directory: read it as immutable
                    self._db = self._connect(f"file:{uri_path(self.path)}?immutable=1", uri=True)
                    self._check_schema()
                #: Columns of a store written before they were added: read as NULL (unknown).
                self.absent = frozenset(column for _, column in self._absent_columns())
            except sqlite3.DatabaseError as exc:
                raise damaged_store_error(self.path, exc) from None
            return
        if not os.path.exists(os.path.join(self.directory, LEGACY_CANDIDATES)):
            raise FileNotFoundError(f"No candidate store in {self.directory} (neither {STORE_FILE} nor "
                                    f"{LEGACY_CANDIDATES}).")
        self._db = self._connect(":memory:")
        self._create()
        self._import_legacy()
        self._db_read_only = True

    def _import_legacy(self) -> None:
        """Import ``candidates.jsonl`` of a bestofl 0.1 store once, in one transaction (the file is only read;
        bad rows are skipped with a warning naming their line)."""
        path = os.path.join(self.directory, LEGACY_CANDIDATES)
        if not os.path.exists(path) or self._meta("legacy_import") is not None:
            return
        refuse_symlinks(path)
        candidates, skipped = [], 0
        with open(path, "rb") as f:
            for number, line in enumerate(f, 1):
                try:
                    candidates.append(legacy_candidate(json.loads(line)))
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    skipped += 1
                    logger.warning("%s line %d: skipping a row that is not a candidate (%s).", path, number, exc)
        with self._transaction():
            if self._meta("legacy_import") is not None:  # another process imported it meanwhile
                return
            self._insert(candidates)
            self._db.execute("INSERT INTO meta VALUES ('legacy_import', ?)",
                             (canonical_json({"file": path, "candidates": len(candidates), "skipped": skipped}),))
        logger.warning(
            "%s: imported %d candidate(s) from the JSON Lines store of bestofl 0.1 (%d row(s) skipped) into %s, "
            "for reports and export; the original files are untouched. Their generator identity is unknown, so "
            "harness runs do not reuse them, and their scores are not imported (0.1 did not record which text "
            "a score belongs to).", path, len(candidates), skipped,
            "memory" if self.read_only else STORE_FILE,
        )

    def _meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
        return None if row is None else row[0]

    def _many(self, prefix: str, keys: Sequence[str]) -> Iterator[tuple]:
        for chunk in chunks(list(keys), 900):
            yield from self._db.execute(f"{prefix} ({','.join('?' * len(chunk))})", chunk)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction (``BEGIN IMMEDIATE``: waits for other writers up to the busy timeout)."""
        if self._db_read_only:
            raise PermissionError(f"The candidate store {self.directory} was opened read-only.")
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc
        try:
            yield
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.DatabaseError):
                raise self._error(exc) from exc
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise self._error(exc) from exc

    def _error(self, exc: sqlite3.DatabaseError) -> Exception:
        message = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and any(
            s in message for s in ("disk is full", "readonly", "unable to open", "disk I/O", "read-only")
        ):
            reason = "No space left on device" if "full" in message else message
            return StoreNotWritableError(f"store directory {self.directory} is not writable: {reason}; "
                                         "pass store=<another dir>")
        return StoreError(f"candidate store {getattr(self, 'path', self.directory)}: {message}")

    def _not_writable(self, exc: OSError) -> StoreNotWritableError:
        return StoreNotWritableError(
            exc.errno,
            f"store directory {self.directory} is not writable: {exc.strerror or exc}; pass store=<another dir>",
        )
