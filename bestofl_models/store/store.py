"""The durable candidate store: every sampled candidate, who used it, and every verifier score, written once.

One SQLite file, ``DIR/store.sqlite`` (Python's ``sqlite3``, WAL journal, one transaction per batch, a busy
timeout for concurrent writers; the same role as lm-eval's own SQLite response cache). Tables:

* ``candidates``: one row per sample, keyed by :func:`candidate_key` (the generator's *identity*, the
  rendered prompt, the sampling settings and the sample index), with its text, the text's sha256 and the
  extracted answer;
* ``uses``: every (task, doc_id, target language) whose request used a candidate, with its problem id and
  gold answer: one candidate serves several problems (the same question in two tasks) and several targets; a
  problem written again with another gold answer (a corrected dataset) takes it in all its uses, with a warning;
* ``scores``: a verifier's score of one candidate *text*: keyed by (candidate key, text sha256, verifier id),
  so a score can only ever be read back with the exact text it was computed on; NULL means the verifier gave
  no usable number (NaN or infinite);
* ``models``: what each generator and verifier id stands for (name, fingerprints, settings);
* ``runs``: the settings of each distinct harness configuration that wrote here (its pool order, n, selection);
* ``translations``: machine translations of questions of tasks without parallel versions, keyed by
  :func:`translation_key` (translator identity, source text hash, source and target language, settings), with
  the numbers the translation lost (a non-empty list: refused by the number check, cached all the same).

Uniqueness is the schema's job (primary keys, ``INSERT OR IGNORE``); a killed writer loses at most its open
transaction. A store directory on a network file system (:func:`network_filesystem`) is refused for writing: WAL
needs every writer on one machine's local disk (a store per machine, merged by ``read_stores=`` or reports). A directory that still holds the JSON Lines store of bestofl 0.1 (``candidates.jsonl``) is
imported once, read-only: the original files are never written. Its candidates keep their old generator
names as identities (``legacy:NAME``), so a harness run never reuses them, and its scores are not imported
(0.1 did not record which text a score was computed on). ``CandidateStore(None)`` keeps everything in memory
behind the same API.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

logger = logging.getLogger(__name__)

STORE_FILE = "store.sqlite"
LEGACY_CANDIDATES = "candidates.jsonl"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 120

#: Sampling settings that are part of a candidate's key, with their types (``stop``: list of strings).
SETTINGS_TYPES: dict[str, type] = {"temperature": float, "top_p": float, "max_gen_toks": int, "seed": int}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS candidates (
    key TEXT PRIMARY KEY, lang TEXT, sample_idx INTEGER NOT NULL, generator TEXT NOT NULL,
    generator_id TEXT NOT NULL, prompt_hash TEXT NOT NULL, settings TEXT NOT NULL, text TEXT NOT NULL,
    text_hash TEXT NOT NULL, answer TEXT, created TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS uses (
    key TEXT NOT NULL REFERENCES candidates(key), task TEXT NOT NULL, doc_id TEXT NOT NULL,
    target_lang TEXT NOT NULL, problem_id TEXT NOT NULL, gold TEXT, created TEXT NOT NULL,
    PRIMARY KEY (key, task, doc_id, target_lang)
) STRICT;
CREATE INDEX IF NOT EXISTS uses_by_problem ON uses (problem_id);
CREATE TABLE IF NOT EXISTS scores (
    key TEXT NOT NULL REFERENCES candidates(key), text_hash TEXT NOT NULL, verifier TEXT NOT NULL, score REAL,
    created TEXT NOT NULL, PRIMARY KEY (key, text_hash, verifier)
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


class _Missing:
    """Type of :data:`MISSING`."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: Returned by :meth:`CandidateStore.score` when a candidate has no score from that verifier.
MISSING = _Missing()


class StoreNotWritableError(OSError):
    """The store cannot be created or written (read-only, full disk, not a directory, ...)."""


class StoreError(ValueError):
    """The store cannot be used as asked (a symlinked store file, an unknown key, a newer schema, ...)."""


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys and no NaN: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def normalize_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings with ``temperature``/``top_p`` as floats, ``max_gen_toks``/``seed`` as ints (or None) and
    ``stop`` as a sorted list of distinct strings, so equal settings give equal keys."""
    normalized = dict(settings)
    for name, kind in SETTINGS_TYPES.items():
        if normalized.get(name) is not None:
            normalized[name] = kind(normalized[name])
    if "stop" in normalized:
        normalized["stop"] = sorted({str(s) for s in normalized["stop"] or ()})
    return normalized


def prompt_hash(prompt: str) -> str:
    """sha256 hex digest of the rendered prompt text."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def text_hash(text: str) -> str:
    """sha256 hex digest of a candidate's text: what a score is bound to."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def candidate_key(generator: str, prompt: str, settings: Mapping[str, Any], sample_idx: int) -> str:
    """The store key of one sample: sha256 of the canonical JSON of generator identity, prompt, settings, index."""
    payload = {
        "generator": generator,
        "prompt": prompt,
        "settings": normalize_settings(settings),
        "sample_idx": int(sample_idx),
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def translation_key(translator: str, source: str, source_lang: str, target_lang: str,
                    settings: Mapping[str, Any]) -> str:
    """The store key of one translation: sha256 of the canonical JSON of translator identity, the source text's
    sha256, both languages and the translation settings (prompt version, decoding)."""
    payload = {"translator": translator, "source": text_hash(source), "source_lang": source_lang,
               "target_lang": target_lang, "settings": dict(settings)}
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


#: The entry of a translation's ``missing`` list that says it ended at its token budget (cut): refused like a lost
#: number, so a store read by an older bestofl refuses it too.
CUT_AT_BUDGET = "<cut at the token budget>"


@dataclass(frozen=True)
class Translation:
    """One cached translation; ``missing``: the source's numbers it lost, and :data:`CUT_AT_BUDGET` when it was
    cut (non-empty: refused for the pool)."""

    key: str
    translator: str
    source_lang: str
    target_lang: str
    settings: dict[str, Any]
    source: str
    text: str
    missing: tuple[str, ...] = ()
    created: str = ""

    @property
    def numbers_ok(self) -> bool:
        return not self.missing

    @property
    def cut(self) -> bool:
        """It ended at its token budget: a part of the question may be missing."""
        return CUT_AT_BUDGET in self.missing


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Candidate:
    """One stored sample, seen from one request that used it (``problem_id`` .. ``gold``: that use).

    ``generator`` is the generator's name (Hub id or path), ``generator_id`` its identity (model fingerprint and
    the settings that change outputs; see :mod:`bestofl_models.store.identity`), the name when not given."""

    key: str
    problem_id: str
    task: str
    doc_id: int | str
    target_lang: str | None
    lang: str | None
    sample_idx: int
    generator: str
    prompt_hash: str
    settings: dict[str, Any]
    text: str
    answer: str | None
    gold: str | None
    created: str = field(default_factory=_now)
    generator_id: str = ""

    @property
    def text_hash(self) -> str:
        return text_hash(self.text)

    def to_record(self) -> dict[str, Any]:
        """The fields as a dict (shallow: ``settings`` is shared, not copied)."""
        record = {name: getattr(self, name) for name in _RECORD_FIELDS}
        record["generator_id"] = self.generator_id or self.generator
        return record

    def use(self) -> Use:
        return Use(self.key, self.task, self.doc_id, self.target_lang, self.problem_id, self.gold)


@dataclass(frozen=True)
class Use:
    """One request that used a candidate: (task, doc_id, target language) and the problem it is."""

    key: str
    task: str
    doc_id: int | str
    target_lang: str | None
    problem_id: str
    gold: str | None


_RECORD_FIELDS = tuple(f.name for f in fields(Candidate))
_CANDIDATE_COLUMNS = ("key", "lang", "sample_idx", "generator", "generator_id", "prompt_hash", "settings", "text",
                      "text_hash", "answer", "created")
_USE_COLUMNS = ("key", "task", "doc_id", "target_lang", "problem_id", "gold")


def _score_value(score: Any) -> float | None:
    """A stored score: a finite float, or None for None, NaN and infinities."""
    if score is None:
        return None
    try:
        if isinstance(score, (bool, str, bytes)):
            raise TypeError
        value = float(score)
    except (TypeError, ValueError):
        raise TypeError(f"A verifier score must be a number or None, not {score!r}.") from None
    return value if math.isfinite(value) else None


def _doc_id_text(doc_id: int | str) -> str:
    if isinstance(doc_id, bool) or not isinstance(doc_id, (int, str)):
        raise TypeError(f"doc_id must be an int or a string, not {doc_id!r}")
    return json.dumps(doc_id)


def _candidate_row(c: Candidate) -> tuple:
    if not isinstance(c.key, str) or not isinstance(c.text, str) or not isinstance(c.settings, dict):
        raise TypeError("key and text must be strings and settings an object")
    if isinstance(c.sample_idx, bool) or not isinstance(c.sample_idx, int):
        raise TypeError(f"sample_idx must be an integer, not {c.sample_idx!r}")
    for name in ("lang", "answer"):
        if getattr(c, name) is not None and not isinstance(getattr(c, name), str):
            raise TypeError(f"{name} must be a string or null, not {getattr(c, name)!r}")
    return (c.key, c.lang, c.sample_idx, str(c.generator), c.generator_id or str(c.generator), str(c.prompt_hash),
            canonical_json(c.settings), c.text, c.text_hash, c.answer, str(c.created))


def _use_row(u: Use, created: str) -> tuple:
    for name in ("key", "task", "problem_id"):
        if not isinstance(getattr(u, name), str):
            raise TypeError(f"{name} must be a string, not {getattr(u, name)!r}")
    for name in ("gold", "target_lang"):
        if getattr(u, name) is not None and not isinstance(getattr(u, name), str):
            raise TypeError(f"{name} must be a string or null, not {getattr(u, name)!r}")
    return (u.key, u.task, _doc_id_text(u.doc_id), u.target_lang or "", u.problem_id, u.gold, created)


class CandidateStore:
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
            _refuse_network_filesystem(self.directory)
            _refuse_symlinks(self.path)
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
        """Create the tables if missing (idempotent, each statement its own transaction)."""
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

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
        _refuse_symlinks(self.path)
        if os.path.exists(self.path):
            self._db_read_only = True
            try:
                try:
                    self._db = self._connect(f"file:{_uri_path(self.path)}?mode=ro", uri=True)
                    self._check_schema()
                except sqlite3.OperationalError:  # a WAL database in a read-only directory: read it as immutable
                    self._db = self._connect(f"file:{_uri_path(self.path)}?immutable=1", uri=True)
                    self._check_schema()
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
        _refuse_symlinks(path)
        candidates, skipped = [], 0
        with open(path, "rb") as f:
            for number, line in enumerate(f, 1):
                try:
                    candidates.append(_legacy_candidate(json.loads(line)))
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

    # ------------------------------------------------------------------------------------------ reading

    def __contains__(self, key: object) -> bool:
        return self._db.execute("SELECT 1 FROM candidates WHERE key=?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]

    def get(self, key: str) -> Candidate | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, Candidate]:
        """The stored candidates among ``keys`` (each with its first use), by key."""
        found: dict[str, Candidate] = {}
        for chunk in _chunks(list(dict.fromkeys(keys)), 900):
            marks = ",".join("?" * len(chunk))
            found.update((c.key, c) for c in self._read(f"WHERE c.key IN ({marks})", chunk))
        return found

    def candidates(self) -> list[Candidate]:
        """All candidates, in the order they were first written, each with its first use."""
        return list(self._read("", ()))

    def rows(self) -> list[Candidate]:
        """One :class:`Candidate` per (candidate, problem that used it), with that problem's first use: what
        reports and export group by, so a question shared by two tasks is in both problems."""
        query = (f"SELECT {_select_columns()}, u.task, u.doc_id, u.target_lang, u.problem_id, u.gold FROM uses u "
                 "JOIN candidates c ON c.key = u.key WHERE u.rowid IN (SELECT MIN(rowid) FROM uses GROUP BY key, "
                 "problem_id) ORDER BY c.rowid, u.rowid")
        return [c for c in map(self._candidate, self._db.execute(query)) if c is not None]

    def uses(self, key: str | None = None) -> list[Use]:
        """Every recorded use (of ``key`` only when given), in the order recorded."""
        where, args = ("WHERE key=?", (key,)) if key is not None else ("", ())
        rows = self._db.execute(f"SELECT {', '.join(_USE_COLUMNS)} FROM uses {where} ORDER BY rowid", args)
        return [Use(k, task, json.loads(doc), target or None, problem, gold) for k, task, doc, target, problem, gold in rows]

    def score(self, key: str, verifier: str) -> float | _Missing:
        """The verifier's score of the candidate's stored text; ``math.nan`` if it gave no usable number;
        :data:`MISSING` if it has not scored that text. NaN ranks below every real score in selection."""
        found = self.scores_for(verifier, [key])
        if key not in found:
            return MISSING
        return math.nan if found[key] is None else found[key]

    def scores_for(self, verifier: str, keys: Iterable[str]) -> dict[str, float | None]:
        """``verifier``'s scores (None: no usable number) of the stored texts of ``keys`` that it has scored."""
        found: dict[str, float | None] = {}
        for chunk in _chunks(list(dict.fromkeys(keys)), 900):
            marks = ",".join("?" * len(chunk))
            query = ("SELECT s.key, s.score FROM scores s JOIN candidates c ON c.key = s.key AND c.text_hash = "
                     f"s.text_hash WHERE s.verifier = ? AND s.key IN ({marks})")
            found.update(self._db.execute(query, (verifier, *chunk)))
        return found

    def scores(self, verifier: str | None = None) -> dict[tuple[str, str], float | None]:
        """Scores of the stored texts (None: no usable number), keyed by ``(candidate key, verifier)``; only
        ``verifier``'s when it is given. A score of a text that is no longer the candidate's is never returned."""
        query = "SELECT s.key, s.verifier, s.score FROM scores s JOIN candidates c ON c.key = s.key AND " \
                "c.text_hash = s.text_hash"
        rows = self._db.execute(query + (" WHERE s.verifier = ?" if verifier else ""), (verifier,) if verifier else ())
        return {(key, name): value for key, name, value in rows}

    def verifiers(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT DISTINCT verifier FROM scores ORDER BY verifier")]

    def models(self) -> dict[str, dict[str, Any]]:
        """What each registered generator/verifier id stands for: ``{id: {"role", "name", "identity"}}``."""
        rows = self._db.execute("SELECT id, role, name, identity FROM models")
        return {id_: {"role": role, "name": name, "identity": json.loads(identity)} for id_, role, name, identity in rows}

    def runs(self) -> list[dict[str, Any]]:
        """The distinct harness configurations that wrote here, oldest first: ``{"generator_id", "config"}``."""
        rows = self._db.execute("SELECT generator_id, config FROM runs ORDER BY rowid")
        return [{"generator_id": generator_id, "config": json.loads(config)} for generator_id, config in rows]

    # ------------------------------------------------------------------------------------------ writing

    def add_candidates(self, candidates: Iterable[Candidate]) -> list[Candidate]:
        """Store the candidates whose key is new, and the use of every one given; return those newly stored."""
        candidates = list(candidates)
        with self._transaction():
            before = {key for key, in self._many("SELECT key FROM candidates WHERE key IN", [c.key for c in candidates])}
            self._insert(candidates)
        fresh = []
        for c in candidates:
            if c.key not in before:
                before.add(c.key)
                fresh.append(c)
        return fresh

    def _insert(self, candidates: Sequence[Candidate]) -> None:
        rows = [_candidate_row(c) for c in candidates]
        now = _now()
        uses = [_use_row(c.use(), now) for c in candidates]
        self._db.executemany(f"INSERT OR IGNORE INTO candidates ({', '.join(_CANDIDATE_COLUMNS)}) "
                             f"VALUES ({','.join('?' * len(_CANDIDATE_COLUMNS))})", rows)
        self._db.executemany("INSERT OR IGNORE INTO uses (key, task, doc_id, target_lang, problem_id, gold, "
                             "created) VALUES (?,?,?,?,?,?,?)", uses)
        self._latest_gold(uses)

    def _latest_gold(self, uses: Sequence[tuple]) -> None:
        """The gold answer of the uses just written is the problem's gold from now on: every stored use of the
        same problem takes it (a rerun with a corrected gold), with one warning per problem whose gold changed. A use
        without a gold (None) changes nothing."""
        golds = {row[4]: row[5] for row in uses if row[5] is not None}  # problem_id -> gold (the batch's last)
        for problem_id, gold in golds.items():
            old = self._db.execute("SELECT DISTINCT gold FROM uses WHERE problem_id = ? AND gold IS NOT ?",
                                   (problem_id, gold)).fetchall()
            if old:
                self._db.execute("UPDATE uses SET gold = ? WHERE problem_id = ? AND gold IS NOT ?",
                                 (gold, problem_id, gold))
                logger.warning("%s: problem %s had gold answer %s; this run's %r replaces it (the latest gold wins).",
                               getattr(self, "path", "store"), problem_id,
                               " / ".join(repr(g) for g, in old), gold)

    def add_uses(self, uses: Iterable[Use]) -> int:
        """Record that these requests used these (stored) candidates; return how many uses were new."""
        now = _now()
        rows = [_use_row(u, now) for u in uses]
        with self._transaction():
            self._check_known([row[0] for row in rows])
            before = self._db.total_changes
            self._db.executemany("INSERT OR IGNORE INTO uses (key, task, doc_id, target_lang, problem_id, gold, "
                                 "created) VALUES (?,?,?,?,?,?,?)", rows)
            new = self._db.total_changes - before
            self._latest_gold(rows)
            return new

    def add_scores(self, verifier: str, scores: Mapping[str, float | None],
                   texts: Mapping[str, str] | None = None) -> int:
        """Store ``verifier``'s scores of candidates' texts it has not scored yet; return how many were new.

        ``texts``: the texts that were scored, by key (default: the stored ones). A score whose text is not the
        candidate's stored text is refused (ValueError), as are keys that are not in the store."""
        if not verifier or not isinstance(verifier, str):
            raise ValueError(f"verifier must be a non-empty name, not {verifier!r}.")
        values = {key: _score_value(score) for key, score in scores.items()}
        with self._transaction():
            stored = dict(self._many("SELECT key, text_hash FROM candidates WHERE key IN", list(values)))
            self._check_known(values, stored)
            rows = []
            for key, value in values.items():
                if texts is not None and text_hash(texts[key]) != stored[key]:
                    raise ValueError(f"The text scored for candidate {key} is not its stored text; its score is not "
                                     "stored (score the stored text).")
                rows.append((key, stored[key], verifier, value, _now()))
            before = self._db.total_changes
            self._db.executemany("INSERT OR IGNORE INTO scores (key, text_hash, verifier, score, created) "
                                 "VALUES (?,?,?,?,?)", rows)
            return self._db.total_changes - before

    def register_model(self, model_id: str, role: str, name: str, identity: Mapping[str, Any]) -> None:
        """Record what a generator or verifier id stands for (first record wins)."""
        with self._transaction():
            self._db.execute("INSERT OR IGNORE INTO models VALUES (?,?,?,?,?)",
                             (model_id, role, name, canonical_json(dict(identity)), _now()))

    def register_run(self, generator_id: str, config: Mapping[str, Any]) -> None:
        """Record a harness configuration (once per distinct one)."""
        with self._transaction():
            self._db.execute("INSERT OR IGNORE INTO runs VALUES (?,?,?)",
                             (generator_id, canonical_json(dict(config)), _now()))

    def translations(self, keys: Iterable[str]) -> dict[str, Translation]:
        """The stored translations among ``keys``, by key (none from a store written before translations)."""
        found: dict[str, Translation] = {}
        try:
            for row in self._many("SELECT key, translator, source_lang, target_lang, settings, source, text, "
                                  "missing_numbers, created FROM translations WHERE key IN", list(dict.fromkeys(keys))):
                key, translator, source_lang, target_lang, settings, source, text, missing, created = row
                found[key] = Translation(key, translator, source_lang, target_lang, json.loads(settings), source,
                                         text, tuple(json.loads(missing)), created)
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise self._error(exc) from exc
        return found

    def add_translations(self, translations: Iterable[Translation]) -> int:
        """Store translations whose key is new (one transaction); return how many were new."""
        rows = [(t.key, t.translator, text_hash(t.source), t.source_lang, t.target_lang, canonical_json(t.settings),
                 t.source, t.text, canonical_json(list(t.missing)), t.created or _now()) for t in translations]
        with self._transaction():
            before = self._db.total_changes
            self._db.executemany("INSERT OR IGNORE INTO translations VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            return self._db.total_changes - before

    def copy_from(self, other: CandidateStore, keys: Iterable[str], verifier: str | None = None) -> int:
        """Copy the candidates among ``keys`` that ``other`` holds and this store lacks (and ``verifier``'s scores
        of their texts); return how many candidates were copied."""
        wanted = [key for key in dict.fromkeys(keys)]
        have = {key for key, in self._many("SELECT key FROM candidates WHERE key IN", wanted)}
        found = other.get_many(key for key in wanted if key not in have)
        if not found:
            return 0
        self.add_candidates(found.values())
        self.add_uses(u for key in found for u in other.uses(key))
        if verifier is not None:
            scores = other.scores_for(verifier, found)
            self.add_scores(verifier, scores, texts={key: found[key].text for key in scores})
        return len(found)

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------------------------------ internals

    def _read(self, where: str, args: Sequence[Any]) -> Iterator[Candidate]:
        query = (f"SELECT {_select_columns()}, u.task, u.doc_id, u.target_lang, u.problem_id, u.gold FROM candidates c "
                 f"LEFT JOIN uses u ON u.rowid = (SELECT MIN(rowid) FROM uses WHERE key = c.key) {where} ORDER BY c.rowid")
        for row in self._db.execute(query, args):
            candidate = self._candidate(row)
            if candidate is not None:
                yield candidate

    def _candidate(self, row: tuple) -> Candidate | None:
        (key, lang, sample_idx, generator, generator_id, p_hash, settings, text, _t_hash, answer, created,
         task, doc_id, target_lang, problem_id, gold) = row
        try:
            settings = _parse_settings(settings)
            return Candidate(key=key, problem_id=problem_id or "", task=task or "",
                             doc_id=_parse_json(doc_id) if doc_id is not None else "",
                             target_lang=target_lang or None, lang=lang, sample_idx=sample_idx, generator=generator,
                             prompt_hash=p_hash, settings=settings, text=text, answer=answer, gold=gold,
                             created=created, generator_id=generator_id)
        except (ValueError, TypeError) as exc:
            logger.warning("%s: skipping candidate %s, a row that cannot be read (%s).",
                           getattr(self, "path", "store"), key, exc)
            return None

    def _many(self, prefix: str, keys: Sequence[str]) -> Iterator[tuple]:
        for chunk in _chunks(list(keys), 900):
            yield from self._db.execute(f"{prefix} ({','.join('?' * len(chunk))})", chunk)

    def _check_known(self, keys: Iterable[str], stored: Mapping[str, Any] | None = None) -> None:
        keys = list(keys)
        if stored is None:
            stored = {key for key, in self._many("SELECT key FROM candidates WHERE key IN", keys)}
        unknown = [key for key in keys if key not in stored]
        if unknown:
            raise ValueError(f"{len(unknown)} key(s) are not candidates in this store (e.g. {unknown[0]}); "
                             "add the candidates first.")

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


@functools.lru_cache(maxsize=4096)
def _parse_json(text: str) -> Any:
    """Parsed JSON of a stored scalar (doc ids; cached: they repeat)."""
    return json.loads(text)


def _parse_settings(text: str) -> dict[str, Any]:
    """A stored settings object (a fresh dict each time; the parse is cached: a store holds few settings)."""
    return dict(_parse_settings_cached(text))


@functools.lru_cache(maxsize=256)
def _parse_settings_cached(text: str) -> tuple:
    settings = json.loads(text)
    if not isinstance(settings, dict):
        raise TypeError("settings is not an object")
    return tuple(settings.items())


def _select_columns() -> str:
    return ", ".join(f"c.{name}" for name in _CANDIDATE_COLUMNS)


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _uri_path(path: str) -> str:
    from urllib.parse import quote

    return quote(os.path.abspath(path))


#: File system types on which SQLite's WAL journal (shared memory, POSIX locks) is not safe: network and
#: cluster file systems, and FUSE mounts of remote storage.
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "sshfs", "fuse.sshfs", "ceph", "fuse.ceph",
    "fuse.ceph-fuse", "glusterfs", "fuse.glusterfs", "lustre", "gpfs", "beegfs", "ocfs2", "gfs2", "fuse.s3fs",
    "fuse.gcsfuse", "fuse.rclone", "fuse.juicefs", "fuse.davfs", "davfs", "fuse.mfs", "pvfs2", "orangefs",
})


def _unescape_mount_path(field_: str) -> str:
    """A path field of ``/proc/self/mountinfo`` (space, tab, newline and backslash are octal escapes)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field_)


def mount_type(mountinfo: str, path: str) -> str | None:
    """The file system type of the mount holding the absolute ``path``, from the text of
    ``/proc/self/mountinfo`` (or of ``/proc/mounts``); the innermost mount point wins, the later line on a tie."""
    best, best_len = None, -1
    for line in mountinfo.splitlines():
        fields_ = line.split()
        if " - " in line:  # mountinfo: ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - TYPE SOURCE ...
            head, _, tail = line.partition(" - ")
            head_fields, tail_fields = head.split(), tail.split()
            if len(head_fields) < 5 or not tail_fields:
                continue
            point, fstype = _unescape_mount_path(head_fields[4]), tail_fields[0]
        elif len(fields_) >= 3:  # /proc/mounts: SOURCE MOUNT_POINT TYPE OPTIONS 0 0
            point, fstype = _unescape_mount_path(fields_[1]), fields_[2]
        else:
            continue
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best_len:
            best, best_len = fstype, len(point)
    return best


def network_filesystem(mountinfo: str, path: str) -> str | None:
    """The network file system type ``path`` is on (``nfs4``, ``cifs``, ``fuse.sshfs``, ...), or None when local."""
    fstype = mount_type(mountinfo, path)
    return fstype if fstype in NETWORK_FILESYSTEMS else None


def _read_mountinfo() -> str:
    """This process's mount table (empty where there is none to read, e.g. outside Linux: nothing is refused)."""
    for source in ("/proc/self/mountinfo", "/proc/mounts"):
        try:
            with open(source, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            continue
    return ""


def _refuse_network_filesystem(directory: str) -> None:
    """StoreError when ``directory`` is on a network file system: SQLite's WAL needs one machine's local disk."""
    mountinfo = _read_mountinfo()
    fstype = network_filesystem(mountinfo, os.path.realpath(directory)) if mountinfo else None
    if fstype is not None:
        raise StoreError(
            f"store directory {directory} is on a network file system ({fstype}); SQLite's WAL journal does not work "
            "there (writers on several machines can damage the store). Give each machine a store on its own local "
            "disk (store=/local/dir) and merge them: read_stores=A:B in --model_args, or bestofl-report --store A "
            "--store B.")


def damaged_store_error(path: str, exc: sqlite3.DatabaseError) -> StoreError:
    """The one-line error for a store file SQLite cannot read (random bytes, truncated, zeroed pages)."""
    return StoreError(f"candidate store {path} is damaged or not a bestofl store ({exc}); restore it from a copy, "
                      f"or salvage what is readable with `sqlite3 {path} .recover`.")


def _refuse_symlinks(path: str) -> None:
    """Store files are never followed through symlinks (writes would land, and repairs act, elsewhere)."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.islink(path + suffix):
            raise StoreError(f"{path + suffix} is a symbolic link; bestofl never follows store files through links. "
                             "Point store= at the real directory (or remove the link).")


def _legacy_candidate(record: Any) -> Candidate:
    """A bestofl 0.1 JSON Lines record as a candidate (identity ``legacy:NAME``); TypeError/KeyError if malformed."""
    if not isinstance(record, dict):
        raise TypeError("not a JSON object")
    values = {name: record[name] for name in ("key", "problem_id", "task", "doc_id", "target_lang", "lang",
                                               "sample_idx", "generator", "prompt_hash", "settings", "text",
                                               "answer", "gold")}
    for name in ("key", "problem_id", "task", "target_lang", "generator", "prompt_hash", "text"):
        if not isinstance(values[name], str):
            raise TypeError(f"{name} must be a string, not {values[name]!r}")
    candidate = Candidate(**values, created=str(record.get("created", "")),
                          generator_id=f"legacy:{values['generator']}")
    _candidate_row(candidate)
    _use_row(candidate.use(), "")
    return candidate
