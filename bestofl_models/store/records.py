"""What the store holds, as values: candidates, their uses, translations; the keys, hashes and canonical JSON
that name them; a stored row's columns and how a row (or a bestofl 0.1 JSON Lines record) becomes a record."""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

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


def timestamp() -> str:
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
    created: str = field(default_factory=timestamp)
    generator_id: str = ""
    #: What it cost (None: not recorded, e.g. a store written before bestofl recorded it): the prompt's tokens,
    #: the tokens generated (end-of-sequence and stop-string tokens included) and whether it ran to the token cap.
    prompt_tokens: int | None = None
    gen_tokens: int | None = None
    hit_cap: bool | None = None

    @property
    def text_hash(self) -> str:
        return text_hash(self.text)

    def to_record(self) -> dict[str, Any]:
        """The fields as a dict (shallow: ``settings`` is shared, not copied)."""
        record = {name: getattr(self, name) for name in RECORD_FIELDS}
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


RECORD_FIELDS = tuple(f.name for f in fields(Candidate))
CANDIDATE_COLUMNS = ("key", "lang", "sample_idx", "generator", "generator_id", "prompt_hash", "settings", "text",
                      "text_hash", "answer", "created", "prompt_tokens", "gen_tokens", "hit_cap")
#: Columns added after schema version 1 was shipped: (table, column, SQL type). A store opened for writing gets
#: them (``ALTER TABLE ... ADD COLUMN``, NULL in old rows); older bestofl versions name their columns and ignore them.
ADDED_COLUMNS = (("candidates", "prompt_tokens", "INTEGER"), ("candidates", "gen_tokens", "INTEGER"),
                 ("candidates", "hit_cap", "INTEGER"), ("scores", "input_tokens", "INTEGER"))
USE_COLUMNS = ("key", "task", "doc_id", "target_lang", "problem_id", "gold")


def score_value(score: Any) -> float | None:
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


def doc_id_text(doc_id: int | str) -> str:
    if isinstance(doc_id, bool) or not isinstance(doc_id, (int, str)):
        raise TypeError(f"doc_id must be an int or a string, not {doc_id!r}")
    return json.dumps(doc_id)


def candidate_row(c: Candidate) -> tuple:
    if not isinstance(c.key, str) or not isinstance(c.text, str) or not isinstance(c.settings, dict):
        raise TypeError("key and text must be strings and settings an object")
    if isinstance(c.sample_idx, bool) or not isinstance(c.sample_idx, int):
        raise TypeError(f"sample_idx must be an integer, not {c.sample_idx!r}")
    for name in ("lang", "answer"):
        if getattr(c, name) is not None and not isinstance(getattr(c, name), str):
            raise TypeError(f"{name} must be a string or null, not {getattr(c, name)!r}")
    for name in ("prompt_tokens", "gen_tokens"):
        value = getattr(c, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise TypeError(f"{name} must be a count (an integer >= 0) or null, not {value!r}")
    return (c.key, c.lang, c.sample_idx, str(c.generator), c.generator_id or str(c.generator), str(c.prompt_hash),
            canonical_json(c.settings), c.text, c.text_hash, c.answer, str(c.created), c.prompt_tokens,
            c.gen_tokens, None if c.hit_cap is None else int(bool(c.hit_cap)))


def use_row(u: Use, created: str) -> tuple:
    for name in ("key", "task", "problem_id"):
        if not isinstance(getattr(u, name), str):
            raise TypeError(f"{name} must be a string, not {getattr(u, name)!r}")
    for name in ("gold", "target_lang"):
        if getattr(u, name) is not None and not isinstance(getattr(u, name), str):
            raise TypeError(f"{name} must be a string or null, not {getattr(u, name)!r}")
    return (u.key, u.task, doc_id_text(u.doc_id), u.target_lang or "", u.problem_id, u.gold, created)


@functools.lru_cache(maxsize=4096)
def parse_json(text: str) -> Any:
    """Parsed JSON of a stored scalar (doc ids; cached: they repeat)."""
    return json.loads(text)


def parse_settings(text: str) -> dict[str, Any]:
    """A stored settings object (a fresh dict each time; the parse is cached: a store holds few settings)."""
    return dict(_parse_settings_cached(text))


@functools.lru_cache(maxsize=256)
def _parse_settings_cached(text: str) -> tuple:
    settings = json.loads(text)
    if not isinstance(settings, dict):
        raise TypeError("settings is not an object")
    return tuple(settings.items())


def select_columns(absent: frozenset[str] = frozenset()) -> str:
    """The candidate columns to select, NULL for those in ``absent`` (an old store opened read-only)."""
    return ", ".join(f"NULL AS {name}" if name in absent else f"c.{name}" for name in CANDIDATE_COLUMNS)


def legacy_candidate(record: Any) -> Candidate:
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
    candidate_row(candidate)
    use_row(candidate.use(), "")
    return candidate


def chunks(items: list, size: int) -> Iterator[list]:
    """``items`` in pieces of ``size`` (SQLite takes at most 999 parameters a statement)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
