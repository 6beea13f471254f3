"""Stage 1: the training problems' questions in every configured language.

Existing parallel translations (the source's ``parallel`` versions) are used where they exist; the rest
are machine-translated from English by a seq2seq MT model (NLLB by default), with a persistent cache
(``mt_cache.jsonl``, one line per translated question) so a rerun or a killed run translates nothing twice.

Number check: every number written with digits in the English question must appear in the translation
(compared as digit strings, so "1,250" = "1.250" = "1 250" and native digits count; extra numbers in the
translation, e.g. "three" -> "3", are fine). Failing rows go to ``number_mismatches.jsonl`` (absent when none fail); with
``translate.number_check=drop`` (default) the translation is not used (that problem is skipped in that
language), with ``report`` it is kept and flagged.

Output: ``questions.jsonl``: one row per (problem, language): ``problem_id``, ``lang``, ``question``,
``answer`` (canonical gold), ``origin`` (``source`` | ``existing`` | ``mt``), ``numbers_ok``.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from tqdm.auto import tqdm

from bestofl_models.generation.translation import Seq2SeqTranslator, missing_numbers

from .common import AppendLog, Stage, StageError, batched, logger, resolve_device, write_jsonl
from .config import NLLB_CODES, TrainConfig

SETTINGS = ("source", "limit", "languages", "translate")


def stage(out_dir, config: TrainConfig) -> Stage:
    return Stage("translate", out_dir, config, settings=SETTINGS)


def source_problems(config: TrainConfig) -> list[dict]:
    """The English docs of the configured source, first ``limit`` problems."""
    from bestofl_tasks.data import load_docs

    try:
        docs = load_docs(config.source, "en")
    except FileNotFoundError as exc:
        raise StageError(f"cannot load the {config.source} problems: {exc}") from exc
    return docs[: config.limit] if config.limit else docs


def load_translator(config: TrainConfig) -> Seq2SeqTranslator:
    """The configured MT model, checked to have a language token for every configured language."""
    settings = config.translate
    logger.info("translate: loading MT model %s", settings.model)
    translator = Seq2SeqTranslator(settings.model, {**NLLB_CODES, **settings.lang_codes},
                                   resolve_device(settings.device), settings.num_beams, settings.max_new_tokens)
    return translator


def existing_question(doc: dict, lang: str, config: TrainConfig) -> tuple[str, str] | None:
    """(question, origin) when no machine translation is needed: English, or an existing translation."""
    if lang == "en":
        return doc["question"], "source"
    if config.translate.use_existing and doc["parallel"].get(lang):
        return doc["parallel"][lang], "existing"
    return None


def cache_key(config: TrainConfig, text: str, source_lang: str, target_lang: str) -> str:
    settings = config.translate
    codes = {**NLLB_CODES, **settings.lang_codes}
    spec = [settings.model, codes[source_lang], codes[target_lang], settings.num_beams, settings.max_new_tokens, text]
    return hashlib.sha256("\x1f".join(map(str, spec)).encode()).hexdigest()


def run(out_dir, config: TrainConfig) -> dict:
    current = stage(out_dir, config)
    current.begin()
    problems = source_problems(config)
    logger.info("translate: %d problems x %d languages", len(problems), len(config.languages))

    # Which (problem, language) pairs need machine translation.
    wanted: dict[str, tuple[str, str]] = {}  # cache key -> (english text, target lang)
    for doc in problems:
        for lang in config.languages:
            if existing_question(doc, lang, config) is None:
                wanted[cache_key(config, doc["question"], "en", lang)] = (doc["question"], lang)

    cache = AppendLog(current.path("mt_cache.jsonl"))
    translated = {record["key"]: record["translation"] for record in cache.records}
    todo = [(key, text, lang) for key, (text, lang) in wanted.items() if key not in translated]
    reused = len(wanted) - len(todo)
    if todo:
        translator = load_translator(config)
        for lang in {item[2] for item in todo}:
            try:
                translator.target_token(lang)  # fail now on a missing language code, not mid-run
            except ValueError as exc:
                raise StageError(str(exc)) from None
        todo.sort(key=lambda item: (item[2], len(item[1])))  # one target language per batch, similar lengths
        with tqdm(total=len(todo), desc="translate", unit="question") as bar:
            for lang in sorted({item[2] for item in todo}):
                items = [item for item in todo if item[2] == lang]
                for chunk in batched(items, config.translate.batch_size):
                    outputs = translator.translate([text for _, text, _ in chunk], "en", lang)
                    records = [
                        {"key": key, "model": config.translate.model, "source_lang": "en", "target_lang": lang,
                         "source": text, "translation": output}
                        for (key, text, _), output in zip(chunk, outputs)
                    ]
                    cache.append(records)
                    translated.update({r["key"]: r["translation"] for r in records})
                    bar.update(len(chunk))
    logger.info("translate: %d machine translations reused from the cache, %d new", reused, len(todo))

    rows, mismatches = [], []
    stats = {lang: Counter() for lang in config.languages}
    drop = config.translate.number_check == "drop"
    for doc in problems:
        for lang in config.languages:
            question, origin = existing_question(doc, lang, config) or (
                translated[cache_key(config, doc["question"], "en", lang)], "mt")
            lost = missing_numbers(doc["question"], question, "en", lang) if lang != "en" else []
            stats[lang][origin] += 1
            if lost:
                stats[lang]["number_mismatch"] += 1
                mismatches.append({"problem_id": doc["problem_id"], "lang": lang, "origin": origin,
                                   "source": doc["question"], "translation": question, "missing": lost,
                                   "action": "dropped" if drop else "kept"})
                if drop:
                    stats[lang]["dropped"] += 1
                    continue
            stats[lang]["rows"] += 1
            rows.append({"problem_id": doc["problem_id"], "lang": lang, "question": question,
                         "answer": doc["answer"], "origin": origin, "numbers_ok": not lost})

    write_jsonl(current.path("questions.jsonl"), rows)
    report = current.path("number_mismatches.jsonl")
    if mismatches:
        write_jsonl(report, mismatches)
    else:
        report.unlink(missing_ok=True)
    for lang, counts in stats.items():
        if counts["number_mismatch"]:
            logger.warning("translate: %s: %d of %d translations lost a number (%s; see number_mismatches.jsonl)",
                           lang, counts["number_mismatch"], len(problems), "dropped" if drop else "kept")
    counts = {"problems": len(problems), "rows": len(rows), "number_mismatches": len(mismatches),
              "machine_translated_new": len(todo), "machine_translated_cached": reused,
              "per_language": {lang: dict(counts) for lang, counts in stats.items()}}
    return current.finish(counts)
