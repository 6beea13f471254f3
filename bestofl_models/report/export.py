"""``bestofl-report export``: the raw JSON Lines view of stores, one candidate per line.

Fields (CONTRACT.md): ``problem_id``, ``task``, ``doc_id``, ``target_lang``, ``lang``, ``sample_idx``,
``generator``, ``text``, ``answer``, ``score``, ``verifier``, ``gold``, ``correct``, plus ``key``,
``prompt_hash``, ``settings``, ``created``, ``generator_id`` and ``verifier_id`` (the identities behind the
names, see :mod:`bestofl_models.identity`). ``task``/``doc_id``/``target_lang`` are those of the problem's
first use. ``score``/``verifier`` are null for a candidate the verifier has not scored; ``score`` alone is null
when it scored but produced no number (NaN).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

from .data import choose, is_correct, load_stores

EXPORT_FIELDS = (
    "problem_id", "task", "doc_id", "target_lang", "lang", "sample_idx", "generator", "text", "answer",
    "score", "verifier", "gold", "correct", "key", "prompt_hash", "settings", "created", "generator_id",
    "verifier_id",
)


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
            "verifier_id": verifier if scored else None,
        }
