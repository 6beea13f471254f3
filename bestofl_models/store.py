"""The durable candidate store: every sampled candidate and every verifier score, written once, reused.

Layout of ``DIR`` (JSON Lines only, append-only, one record per line):

* ``candidates.jsonl``: one :class:`Candidate` per line;
* ``scores.jsonl``: one ``{"key", "verifier", "score"}`` per (candidate, verifier); NaN and infinite
  scores are stored as ``null`` (no usable score; :meth:`CandidateStore.score` gives them back as NaN);
* ``.lock``: an advisory ``fcntl`` lock held while appending.

A candidate's ``key`` is the sha256 of (generator, rendered prompt, sampling settings, sample index),
so the same prompt reached from another task, target language or selection method, or a rerun after
a crash, finds it again; the problem, task and target language are not part of the key. Each batch is
written with one ``os.write`` loop and ``os.fsync``. A torn last line (a writer killed mid-write) is
dropped on open and the file truncated back to its last complete line, with a warning; a key (or a
(key, verifier) pair) already present is never written again, also when several processes share
the directory. ``CandidateStore(None)`` keeps everything in memory behind the same API.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

logger = logging.getLogger(__name__)

CANDIDATES_FILE = "candidates.jsonl"
SCORES_FILE = "scores.jsonl"
LOCK_FILE = ".lock"

#: Sampling settings that are part of a candidate's key, with their types (``stop``: list of strings).
SETTINGS_TYPES: dict[str, type] = {"temperature": float, "top_p": float, "max_gen_toks": int, "seed": int}


class _Missing:
    """Type of :data:`MISSING`."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: Returned by :meth:`CandidateStore.score` when a candidate has no score from that verifier.
MISSING = _Missing()


class StoreNotWritableError(OSError):
    """The store directory cannot be created or written (read-only, full disk, not a directory, ...)."""


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


def candidate_key(generator: str, prompt: str, settings: Mapping[str, Any], sample_idx: int) -> str:
    """The store key of one sample: sha256 of the canonical JSON of generator, prompt, settings, index."""
    payload = {
        "generator": generator,
        "prompt": prompt,
        "settings": normalize_settings(settings),
        "sample_idx": int(sample_idx),
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Candidate:
    """One stored sample. ``target_lang`` is that of the request that first produced it."""

    key: str
    problem_id: str
    task: str
    doc_id: int | str
    target_lang: str
    lang: str
    sample_idx: int
    generator: str
    prompt_hash: str
    settings: dict[str, Any]
    text: str
    answer: str | None
    gold: str | None
    created: str = field(default_factory=_now)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Candidate:
        """Build from a stored line; KeyError/TypeError/ValueError if it is not a candidate record."""
        values = {name: record[name] for name in _CANDIDATE_FIELDS}
        if not isinstance(values["key"], str) or not isinstance(values["settings"], dict):
            raise TypeError("key must be a string and settings an object")
        values["sample_idx"] = int(values["sample_idx"])
        return cls(**values)


_CANDIDATE_FIELDS = tuple(f.name for f in fields(Candidate))


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


class _JsonlFile:
    """An append-only JSON Lines file and how far this process has read it."""

    def __init__(self, path: str):
        self.path = path
        self.offset = 0

    def read_new(self, repair: bool) -> list[dict[str, Any]]:
        """Records appended since the last call. An unterminated last line is kept if it is a complete
        record (its newline is added when ``repair``), else dropped (and truncated when ``repair``)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        records = []
        for line in data[:end].splitlines():
            record = _parse(line)
            if record is None:
                logger.warning("%s: skipping an unreadable line (%d bytes) after offset %d.",
                               self.path, len(line), self.offset)
            else:
                records.append(record)
        tail = data[end:]
        self.offset += end
        if not tail:
            return records
        record = _parse(tail)
        if record is not None:
            if repair:
                self.offset += len(tail)
                self.append(b"\n")
            records.append(record)
        elif repair:
            logger.warning("%s: dropping a torn last line (%d bytes, an interrupted write); truncating to the "
                           "last complete line.", self.path, len(tail))
            os.truncate(self.path, self.offset)
        else:
            logger.info("%s: ignoring an incomplete last line (%d bytes; a write in progress?).", self.path, len(tail))
        return records

    def append(self, data: bytes) -> None:
        """Append and fsync (the caller holds the store lock and has read everything before)."""
        _append_bytes(self.path, data)
        self.offset += len(data)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and "key" in record else None


def _append_bytes(path: str, data: bytes) -> None:
    """Append ``data`` and fsync; on failure truncate back so no partial line is left behind."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        start = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


def _lines(records: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(canonical_json(r).encode("utf-8") + b"\n" for r in records)


class CandidateStore:
    """Candidates and verifier scores, on disk under ``directory`` or in memory when it is None.

    ``read_only=True`` (reports) never writes: no probe, no lock, a torn last line is only ignored.
    """

    def __init__(self, directory: str | os.PathLike[str] | None, *, read_only: bool = False):
        self.directory = None if directory is None else os.fspath(directory)
        self.read_only = read_only
        self._candidates: dict[str, Candidate] = {}
        self._scores: dict[tuple[str, str], float | None] = {}
        if self.directory is None:
            return
        self._candidate_file = _JsonlFile(os.path.join(self.directory, CANDIDATES_FILE))
        self._score_file = _JsonlFile(os.path.join(self.directory, SCORES_FILE))
        if read_only:
            if not os.path.isdir(self.directory):
                raise FileNotFoundError(f"No candidate store at {self.directory} (not a directory).")
            self._catch_up(repair=False)
            return
        try:
            self._probe()
        except OSError as exc:
            raise self._not_writable(exc) from exc
        with self._writing():
            self._catch_up(repair=True)

    # ------------------------------------------------------------------------------------------ reading

    def __contains__(self, key: object) -> bool:
        return key in self._candidates

    def __len__(self) -> int:
        return len(self._candidates)

    def get(self, key: str) -> Candidate | None:
        return self._candidates.get(key)

    def candidates(self) -> list[Candidate]:
        """All candidates, in the order they were first written."""
        return list(self._candidates.values())

    def score(self, key: str, verifier: str) -> float | _Missing:
        """The verifier's score; ``math.nan`` if it gave no usable number (stored as null); :data:`MISSING`
        if it has not scored the candidate. NaN ranks below every real score in selection."""
        score = self._scores.get((key, verifier), MISSING)
        return math.nan if score is None else score

    def scores(self, verifier: str | None = None) -> dict[tuple[str, str], float | None]:
        """Scores as stored (None: no usable number), keyed by ``(candidate key, verifier)``; only
        ``verifier``'s when it is given."""
        if verifier is None:
            return dict(self._scores)
        return {pair: s for pair, s in self._scores.items() if pair[1] == verifier}

    def verifiers(self) -> list[str]:
        return sorted({verifier for _, verifier in self._scores})

    def refresh(self) -> None:
        """Pick up what other processes appended since this store was opened."""
        if self.directory is not None:
            self._catch_up(repair=False)

    # ------------------------------------------------------------------------------------------ writing

    def add_candidates(self, candidates: Iterable[Candidate]) -> list[Candidate]:
        """Append the candidates whose key is not stored yet (one fsynced batch); return those written."""
        fresh = self._unseen(candidates, lambda c: c.key, self._candidates)
        if fresh and self.directory is not None:
            with self._writing():
                self._catch_up(repair=True)
                fresh = [c for c in fresh if c.key not in self._candidates]
                self._candidate_file.append(_lines(c.to_record() for c in fresh))
        for c in fresh:
            self._candidates[c.key] = c
        return fresh

    def add_scores(self, verifier: str, scores: Mapping[str, float | None]) -> int:
        """Append ``verifier``'s scores for candidates it has not scored yet; return how many were written.

        ValueError for keys that are not in the store (scores never float free of their candidate)."""
        if not verifier or not isinstance(verifier, str):
            raise ValueError(f"verifier must be a non-empty name, not {verifier!r}.")
        values = {key: _score_value(score) for key, score in scores.items()}
        fresh = self._unseen(values, lambda key: (key, verifier), self._scores)
        if fresh and self.directory is not None:
            with self._writing():
                self._catch_up(repair=True)
                self._check_known(fresh)
                fresh = [key for key in fresh if (key, verifier) not in self._scores]
                records = ({"key": key, "verifier": verifier, "score": values[key]} for key in fresh)
                self._score_file.append(_lines(records))
        else:
            self._check_known(fresh)
        for key in fresh:
            self._scores[(key, verifier)] = values[key]
        return len(fresh)

    # ------------------------------------------------------------------------------------------ internals

    @staticmethod
    def _unseen(items: Iterable[Any], key_of: Any, present: Mapping[Any, Any]) -> list[Any]:
        seen: set[Any] = set()
        fresh = []
        for item in items:
            key = key_of(item)
            if key not in present and key not in seen:
                seen.add(key)
                fresh.append(item)
        return fresh

    def _check_known(self, keys: Iterable[str]) -> None:
        unknown = [key for key in keys if key not in self._candidates]
        if unknown:
            raise ValueError(
                f"{len(unknown)} scored key(s) are not candidates in this store (e.g. {unknown[0]}); "
                "add the candidates first."
            )

    def _catch_up(self, repair: bool) -> None:
        for record in self._candidate_file.read_new(repair):
            try:
                candidate = Candidate.from_record(record)
            except (KeyError, TypeError, ValueError) as exc:
                logger.warning("%s: skipping a record that is not a candidate (%s).", self._candidate_file.path, exc)
                continue
            self._candidates.setdefault(candidate.key, candidate)
        for record in self._score_file.read_new(repair):
            verifier = record.get("verifier")
            if not isinstance(verifier, str) or "score" not in record:
                logger.warning("%s: skipping a record that is not a score.", self._score_file.path)
                continue
            try:
                value = _score_value(record["score"])
            except TypeError:
                logger.warning("%s: skipping a score that is not a number.", self._score_file.path)
                continue
            self._scores.setdefault((record["key"], verifier), value)

    def _probe(self) -> None:
        """Create the directory and prove it takes a durable write, so failures surface on open."""
        os.makedirs(self.directory, exist_ok=True)
        probe = os.path.join(self.directory, f".probe-{os.getpid()}")
        try:
            _append_bytes(probe, b"probe\n")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(probe)

    def _not_writable(self, exc: OSError) -> StoreNotWritableError:
        return StoreNotWritableError(
            exc.errno,
            f"store directory {self.directory} is not writable: {exc.strerror or exc}; pass store=<another dir>",
        )

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the store's lock; any OSError inside becomes a :class:`StoreNotWritableError`."""
        if self.read_only:
            raise PermissionError(f"The candidate store {self.directory} was opened read-only.")
        try:
            fd = os.open(os.path.join(self.directory, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing the descriptor releases the lock
        except StoreNotWritableError:
            raise
        except OSError as exc:
            raise self._not_writable(exc) from exc
