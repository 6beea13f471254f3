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

import json
import logging
import math
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from .database import Database
from .records import (
    CANDIDATE_COLUMNS,
    USE_COLUMNS,
    MISSING,
    Candidate,
    Translation,
    Use,
    _Missing,
    canonical_json,
    candidate_row,
    chunks,
    timestamp,
    parse_json,
    parse_settings,
    score_value,
    select_columns,
    text_hash,
    use_row,
)

logger = logging.getLogger(__name__)


class CandidateStore(Database):
    """Candidates, their uses and verifier scores, in ``directory/store.sqlite`` or in memory when it is None.

    ``read_only=True`` (reports) never writes: the database is opened read-only (a legacy JSON Lines store is
    imported into memory).
    """

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
        for chunk in chunks(list(dict.fromkeys(keys)), 900):
            marks = ",".join("?" * len(chunk))
            found.update((c.key, c) for c in self._read(f"WHERE c.key IN ({marks})", chunk))
        return found

    def candidates(self) -> list[Candidate]:
        """All candidates, in the order they were first written, each with its first use."""
        return list(self._read("", ()))

    def rows(self) -> list[Candidate]:
        """One :class:`Candidate` per (candidate, problem that used it), with that problem's first use: what
        reports and export group by, so a question shared by two tasks is in both problems."""
        query = (f"SELECT {select_columns(self.absent)}, u.task, u.doc_id, u.target_lang, u.problem_id, u.gold "
                 "FROM uses u JOIN candidates c ON c.key = u.key WHERE u.rowid IN (SELECT MIN(rowid) FROM uses GROUP BY key, "
                 "problem_id) ORDER BY c.rowid, u.rowid")
        return [c for c in map(self._candidate, self._db.execute(query)) if c is not None]

    def uses(self, key: str | None = None) -> list[Use]:
        """Every recorded use (of ``key`` only when given), in the order recorded."""
        where, args = ("WHERE key=?", (key,)) if key is not None else ("", ())
        rows = self._db.execute(f"SELECT {', '.join(USE_COLUMNS)} FROM uses {where} ORDER BY rowid", args)
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
        return self._score_column("score", verifier, keys)

    def score_tokens(self, verifier: str, keys: Iterable[str]) -> dict[str, int | None]:
        """The verifier's input tokens for the scored stored texts of ``keys`` (None: not recorded)."""
        return self._score_column("input_tokens", verifier, keys)

    def _score_column(self, column: str, verifier: str, keys: Iterable[str]) -> dict[str, Any]:
        """A column of ``verifier``'s score rows of the stored texts of ``keys``, by key (NULL where this store
        predates the column)."""
        selected = "NULL" if column in self.absent else f"s.{column}"
        found: dict[str, Any] = {}
        for chunk in chunks(list(dict.fromkeys(keys)), 900):
            marks = ",".join("?" * len(chunk))
            query = (f"SELECT s.key, {selected} FROM scores s JOIN candidates c ON c.key = s.key AND c.text_hash = "
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
        rows = [candidate_row(c) for c in candidates]
        now = timestamp()
        uses = [use_row(c.use(), now) for c in candidates]
        self._db.executemany(f"INSERT OR IGNORE INTO candidates ({', '.join(CANDIDATE_COLUMNS)}) "
                             f"VALUES ({','.join('?' * len(CANDIDATE_COLUMNS))})", rows)
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
        now = timestamp()
        rows = [use_row(u, now) for u in uses]
        with self._transaction():
            self._check_known([row[0] for row in rows])
            before = self._db.total_changes
            self._db.executemany("INSERT OR IGNORE INTO uses (key, task, doc_id, target_lang, problem_id, gold, "
                                 "created) VALUES (?,?,?,?,?,?,?)", rows)
            new = self._db.total_changes - before
            self._latest_gold(rows)
            return new

    def add_scores(self, verifier: str, scores: Mapping[str, float | None],
                   texts: Mapping[str, str] | None = None, input_tokens: Mapping[str, int] | None = None) -> int:
        """Store ``verifier``'s scores of candidates' texts it has not scored yet; return how many were new.

        ``texts``: the texts that were scored, by key (default: the stored ones). A score whose text is not the
        candidate's stored text is refused (ValueError), as are keys that are not in the store. ``input_tokens``:
        the verifier's input tokens per key, where known."""
        if not verifier or not isinstance(verifier, str):
            raise ValueError(f"verifier must be a non-empty name, not {verifier!r}.")
        values = {key: score_value(score) for key, score in scores.items()}
        with self._transaction():
            stored = dict(self._many("SELECT key, text_hash FROM candidates WHERE key IN", list(values)))
            self._check_known(values, stored)
            rows = []
            for key, value in values.items():
                if texts is not None and text_hash(texts[key]) != stored[key]:
                    raise ValueError(f"The text scored for candidate {key} is not its stored text; its score is not "
                                     "stored (score the stored text).")
                rows.append((key, stored[key], verifier, value, timestamp(), (input_tokens or {}).get(key)))
            before = self._db.total_changes
            self._db.executemany("INSERT OR IGNORE INTO scores (key, text_hash, verifier, score, created, "
                                 "input_tokens) VALUES (?,?,?,?,?,?)", rows)
            return self._db.total_changes - before

    def record_parameters(self, model_id: str, count: int) -> None:
        """Keep a model's parameter count (counted when it was loaded) for runs that do not load it."""
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"parameters:{model_id}", str(int(count))))

    def parameters(self, model_id: str | None) -> int | None:
        """The parameter count :meth:`record_parameters` kept for ``model_id`` (None: never recorded)."""
        value = self._meta(f"parameters:{model_id}") if model_id else None
        return int(value) if value is not None and value.isdigit() else None

    def register_model(self, model_id: str, role: str, name: str, identity: Mapping[str, Any]) -> None:
        """Record what a generator or verifier id stands for (first record wins)."""
        with self._transaction():
            self._db.execute("INSERT OR IGNORE INTO models VALUES (?,?,?,?,?)",
                             (model_id, role, name, canonical_json(dict(identity)), timestamp()))

    def register_run(self, generator_id: str, config: Mapping[str, Any]) -> None:
        """Record a harness configuration (once per distinct one)."""
        with self._transaction():
            self._db.execute("INSERT OR IGNORE INTO runs VALUES (?,?,?)",
                             (generator_id, canonical_json(dict(config)), timestamp()))

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
                 t.source, t.text, canonical_json(list(t.missing)), t.created or timestamp()) for t in translations]
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
            tokens = {key: n for key, n in other.score_tokens(verifier, scores).items() if n is not None}
            self.add_scores(verifier, scores, texts={key: found[key].text for key in scores}, input_tokens=tokens)
        return len(found)

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------------------------------ internals

    def _read(self, where: str, args: Sequence[Any]) -> Iterator[Candidate]:
        query = (f"SELECT {select_columns(self.absent)}, u.task, u.doc_id, u.target_lang, u.problem_id, u.gold "
                 f"FROM candidates c LEFT JOIN uses u ON u.rowid = (SELECT MIN(rowid) FROM uses WHERE key = c.key) {where} ORDER BY c.rowid")
        for row in self._db.execute(query, args):
            candidate = self._candidate(row)
            if candidate is not None:
                yield candidate

    def _candidate(self, row: tuple) -> Candidate | None:
        (key, lang, sample_idx, generator, generator_id, p_hash, settings, text, _t_hash, answer, created,
         prompt_tokens, gen_tokens, hit_cap, task, doc_id, target_lang, problem_id, gold) = row
        try:
            settings = parse_settings(settings)
            return Candidate(key=key, problem_id=problem_id or "", task=task or "",
                             doc_id=parse_json(doc_id) if doc_id is not None else "",
                             target_lang=target_lang or None, lang=lang, sample_idx=sample_idx, generator=generator,
                             prompt_hash=p_hash, settings=settings, text=text, answer=answer, gold=gold,
                             created=created, generator_id=generator_id, prompt_tokens=prompt_tokens,
                             gen_tokens=gen_tokens, hit_cap=None if hit_cap is None else bool(hit_cap))
        except (ValueError, TypeError) as exc:
            logger.warning("%s: skipping candidate %s, a row that cannot be read (%s).",
                           getattr(self, "path", "store"), key, exc)
            return None

    def _check_known(self, keys: Iterable[str], stored: Mapping[str, Any] | None = None) -> None:
        keys = list(keys)
        if stored is None:
            stored = {key for key, in self._many("SELECT key FROM candidates WHERE key IN", keys)}
        unknown = [key for key in keys if key not in stored]
        if unknown:
            raise ValueError(f"{len(unknown)} key(s) are not candidates in this store (e.g. {unknown[0]}); "
                             "add the candidates first.")
