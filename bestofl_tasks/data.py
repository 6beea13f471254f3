"""Datasets as parallel docs: MGSM, GSM8K test (+ translations), GSM8K train (+ translations), MSVAMP, AfriMGSM
and the generated arithmetic problems (``bestofl_tasks.arith``, test and train).

Every doc is a plain dict (see docs/ARCHITECTURE.md): ``problem_id``, ``lang``, ``question``,
``answer`` (canonical gold), ``parallel`` ({lang: question or None}) and ``source``. The MGSM few-shot
exemplars (``load_exemplars``) also carry ``solution``, their worked answer.

Where the data comes from (docs/TASKS.md):

* ``BESTOFL_DATA_DIR=DIR``: every source from local files in the layout of ``LOCAL_*`` below (docs/TASKS.md,
  "Offline data"); no network.
* otherwise MGSM from the copy shipped in the package (``bestofl_tasks/mgsm_data``, CC BY 4.0) and the other
  sources from the Hugging Face Hub at the revisions pinned in ``HUB_DATASETS`` (``BESTOFL_DATA_SOURCE=hub``
  takes MGSM from the Hub too). A Hub source that cannot be reached raises ``DataUnavailableError`` naming
  ``BESTOFL_DATA_DIR``.

The arithmetic problems are generated in every case.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import socket
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, NamedTuple

from . import arith
from .answers import canonical_number
from .languages import (
    AFRIMGSM_LANGUAGES,
    ARITH_LANGUAGES,
    GSM8K_TEST_LANGUAGES,
    GSM8K_TRAIN_LANGUAGES,
    MGSM_LANGUAGES,
    MSVAMP_LANGUAGES,
    get_language,
)

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "BESTOFL_DATA_DIR"
#: ``hub``: MGSM from the Hub as well (default: the copy shipped in the package).
DATA_SOURCE_ENV = "BESTOFL_DATA_SOURCE"
#: MGSM as shipped in the package (google-research/url-nlp ``mgsm/``, CC BY 4.0; see its SOURCE.md).
EMBEDDED_MGSM = Path(__file__).resolve().parent / "mgsm_data"


class HubDataset(NamedTuple):
    #: Hub id (``load_dataset``'s path; a local folder in the repository's layout works the same way).
    path: str
    #: Commit sha, or ``"main"`` where no published sha could be found (docs/TASKS.md says which).
    revision: str | None


#: The one table of Hub datasets and their pinned revisions.
HUB_DATASETS: dict[str, HubDataset] = {
    "mgsm": HubDataset("juletxara/mgsm", "main"),
    "gsm8k": HubDataset("openai/gsm8k", "740312add88f781978c0658806c59bc2815b9866"),
    "gsm8kx": HubDataset("openGPT-X/gsm8kx", "363d87617cd417b731dc860194a6935fd5ff49ae"),
    "msvamp": HubDataset("Mathoctopus/MSVAMP", "main"),
    "afrimgsm": HubDataset("masakhane/afrimgsm", "8e4268d2b94941f18f63f694cf48e4ae26fbec65"),
}
#: Hub config names that differ from our language codes.
GSM8KX_CONFIGS: dict[str, str] = {
    lang: "PT-PT" if lang == "pt" else lang.upper() for lang in GSM8K_TEST_LANGUAGES if lang != "en"
}
AFRIMGSM_CONFIGS: dict[str, str] = {
    "en": "eng", "am": "amh", "ee": "ewe", "fr": "fra", "ha": "hau", "ig": "ibo", "rw": "kin", "ln": "lin",
    "lg": "lug", "om": "orm", "sn": "sna", "st": "sot", "sw": "swa", "tw": "twi", "vai": "vai", "wo": "wol",
    "xh": "xho", "yo": "yor", "zu": "zul",
}

#: Local layout under BESTOFL_DATA_DIR (docs/TASKS.md, "Offline data"; tests/data is a small example).
LOCAL_MGSM = "mgsm/mgsm_{lang}.tsv"
LOCAL_MGSM_EXEMPLARS = "mgsm/mgsm_exemplars.jsonl"
LOCAL_GSM8K = "gsm8k/{split}.jsonl"
LOCAL_GSM8KX = "gsm8kx/gsm8k_{config}_test.jsonl"
LOCAL_TRAIN_TRANSLATIONS = "gsm8k_translated/mgsm8kinstruct_qalign/parallel_questions.jsonl"
LOCAL_MSVAMP = "msvamp/test_{name}.json"
#: A copy of the Hub repository (``git clone https://huggingface.co/datasets/masakhane/afrimgsm``).
LOCAL_AFRIMGSM = "afrimgsm"
#: One example file per Hub dataset, for the error that names BESTOFL_DATA_DIR.
_LOCAL_EXAMPLE = {
    "mgsm": LOCAL_MGSM.format(lang="de"), "gsm8k": LOCAL_GSM8K.format(split="test"),
    "gsm8kx": LOCAL_GSM8KX.format(config="DE"), "msvamp": LOCAL_MSVAMP.format(name="German"),
    "afrimgsm": LOCAL_AFRIMGSM + "/ (a clone of the Hub repository)",
}

SOURCES: dict[str, tuple[str, ...]] = {
    "mgsm": MGSM_LANGUAGES,
    "gsm8k_test": GSM8K_TEST_LANGUAGES,
    "gsm8k_train": GSM8K_TRAIN_LANGUAGES,
    "msvamp": MSVAMP_LANGUAGES,
    "afrimgsm": AFRIMGSM_LANGUAGES,
    "arith_test": ARITH_LANGUAGES,
    "arith_train": ARITH_LANGUAGES,
}
#: Sources meant for training a verifier (the others are test sets).
TRAIN_SOURCES = ("gsm8k_train", "arith_train")
_ID_PREFIX = {"mgsm": "mgsm", "gsm8k_test": "gsm8k-test", "gsm8k_train": "gsm8k-train", "msvamp": "msvamp",
              "afrimgsm": "afrimgsm", "arith_test": "arith-test", "arith_train": "arith-train"}
#: The Hub datasets each source reads (in ``data_source``'s description).
_HUB_PARTS = {"mgsm": ("mgsm",), "gsm8k_test": ("gsm8k", "gsm8kx"), "gsm8k_train": ("gsm8k",),
              "msvamp": ("msvamp",), "afrimgsm": ("afrimgsm",)}


class DataAlignmentError(ValueError):
    """Parallel versions of a problem disagree (different gold answers or row counts)."""


class DataUnavailableError(ConnectionError):
    """A Hub dataset could not be loaded (offline, unreachable); the message says how to use local files."""


def data_dir() -> Path | None:
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None


def _mgsm_from_hub() -> bool:
    value = os.environ.get(DATA_SOURCE_ENV, "")
    if value not in ("", "hub"):
        raise ValueError(f"{DATA_SOURCE_ENV}={value!r} is not supported: use 'hub' or leave it unset.")
    return value == "hub"


def _mgsm_file(relative: str) -> Path | None:
    """An MGSM file (``LOCAL_MGSM`` layout) under BESTOFL_DATA_DIR or in the embedded copy; None: use the Hub."""
    if data_dir() is not None:
        return _local_file(relative)
    return None if _mgsm_from_hub() else EMBEDDED_MGSM / Path(relative).name


def data_source(source: str) -> str:
    """Where ``source``'s data is read from: ``local:DIR``, ``embedded:...`` or ``hub:ID@REVISION[+...]``."""
    if source.startswith("arith_"):
        return "generated:bestofl_tasks.arith"
    if data_dir() is not None:
        return f"local:{data_dir()}"
    if source == "mgsm" and not _mgsm_from_hub():
        return "embedded:bestofl_tasks/mgsm_data (google-research/url-nlp@452a21ad3dae5668c06ceeac21ff073e1e40f9be)"
    return "hub:" + "+".join(f"{HUB_DATASETS[name].path}@{HUB_DATASETS[name].revision}" for name in _HUB_PARTS[source])


@functools.lru_cache(maxsize=1)
def _hub_unreachable() -> str | None:
    """Why the Hub cannot be reached (offline mode, or no connection to its host within 5 s); None when it can.

    Asked once per process, before the first Hub load, so that an offline machine fails (or reads the datasets
    cache) at once instead of after the Hub client's retries.
    """
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return "offline mode is on (HF_HUB_OFFLINE)"
    endpoint = urllib.parse.urlsplit(constants.ENDPOINT)
    host, port = endpoint.hostname, endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as error:
        return f"{host} cannot be reached ({error})"
    return None


@contextlib.contextmanager
def _offline_mode() -> Iterator[None]:
    """The Hub clients in offline mode for one load: the datasets cache is read, nothing is retried."""
    import datasets
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved


def _hub_rows(name: str, config: str | None, split: str) -> list[dict]:
    """One config and split of ``HUB_DATASETS[name]`` through ``datasets.load_dataset``, at its pinned revision.

    When the Hub cannot be reached the load goes to the datasets cache at once; without a cached copy it fails
    with ``DataUnavailableError`` (no retries).
    """
    import datasets

    path, revision = HUB_DATASETS[name]
    unreachable = _hub_unreachable()
    try:
        with _offline_mode() if unreachable else contextlib.nullcontext():
            return datasets.load_dataset(path, config, split=split, revision=revision).to_list()
    except (ConnectionError, FileNotFoundError) as error:
        if isinstance(error, FileNotFoundError) and not unreachable:
            raise
        raise DataUnavailableError(
            f"Could not load {path} (config {config}, split {split}, revision {revision}) from the Hugging Face "
            f"Hub{': ' + unreachable if unreachable else ''} and no cached copy was found ({error}). "
            f"To run offline, set {DATA_DIR_ENV}=DIR to a folder holding the files "
            f"(e.g. DIR/{_LOCAL_EXAMPLE[name]}; the layout: docs/TASKS.md, 'Offline data')."
        ) from None


def _local_file(relative: str) -> Path:
    path = data_dir() / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{DATA_DIR_ENV}={data_dir()} is set but {path} does not exist. "
            f"Put the file there (the layout: docs/TASKS.md, 'Offline data'), or unset {DATA_DIR_ENV} "
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


def _read_tsv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="\n") as handle:
        return [line.split("\t") for line in handle.read().split("\n") if line.strip()]


def _mgsm_rows(lang: str) -> tuple[list[str], list[str]]:
    path = _mgsm_file(LOCAL_MGSM.format(lang=lang))
    if path is not None:
        rows = _read_tsv(path)
        return [q for q, _ in rows], [_gold(a.replace(",", "")) for _, a in rows]
    rows = _hub_rows("mgsm", lang, "test")
    return [r["question"] for r in rows], [_gold(r["answer_number"]) for r in rows]


def _gsm8k_rows(split: str) -> tuple[list[str], list[str]]:
    if data_dir() is not None:
        rows = _read_jsonl(_local_file(LOCAL_GSM8K.format(split=split)))
    else:
        rows = _hub_rows("gsm8k", "main", split)
    return [r["question"] for r in rows], [_gsm8k_gold(r["answer"]) for r in rows]


def _gsm8kx_rows(lang: str) -> tuple[list[str], list[str]]:
    config = GSM8KX_CONFIGS[lang]
    if data_dir() is not None:
        rows = _read_jsonl(_local_file(LOCAL_GSM8KX.format(config=config)))
    else:
        rows = _hub_rows("gsm8kx", config, "test")
    return [r["question"] for r in rows], [_gsm8k_gold(r["answer"], lang) for r in rows]


def _msvamp_rows(lang: str) -> tuple[list[str], list[str]]:
    """MSVAMP: ``m_query`` (the question in ``lang``) and ``response`` (the answer, e.g. ``"8.0"``)."""
    if data_dir() is not None:
        rows = _read_jsonl(_local_file(LOCAL_MSVAMP.format(name=get_language(lang).name)))
    else:
        rows = _hub_rows("msvamp", lang, "test")
    return [r["m_query"] for r in rows], [_gold(r["response"]) for r in rows]


def _afrimgsm_rows(lang: str) -> tuple[list[str], list[str]]:
    """AfriMGSM: ``question`` and ``answer_number``; locally from a copy of the Hub repository."""
    config = AFRIMGSM_CONFIGS[lang]
    if data_dir() is not None:
        folder = data_dir() / LOCAL_AFRIMGSM
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{DATA_DIR_ENV}={data_dir()} is set but {folder} does not exist. Put a copy of the Hub repository "
                f"there (git clone https://huggingface.co/datasets/{HUB_DATASETS['afrimgsm'].path}), or unset "
                f"{DATA_DIR_ENV} to load from the Hugging Face Hub."
            )
        import datasets

        rows = datasets.load_dataset(str(folder), config, split="test").to_list()
    else:
        rows = _hub_rows("afrimgsm", config, "test")
    return [r["question"] for r in rows], [_gold(str(r["answer_number"]).replace(",", "")) for r in rows]


@functools.lru_cache(maxsize=1)
def _train_translations(path: Path) -> list[dict]:
    return _read_jsonl(path)


def _train_translation_rows(lang: str, english_golds: list[str]) -> tuple[list[str | None], list[str]]:
    if data_dir() is None:
        raise FileNotFoundError(
            "The translated GSM8K train questions (MGSM8KInstruct) have no Hub copy whose row alignment "
            f"bestofl can verify. Set {DATA_DIR_ENV} to a directory containing {LOCAL_TRAIN_TRANSLATIONS} "
            "(docs/TASKS.md, 'Offline data'), or machine-translate with `bestofl-train translate`."
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
    if source in ("mgsm", "afrimgsm", "arith_test", "arith_train"):
        return True
    if data_dir() is None:
        return lang == "en" or source != "gsm8k_train"
    if source == "msvamp":
        return (data_dir() / LOCAL_MSVAMP.format(name=get_language(lang).name)).is_file()
    if lang == "en":
        return True
    if source == "gsm8k_test":
        return (data_dir() / LOCAL_GSM8KX.format(config=GSM8KX_CONFIGS[lang])).is_file()
    return (data_dir() / LOCAL_TRAIN_TRANSLATIONS).is_file()


def _columns(source: str, lang: str, english_golds: list[str] | None) -> tuple[list, list[str]]:
    if source == "mgsm":
        return _mgsm_rows(lang)
    if source == "msvamp":
        return _msvamp_rows(lang)
    if source == "afrimgsm":
        return _afrimgsm_rows(lang)
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
    source: str, languages: tuple[str, ...], origin: str
) -> tuple[tuple[str, ...], tuple[tuple, ...], tuple[str, ...]]:
    """(languages, question columns, golds) for ``source``, checked for alignment.

    Loaded once per (source, languages, ``data_source``): the 11 ``mgsm_xling`` tasks share one table.
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
    languages, columns, golds = _parallel_table(source, _languages(source, lang), data_source(source))
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
    path = _mgsm_file(LOCAL_MGSM_EXEMPLARS)
    if path is not None:
        rows = [row for row in _read_jsonl(path) if row["lang"] == lang]
    else:
        rows = _hub_rows("mgsm", lang, "train")
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
