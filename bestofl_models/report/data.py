"""Read stores into per-problem numpy arrays for the report (never writes, never generates).

One report covers one generator, one set of sampling settings and at most one verifier: when a store
holds several, the caller must pick (``--generator``, ``--settings``, ``--verifier``); they are never
mixed silently.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import logging
import os
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bestofl_tasks.languages import LANGUAGES, MGSM_LANGUAGES

from ..store import Candidate, CandidateStore, canonical_json, damaged_store_error, normalize_settings

logger = logging.getLogger(__name__)


def sampling_settings(settings: dict) -> dict:
    """The normalized settings without ``stop``.

    ``stop`` is left out: without a chat template each language stops at its own question prefix, so
    it differs by language within one run (two prompt formats of one language are still caught, as two
    candidates with the same ``sample_idx``)."""
    normalized = normalize_settings(settings)
    normalized.pop("stop", None)
    return normalized


def settings_id(settings: dict) -> str:
    """Short stable id of a settings dict without ``stop`` (what ``--settings`` takes)."""
    return hashlib.sha256(canonical_json(sampling_settings(settings)).encode("utf-8")).hexdigest()[:10]


def _settings_ids(candidates: Sequence[Candidate]) -> list[str]:
    """``settings_id`` of each candidate, hashing each distinct settings dict once."""
    memo: dict[str, str] = {}
    ids = []
    for c in candidates:
        text = repr(c.settings)
        if text not in memo:
            memo[text] = settings_id(c.settings)
        ids.append(memo[text])
    return ids


def language_order(codes: Iterable[str], preferred: Sequence[str] = ()) -> tuple[str, ...]:
    """Codes in the ``preferred`` order (the runs' own pools), then MGSM's order, then the other known
    languages' order, then alphabetically."""
    known = list(dict.fromkeys([*preferred, *MGSM_LANGUAGES, *LANGUAGES]))
    position = {code: i for i, code in enumerate(known)}
    return tuple(sorted(set(codes), key=lambda code: (position.get(code, len(known)), code)))


@functools.lru_cache(maxsize=None)
def is_correct(answer: str | None, gold: str | None) -> bool | None:
    """``answers_equal`` with None for an unknown gold answer."""
    from bestofl_tasks.answers import answers_equal

    if gold is None:
        return None
    return answer is not None and answers_equal(answer, gold)


def model_label(model_id: str, names: dict[str, str]) -> str:
    """A generator/verifier as people read it: its name, with its identity id when the store registered one."""
    name = names.get(model_id, model_id)
    return name if name == model_id else f"{name} ({model_id})"


@dataclass(frozen=True)
class Loaded:
    """Candidate rows (one per candidate and problem that used it), scores and model names merged from several
    stores (first occurrence wins)."""

    candidates: list[Candidate]
    scores: dict[tuple[str, str], float | None]
    stores: tuple[str, ...]
    #: display name of each registered generator/verifier id (ids without an entry show as themselves)
    names: dict[str, str] = field(default_factory=dict)
    #: pools of the harness runs that wrote the stores, by generator id, in the order they were recorded
    pools: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    #: target languages of the (kept) requests that used each candidate, by key
    targets: dict[str, set[str]] = field(default_factory=dict)
    #: the stored tasks the ``--tasks`` patterns selected (None: no selection, every task)
    tasks: tuple[str, ...] | None = None

    def pool_order(self, generator_id: str) -> tuple[str, ...]:
        """The languages of the generator's recorded pools, in the order the runs gave them."""
        return tuple(dict.fromkeys(lang for pool in self.pools.get(generator_id, ()) for lang in pool))

    def label(self, model_id: str) -> str:
        return model_label(model_id, self.names)


def task_groups() -> dict[str, tuple[str, ...]]:
    """bestofl's task groups (``mgsm_xling`` -> its tasks), read from ``task_yamls/`` (no lm-eval import)."""
    import yaml

    from bestofl_tasks import task_yamls_dir

    groups: dict[str, tuple[str, ...]] = {}
    for folder, _, files in os.walk(task_yamls_dir()):
        for name in files:
            if name.endswith(".yaml"):
                try:
                    with open(os.path.join(folder, name), encoding="utf-8") as f:
                        spec = yaml.safe_load(f)
                except (OSError, yaml.YAMLError):
                    continue
                if isinstance(spec, dict) and isinstance(spec.get("group"), str) and isinstance(spec.get("task"), list):
                    groups[spec["group"]] = tuple(t for t in spec["task"] if isinstance(t, str))
    return groups


def select_tasks(patterns: Sequence[str], stored: Iterable[str]) -> tuple[str, ...]:
    """The stored task names that lm-eval's ``--tasks`` patterns name: fnmatch patterns as lm-eval matches them
    (``mgsm_xling_de``, ``mgsm_xling_*``), bestofl's group names (``mgsm_xling``) for their tasks. A pattern that
    names no stored task is an error listing the stored ones."""
    stored = sorted(set(stored))
    groups = task_groups()
    chosen: set[str] = set()
    for pattern in patterns:
        names = set(fnmatch.filter(stored, pattern))
        for group in fnmatch.filter(groups, pattern):
            names.update(task for task in groups[group] if task in stored)
        if not names:
            raise ValueError(f"--tasks {pattern!r} names no task in the store; it holds {', '.join(stored) or 'none'}.")
        chosen |= names
    return tuple(sorted(chosen))


def _task_patterns(tasks: str | Sequence[str] | None) -> list[str] | None:
    if tasks is None:
        return None
    items = [tasks] if isinstance(tasks, str) else list(tasks)
    return [part.strip() for item in items for part in item.split(",") if part.strip()]


def load_stores(directories: Sequence[str], tasks: str | Sequence[str] | None = None) -> Loaded:
    """Every store's candidates, scores, names and run pools; with ``tasks`` (lm-eval's ``--tasks`` patterns,
    comma-separated or a list), only the candidates requests of the tasks they name used."""
    opened = []
    try:
        for directory in directories:
            store = CandidateStore(directory, read_only=True)
            opened.append(store)
        uses = []
        for store in opened:
            try:
                uses.append(store.uses())
            except sqlite3.DatabaseError as exc:
                raise damaged_store_error(getattr(store, "path", store.directory), exc) from None
        patterns = _task_patterns(tasks)
        selected = None if patterns is None else set(select_tasks(patterns, (u.task for part in uses for u in part)))
        candidates: dict[tuple[str, str], Candidate] = {}
        scores: dict[tuple[str, str], float | None] = {}
        names: dict[str, str] = {}
        pools: dict[str, list[tuple[str, ...]]] = {}
        targets: dict[str, set[str]] = {}
        for store, part in zip(opened, uses):
            kept = None if selected is None else {(u.key, u.problem_id) for u in part if u.task in selected}
            for u in part:
                if u.target_lang and (selected is None or u.task in selected):
                    targets.setdefault(u.key, set()).add(u.target_lang)
            try:
                _read_store(store, candidates, scores, names, pools, kept)
            except sqlite3.DatabaseError as exc:
                raise damaged_store_error(getattr(store, "path", store.directory), exc) from None
    finally:
        for store in opened:
            store.close()
    return Loaded(list(candidates.values()), scores, tuple(directories), names, pools, targets,
                  None if selected is None else tuple(sorted(selected)))


def _read_store(store: CandidateStore, candidates: dict, scores: dict, names: dict, pools: dict,
                kept: set | None = None) -> None:
    """Add one store's rows (those in ``kept`` when given), scores, model names and run pools to the merged views
    (first store wins)."""
    for row in store.rows():
        if kept is None or (row.key, row.problem_id) in kept:
            candidates.setdefault((row.key, row.problem_id), row)
    for pair, score in store.scores().items():
        scores.setdefault(pair, score)
    for model_id, model in store.models().items():
        names.setdefault(model_id, model["name"])
    for run in store.runs():
        pool = run["config"].get("pool")
        if isinstance(pool, list):  # "target" for the target-only presets
            pools.setdefault(run["generator_id"], []).append(tuple(pool))


def choose(kind: str, flag: str, wanted: str | None, counts: Counter, names: dict[str, str] | None = None) -> str | None:
    """The one id of ``kind`` in ``counts`` (or ``wanted``, an id or a unique name); ValueError listing them if
    ambiguous."""
    names = names or {}
    listing = ", ".join(f"{model_label(value, names)}: {count} candidates" for value, count in counts.most_common())
    if wanted is not None:
        if wanted in counts:
            return wanted
        by_name = [value for value in counts if names.get(value) == wanted]
        if len(by_name) == 1:
            return by_name[0]
        if by_name:
            raise ValueError(f"Several {kind}s are named {wanted!r} (the model changed in place); pick one by id "
                             f"with {flag}. Found: {listing}.")
        raise ValueError(f"No {kind} {wanted!r} in the store. Found: {listing or 'none'}.")
    if len(counts) > 1:
        raise ValueError(f"The store holds several {kind}s; pick one with {flag}. Found: {listing}.")
    return next(iter(counts), None)


@dataclass
class ReportData:
    """Candidates of one generator/settings/verifier as padded per-problem arrays.

    Slots of problem ``p`` are grouped by language (in ``languages`` order), each by ``sample_idx``;
    ``offsets[p, l]`` is the first slot of language ``l``. Padding slots have ``lang == -1``.
    """

    generator: str
    settings: dict  # without ``stop`` (it may differ by language)
    verifier: str | None
    stores: tuple[str, ...]
    languages: tuple[str, ...]
    stored_targets: tuple[str, ...]
    problem_ids: list[str]
    lang: np.ndarray  # (P, X) language index, -1 padding
    within: np.ndarray  # (P, X) position within its language (by sample_idx)
    score: np.ndarray  # (P, X) verifier probability, NaN when missing or not a number
    answer: np.ndarray  # (P, X) answer id within the problem, -1 none or padding
    correct: np.ndarray  # (P, X)
    answer_correct: np.ndarray  # (P, A) correctness of each answer id
    stored: np.ndarray  # (P, L) candidates per language
    offsets: np.ndarray  # (P, L)
    notes: list[str] = field(default_factory=list)
    generator_id: str = ""  # the store's identity ids behind ``generator`` and ``verifier``
    verifier_id: str | None = None
    tasks: tuple[str, ...] | None = None  # the tasks ``--tasks`` selected (None: every stored task)
    gen_tokens: np.ndarray | None = None  # (P, X) generated tokens, stored or recounted; NaN unknown or padding
    hit_cap: np.ndarray | None = None  # (P, X) 1.0 ran to the token cap, 0.0 stopped, NaN unknown or padding

    @property
    def has_scores(self) -> bool:
        return self.verifier is not None


def build_data(
    loaded: Loaded, generator: str | None = None, settings: str | None = None, verifier: str | None = None,
    recount: bool = False,
) -> ReportData:
    """Pick generator/settings/verifier, check the candidates are unambiguous, and build the arrays; with
    ``recount``, candidates without stored token counts get them from their text (:func:`.costs.recount_tokens`)."""
    notes: list[str] = []
    if not loaded.candidates:
        selection = f" for the tasks {', '.join(loaded.tasks)}" if loaded.tasks else ""
        raise ValueError(f"No candidates in {', '.join(loaded.stores)}{selection}.")
    # Tasks without parallel questions (e.g. `--tasks gsm8k`) store candidates with lang=None: nothing to
    # compare across languages, so they are left out before any choice (they never make one ambiguous).
    candidates = [c for c in loaded.candidates if c.lang is not None]
    without_language = len(loaded.candidates) - len(candidates)
    if not candidates:
        raise ValueError(
            f"All {without_language} candidate(s) in {', '.join(loaded.stores)} have no language (lang=None: tasks "
            "without parallel questions, e.g. gsm8k); the report compares languages, so it needs candidates "
            "of a task with parallel questions (e.g. mgsm)."
        )
    if without_language:
        notes.append(f"{without_language} candidate(s) have no language (lang=None: tasks without parallel "
                     "questions, e.g. gsm8k) and are left out.")
        logger.warning("%d candidate(s) have no language (lang=None: tasks without parallel questions, e.g. gsm8k) "
                       "and are left out of the report.", without_language)
    generator = choose("generator", "--generator", generator, Counter(c.generator_id for c in candidates), loaded.names)
    mine = [c for c in candidates if c.generator_id == generator]
    id_of = _settings_ids(mine)
    ids = Counter(id_of)
    meaning = {key: canonical_json(sampling_settings(c.settings)) for key, c in zip(id_of, mine)}
    try:
        chosen_settings = choose("sampling-settings id", "--settings", settings, ids)
    except ValueError as exc:
        raise ValueError(f"{exc} They mean: " + "; ".join(f"{k} = {v}" for k, v in sorted(meaning.items()))) from None
    if len(ids) > 1:
        notes.append(f"Sampling settings {chosen_settings} = {meaning[chosen_settings]}; the store also holds "
                     f"{', '.join(sorted(set(ids) - {chosen_settings}))}.")
    mine = [c for key, c in zip(id_of, mine) if key == chosen_settings]
    keys = {c.key for c in mine}
    verifier = choose("verifier", "--verifier", verifier, Counter(v for k, v in loaded.scores if k in keys),
                      loaded.names)
    scores = {k: s for (k, v), s in loaded.scores.items() if v == verifier and k in keys}

    by_problem: dict[str, list[Candidate]] = {}
    for c in mine:
        by_problem.setdefault(c.problem_id, []).append(c)
    problem_ids = []
    for problem_id in sorted(by_problem):
        golds = {c.gold for c in by_problem[problem_id]}
        if len(golds) > 1:
            raise ValueError(f"Problem {problem_id} has candidates with different gold answers: {sorted(map(str, golds))}.")
        if golds == {None}:
            continue
        seen: set[tuple[str, int]] = set()
        for c in by_problem[problem_id]:
            if (c.lang, c.sample_idx) in seen:
                raise ValueError(
                    f"Problem {problem_id} has two {c.lang} candidates with sample_idx {c.sample_idx} from the same "
                    "generator and settings (different prompts); report on the stores of one prompt format at a time."
                )
            seen.add((c.lang, c.sample_idx))
        problem_ids.append(problem_id)
    skipped = len(by_problem) - len(problem_ids)
    if skipped:
        notes.append(f"{skipped} problem(s) without a gold answer are left out.")
        logger.warning("%d problem(s) without a gold answer are left out of the report.", skipped)
    if not problem_ids:
        raise ValueError("No problem with a known gold answer in the store.")

    recounted: dict[str, int] = {}
    if recount:
        from .costs import recount_tokens

        recounted, recount_notes = recount_tokens([c for p in problem_ids for c in by_problem[p]], loaded.names)
        notes += recount_notes
    run_order = loaded.pool_order(generator)
    languages = language_order((c.lang for c in mine), run_order)
    lang_index = {code: i for i, code in enumerate(languages)}
    stored = np.zeros((len(problem_ids), len(languages)), dtype=np.int64)
    for p, problem_id in enumerate(problem_ids):
        for c in by_problem[problem_id]:
            stored[p, lang_index[c.lang]] += 1
    width = int(stored.sum(axis=1).max())
    offsets = np.concatenate([np.zeros((len(problem_ids), 1), dtype=np.int64), np.cumsum(stored, axis=1)[:, :-1]], 1)
    shape = (len(problem_ids), width)
    lang = np.full(shape, -1, dtype=np.int32)
    within = np.zeros(shape, dtype=np.int32)
    score = np.full(shape, np.nan)
    answer = np.full(shape, -1, dtype=np.int32)
    correct = np.zeros(shape, dtype=bool)
    gen_tokens = np.full(shape, np.nan)
    hit_cap = np.full(shape, np.nan)
    answer_lists = []
    unscored = 0
    for p, problem_id in enumerate(problem_ids):
        ids_here: dict[str, int] = {}
        right: list[bool] = []
        ordered = sorted(by_problem[problem_id], key=lambda c: (lang_index[c.lang], c.sample_idx))
        for x, c in enumerate(ordered):
            lang[p, x] = lang_index[c.lang]
            within[p, x] = x - offsets[p, lang[p, x]]
            value = scores.get(c.key)
            if value is not None:
                score[p, x] = value
            unscored += c.key not in scores
            gen_tokens[p, x] = c.gen_tokens if c.gen_tokens is not None else recounted.get(c.key, np.nan)
            hit_cap[p, x] = np.nan if c.hit_cap is None else float(c.hit_cap)
            if c.answer is not None:
                if c.answer not in ids_here:
                    ids_here[c.answer] = len(ids_here)
                    right.append(bool(is_correct(c.answer, c.gold)))
                answer[p, x] = ids_here[c.answer]
                correct[p, x] = right[ids_here[c.answer]]
        answer_lists.append(right)
    answer_correct = np.zeros((len(problem_ids), max(1, max(map(len, answer_lists)))), dtype=bool)
    for p, right in enumerate(answer_lists):
        answer_correct[p, : len(right)] = right
    if verifier is not None and unscored:
        notes.append(f"{unscored} candidate(s) have no {verifier} score; they rank below every scored candidate.")
    return ReportData(
        generator=loaded.label(generator),
        settings=sampling_settings(mine[0].settings),
        verifier=None if verifier is None else loaded.label(verifier),
        stores=loaded.stores,
        languages=languages,
        stored_targets=language_order((t for c in mine for t in loaded.targets.get(c.key) or {c.target_lang}
                                        if t is not None), run_order),
        problem_ids=problem_ids,
        lang=lang,
        within=within,
        score=score,
        answer=answer,
        correct=correct,
        answer_correct=answer_correct,
        stored=stored,
        offsets=offsets,
        notes=notes,
        generator_id=generator,
        verifier_id=verifier,
        tasks=loaded.tasks,
        gen_tokens=gen_tokens,
        hit_cap=hit_cap,
    )
