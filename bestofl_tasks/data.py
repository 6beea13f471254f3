"""Datasets as parallel docs: MGSM, GSM8K test (+ translations), GSM8K train (+ translations) and the generated
arithmetic problems (``bestofl_tasks.arith``, test and train).

Every doc is a plain dict (see docs/ARCHITECTURE.md): ``problem_id``, ``lang``, ``question``,
``answer`` (canonical gold), ``parallel`` ({lang: question or None}) and ``source``. The MGSM few-shot
exemplars (``load_exemplars``) also carry ``solution``, their worked answer.

By default the data comes from the Hugging Face Hub. ``BESTOFL_DATA_DIR=DIR`` switches every
source to local files laid out like ``../shared/data`` and never touches the network. The arithmetic
problems are generated in both cases.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path
from typing import Callable

from . import arith
from .answers import canonical_number
from .languages import ARITH_LANGUAGES, GSM8K_TEST_LANGUAGES, GSM8K_TRAIN_LANGUAGES, MGSM_LANGUAGES, get_language

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "BESTOFL_DATA_DIR"

#: Hub ids used when BESTOFL_DATA_DIR is not set.
HUB_MGSM = "juletxara/mgsm"
HUB_GSM8K = "openai/gsm8k"
HUB_GSM8KX = "hf://datasets/openGPT-X/gsm8kx/gsm8k_{LANG}_test.jsonl"

#: Local layout under BESTOFL_DATA_DIR.
LOCAL_MGSM = "mgsm/mgsm_{lang}.tsv"
LOCAL_MGSM_EXEMPLARS = "mgsm/mgsm_exemplars.jsonl"
LOCAL_GSM8K = "gsm8k/{split}.jsonl"
LOCAL_GSM8KX = "gsm8kx/gsm8k_{LANG}_test.jsonl"
LOCAL_TRAIN_TRANSLATIONS = "gsm8k_translated/mgsm8kinstruct_qalign/parallel_questions.jsonl"

SOURCES: dict[str, tuple[str, ...]] = {
    "mgsm": MGSM_LANGUAGES,
    "gsm8k_test": GSM8K_TEST_LANGUAGES,
    "gsm8k_train": GSM8K_TRAIN_LANGUAGES,
    "arith_test": ARITH_LANGUAGES,
    "arith_train": ARITH_LANGUAGES,
}
#: Sources meant for training a verifier (the others are test sets).
TRAIN_SOURCES = ("gsm8k_train", "arith_train")
_ID_PREFIX = {"mgsm": "mgsm", "gsm8k_test": "gsm8k-test", "gsm8k_train": "gsm8k-train",
              "arith_test": "arith-test", "arith_train": "arith-train"}


class DataAlignmentError(ValueError):
    """Parallel versions of a problem disagree (different gold answers or row counts)."""


def data_dir() -> Path | None:
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None


def _local_file(relative: str) -> Path:
    path = data_dir() / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{DATA_DIR_ENV}={data_dir()} is set but {path} does not exist. "
            f"Expected the layout of ../shared/data (see README, 'Offline data'), or unset {DATA_DIR_ENV} "
            "to load from the Hugging Face Hub."
        )
    return path


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="\n") as handle:
        return [json.loads(line) for line in handle.read().split("\n") if line.strip()]


def _gold(value, lang: str | None = None) -> str:
    gold = canonical_number(str(value), lang)
    if gold is None:
        raise DataAlignmentError(f"gold answer {value!r} is not a number")
    return gold


def _gsm8k_gold(solution: str, lang: str | None = None) -> str:
    """Gold after ``####``, read with ``lang``'s number conventions (``1.250`` is 1250 in German)."""
    return _gold(solution.rsplit("####", 1)[-1].strip(), lang)


# --------------------------------------------------------------------------- raw columns
# Each loader returns (questions, golds) in row order; None marks a missing translation.


def _mgsm_rows(lang: str) -> tuple[list[str], list[str]]:
    if data_dir() is not None:
        with open(_local_file(LOCAL_MGSM.format(lang=lang)), encoding="utf-8", newline="\n") as handle:
            rows = [line.split("\t") for line in handle.read().split("\n") if line.strip()]
        return [q for q, _ in rows], [_gold(a.replace(",", "")) for _, a in rows]
    import datasets

    table = datasets.load_dataset(HUB_MGSM, lang, split="test")
    return list(table["question"]), [_gold(a) for a in table["answer_number"]]


def _gsm8k_rows(split: str) -> tuple[list[str], list[str]]:
    if data_dir() is not None:
        rows = _read_jsonl(_local_file(LOCAL_GSM8K.format(split=split)))
    else:
        import datasets

        rows = datasets.load_dataset(HUB_GSM8K, "main", split=split).to_list()
    return [r["question"] for r in rows], [_gsm8k_gold(r["answer"]) for r in rows]


def _gsm8kx_rows(lang: str) -> tuple[list[str], list[str]]:
    name = lang.upper()
    if data_dir() is not None:
        rows = _read_jsonl(_local_file(LOCAL_GSM8KX.format(LANG=name)))
    else:
        import datasets

        rows = datasets.load_dataset("json", data_files=HUB_GSM8KX.format(LANG=name), split="train").to_list()
    return [r["question"] for r in rows], [_gsm8k_gold(r["answer"], lang) for r in rows]


@functools.lru_cache(maxsize=1)
def _train_translations(path: Path) -> list[dict]:
    return _read_jsonl(path)


def _train_translation_rows(lang: str, english_golds: list[str]) -> tuple[list[str | None], list[str]]:
    if data_dir() is None:
        raise FileNotFoundError(
            "The translated GSM8K train questions (MGSM8KInstruct) have no Hub copy whose row alignment "
            f"bestofl can verify. Set {DATA_DIR_ENV} to a directory containing {LOCAL_TRAIN_TRANSLATIONS} "
            "(see README, 'Offline data'), or machine-translate with `bestofl-train translate`."
        )
    rows = _train_translations(_local_file(LOCAL_TRAIN_TRANSLATIONS))
    indices = [r["gsm8k_train_index"] for r in rows]
    if indices != list(range(len(english_golds))):
        raise DataAlignmentError(
            f"{LOCAL_TRAIN_TRANSLATIONS} must have one row per GSM8K train row, in order "
            f"(got {len(rows)} rows for {len(english_golds)} GSM8K train problems)"
        )
    return [r.get(lang) for r in rows], [_gold(r["answer_number"]) for r in rows]


# --------------------------------------------------------------------------- parallel docs


def _available(source: str, lang: str) -> bool:
    """Whether ``lang`` of ``source`` can be loaded (local mode: its file exists).

    The translated GSM8K train questions exist only locally, so on the Hub the train docs are English only.
    """
    if lang == "en" or source in ("mgsm", "arith_test", "arith_train"):
        return True
    if data_dir() is None:
        return source != "gsm8k_train"
    if source == "gsm8k_test":
        return (data_dir() / LOCAL_GSM8KX.format(LANG=lang.upper())).is_file()
    return (data_dir() / LOCAL_TRAIN_TRANSLATIONS).is_file()


def _columns(source: str, lang: str, english_golds: list[str] | None) -> tuple[list, list[str]]:
    if source == "mgsm":
        return _mgsm_rows(lang)
    if source.startswith("arith_"):
        return arith.columns(source.removeprefix("arith_"), lang)
    split = "test" if source == "gsm8k_test" else "train"
    if lang == "en":
        return _gsm8k_rows(split)
    if source == "gsm8k_test":
        return _gsm8kx_rows(lang)
    return _train_translation_rows(lang, english_golds)


def _languages(source: str, required: str) -> tuple[str, ...]:
    """The source's languages that load here; ``required`` is always included (and must load)."""
    return tuple(lang for lang in SOURCES[source] if lang in (required, "en") or _available(source, lang))


@functools.lru_cache(maxsize=None)
def _parallel_table(
    source: str, languages: tuple[str, ...], root: str | None
) -> tuple[tuple[str, ...], tuple[tuple, ...], tuple[str, ...]]:
    """(languages, question columns, golds) for ``source``, checked for alignment.

    Loaded once per (source, languages, data directory): the 11 ``mgsm_xling`` tasks share one table.
    """
    missing = [lang for lang in SOURCES[source] if lang not in languages]
    if missing:
        logger.warning("%s: %s not available here; parallel versions omit them.", source, ", ".join(missing))
    english_golds = None
    columns, golds = {}, None
    for lang in (["en"] if "en" in languages else []) + [lang for lang in languages if lang != "en"]:
        questions, lang_golds = _columns(source, lang, english_golds)
        if golds is None:
            golds, english_golds = lang_golds, lang_golds
        elif len(lang_golds) != len(golds):
            raise DataAlignmentError(
                f"{source}: {lang} has {len(lang_golds)} rows but en has {len(golds)}; parallel rows must align"
            )
        else:
            bad = [i for i, (a, b) in enumerate(zip(golds, lang_golds)) if a != b]
            if bad:
                raise DataAlignmentError(
                    f"{source}: {lang} row {bad[0]} has gold answer {lang_golds[bad[0]]} but en has "
                    f"{golds[bad[0]]} ({len(bad)} mismatching rows); the translations are not aligned"
                )
        columns[lang] = tuple(questions)
    return languages, tuple(columns[lang] for lang in languages), tuple(golds)


def load_docs(source: str, lang: str) -> list[dict]:
    """All docs of ``source`` in ``lang``, each carrying every available parallel version.

    Rows without a ``lang`` translation (GSM8K train) are skipped; ``problem_id`` stays stable.
    """
    if source not in SOURCES:
        raise ValueError(f"Unknown source {source!r}. Supported: {', '.join(SOURCES)}.")
    get_language(lang, SOURCES[source])
    root = str(data_dir()) if data_dir() is not None else None
    languages, columns, golds = _parallel_table(source, _languages(source, lang), root)
    own = columns[languages.index(lang)]
    prefix = _ID_PREFIX[source]
    docs = []
    for row, gold in enumerate(golds):
        if own[row] is None:
            continue
        docs.append(
            {
                "problem_id": f"{prefix}-{row:04d}",
                "lang": lang,
                "question": own[row],
                "answer": gold,
                "parallel": {code: column[row] for code, column in zip(languages, columns)},
                "source": source,
            }
        )
    return docs


def load_exemplars(lang: str) -> list[dict]:
    """The 8 MGSM few-shot exemplars in ``lang`` (the ``train`` split of juletxara/mgsm), with the question
    and worked ``solution`` stripped of their ``Question:`` / ``Step-by-Step Answer:`` cues."""
    language = get_language(lang, MGSM_LANGUAGES)
    if data_dir() is not None:
        rows = [row for row in _read_jsonl(_local_file(LOCAL_MGSM_EXEMPLARS)) if row["lang"] == lang]
    else:
        import datasets

        rows = datasets.load_dataset(HUB_MGSM, lang, split="train").to_list()
    return [
        {
            "problem_id": f"mgsm-exemplar-{index}",
            "lang": lang,
            "question": row["question"].strip().removeprefix(language.question_prefix).strip(),
            "solution": row["answer"].strip().removeprefix(language.cot_cue).strip(),
            "answer": _gold(row["answer_number"]),
            "source": "mgsm_exemplars",
        }
        for index, row in enumerate(rows)
    ]


def _exemplars_if_available(lang: str) -> list[dict]:
    """The exemplars, or none with a warning: zero-shot runs must not depend on the few-shot examples."""
    try:
        return load_exemplars(lang)
    except Exception as error:  # a missing local file, or a Hub copy without the train split
        logger.warning("mgsm %s: no few-shot examples (%s); --num_fewshot > 0 will fail, zero-shot is unaffected.",
                       lang, error)
        return []


def load_dataset_dict(source: str, lang: str, split: str):
    """``datasets.DatasetDict`` with one split of parallel docs (what the task YAMLs load)."""
    import datasets

    splits = {split: datasets.Dataset.from_list(load_docs(source, lang))}
    if source == "mgsm":  # the few-shot examples for --num_fewshot (fewshot_split: train)
        splits["train"] = datasets.Dataset.from_list(_exemplars_if_available(lang))
    return datasets.DatasetDict(splits)


def dataset_loader(source: str, split: str) -> Callable:
    """A ``custom_dataset`` callable for lm-eval: receives ``lang`` via ``dataset_kwargs``."""

    def load(lang: str, **_metadata):
        return load_dataset_dict(source, lang, split)

    load.__name__ = f"load_{source}"
    return load
