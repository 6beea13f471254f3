"""``bestofl-report export``: the raw JSON Lines view of stores, one candidate per line.

Fields (CONTRACT.md): ``problem_id``, ``task``, ``doc_id``, ``target_lang``, ``lang``, ``sample_idx``,
``generator``, ``text``, ``answer``, ``score``, ``verifier``, ``gold``, ``correct``, plus ``key``,
``prompt_hash``, ``settings``, ``created``, ``generator_id`` and ``verifier_id`` (the identities behind the
names, see :mod:`bestofl_models.store.identity`), and the candidate's cost: ``prompt_tokens``, ``gen_tokens``,
``hit_cap`` (null where the store did not record them). ``task``/``doc_id``/``target_lang`` are those of the problem's
first use. ``score``/``verifier`` are null for a candidate the verifier has not scored; ``score`` alone is null
when it scored but produced no number (NaN).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence

from ..store import LEGACY_CANDIDATES, STORE_FILE
from .data import choose, is_correct, load_stores

#: The files of a store directory an export must never replace (SQLite's own side files included).
STORE_FILES = (STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm", f"{STORE_FILE}-journal", LEGACY_CANDIDATES)

EXPORT_FIELDS = (
    "problem_id", "task", "doc_id", "target_lang", "lang", "sample_idx", "generator", "text", "answer",
    "score", "verifier", "gold", "correct", "key", "prompt_hash", "settings", "created", "generator_id",
    "verifier_id", "prompt_tokens", "gen_tokens", "hit_cap",
)


def check_export_target(out: str, stores: Sequence[str]) -> None:
    """ValueError naming what to change when ``out`` cannot take the export: a folder, a missing parent folder,
    or one of the stores' own files (by name in a store directory, or the same file under another name)."""
    if os.path.isdir(out):
        raise ValueError(f"--out {out} is a folder; give a file name (e.g. --out {os.path.join(out, 'export.jsonl')})")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise ValueError(f"--out {out}: the folder {parent} does not exist; create it or give another path")
    target = os.path.realpath(out)
    for store in stores:
        if not os.path.isdir(store):
            continue
        for name in STORE_FILES:
            path = os.path.join(store, name)
            same = (os.path.dirname(target) == os.path.realpath(store) and os.path.basename(target) == name) or (
                os.path.exists(out) and os.path.exists(path) and os.path.samefile(out, path))
            if same:
                raise ValueError(f"--out {out} is the store's own file {path}; the export would replace the store. "
                                 "Write the export outside the store (e.g. --out export.jsonl)")


def export_records(stores: Sequence[str], verifier: str | None = None) -> Iterator[dict]:
    """One dict per stored candidate and problem that used it (a question shared by two tasks is exported under
    both problems), joined with ``verifier``'s score of its text (default: the only verifier)."""
    loaded = load_stores(stores)
    verifier = choose("verifier", "--verifier", verifier, Counter(v for _, v in loaded.scores), loaded.names)
    name = loaded.names.get(verifier, verifier)
    for c in loaded.candidates:
        scored = (c.key, verifier) in loaded.scores
        yield {
            "problem_id": c.problem_id, "task": c.task, "doc_id": c.doc_id, "target_lang": c.target_lang,
            "lang": c.lang, "sample_idx": c.sample_idx, "generator": c.generator, "text": c.text,
            "answer": c.answer, "score": loaded.scores.get((c.key, verifier)), "verifier": name if scored else None,
            "gold": c.gold, "correct": is_correct(c.answer, c.gold), "key": c.key, "prompt_hash": c.prompt_hash,
            "settings": c.settings, "created": c.created, "generator_id": c.generator_id,
            "verifier_id": verifier if scored else None, "prompt_tokens": c.prompt_tokens,
            "gen_tokens": c.gen_tokens, "hit_cap": c.hit_cap,
        }
