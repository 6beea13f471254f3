"""Questions of tasks without parallel versions, translated into the pool's languages once and cached.

``translator=self`` (the default) is the generator with a short translation prompt (:data:`PROMPT_VERSION`),
greedy; ``translator=ID`` is a seq2seq MT model in the NLLB/M2M style (:class:`Seq2SeqTranslator`, language
codes from ``bestofl_tasks.languages.NLLB_CODES``); ``translator=none`` switches translation off. The number check
and the seq2seq model are also ``bestofl-train translate``'s.

Every translation is stored (``translations`` table of the candidate store) under
:func:`~bestofl_models.store.translation_key`: translator identity, source text, both languages, settings. So a
question is translated once across runs, targets, tasks and presets. Missing ones are translated one language
at a time, in length-sorted batches, each batch one store transaction. A translation that loses a number of the
source (:func:`missing_numbers`: values, each text read with its own language's decimal and thousands separators
by ``bestofl_tasks.answers.numbers_in``), that was cut at its token budget (:meth:`SelfTranslator.budget`), or is
empty, is stored too, but left out of that problem's pool, and counted. When two runs translate the same question
at once, the text the store holds (the first one written) is the one both use.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
from collections.abc import Callable
from typing import Any

from bestofl_tasks.answers import numbers_in
from bestofl_tasks.languages import LANGUAGES, NLLB_CODES, get_language
from bestofl_tasks.prompts import has_chat_template

from ..store.identity import identity_id
from ..store import CUT_AT_BUDGET, CandidateStore, Translation, translation_key

logger = logging.getLogger(__name__)

SELF = "self"
#: The language questions of tasks without parallel versions are taken to be written in.
SOURCE_LANG = "en"
PROMPT_VERSION = "bestofl-translate-1"
TRANSLATE_INSTRUCTION = ("Translate this math problem from {source} into {target}. Keep every number exactly as "
                         "written. Write only the translation.")
#: A generator translation's token budget: ``BUDGET_FACTOR`` x the source's tokens x the target's token cost
#: relative to English, plus ``BUDGET_SLACK`` (no fixed cap: MGSM's human translations of every language fit,
#: docs/ROBUSTNESS.md); a translation that reaches it was cut and is refused.
BUDGET_FACTOR, BUDGET_SLACK = 2.0, 16
#: Extra tokens generated past the longest budget of a batch, so that a row cut at the generation limit still
#: re-encodes to at least its budget.
CUT_MARGIN = 8


def number_values(text: str, lang: str | None = None) -> collections.Counter:
    """Multiset of the numbers written with digits in ``text``, as canonical values read with ``lang``'s decimal and
    thousands separators (``bestofl_tasks.answers.numbers_in``; native digits count: ``١٢`` is ``12``). Signs are
    dropped: a dash between two numbers ("pages 10 - 20") is read as a minus in one writing and not in another."""
    return collections.Counter(value.lstrip("-") for value in numbers_in(text, lang))


def missing_numbers(source: str, translation: str, source_lang: str | None = SOURCE_LANG,
                    target_lang: str | None = None) -> list[str]:
    """Values of ``source`` (read as ``source_lang``) that ``translation`` (read as ``target_lang``) lost: empty
    means the check passes; extra numbers are fine. ``1.5`` -> ``15`` or ``12`` -> ``1.2`` lose a value; en
    ``1,250.5`` -> de ``1.250,5`` or fr ``1 250,5`` keep it."""
    return sorted((number_values(source, source_lang) - number_values(translation, target_lang)).elements())


class Seq2SeqTranslator:
    """A seq2seq MT model in the NLLB/M2M style: ``tokenizer.src_lang`` set to the source's code, the target's
    code forced as the first generated token; ``codes`` maps our language codes to the model's."""

    def __init__(self, model: str, codes: dict[str, str], device: str, num_beams: int, max_new_tokens: int):
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.name, self.codes, self.device = model, codes, device
        self.num_beams, self.max_new_tokens = num_beams, max_new_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(model).to(device).eval()
        self._torch = torch

    def target_token(self, lang: str) -> int:
        """The model's token for ``lang``; a ValueError naming the code when it has none."""
        code = self.codes[lang]
        token_id = self.tokenizer.convert_tokens_to_ids(code)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise ValueError(f"MT model {self.name} has no language token {code!r} for {lang}; "
                             f"set translate.lang_codes.{lang} to the model's code")
        return token_id

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        """The translations; :attr:`last_cut` then says which ended at ``max_new_tokens`` (no end token)."""
        self.tokenizer.src_lang = self.codes[source]
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True).to(self.device)
        with self._torch.inference_mode():
            output = self.model.generate(**batch, forced_bos_token_id=self.target_token(target),
                                         num_beams=self.num_beams, max_new_tokens=self.max_new_tokens)
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        self.last_cut = [not eos.intersection(row.tolist()) for row in output]
        return [text.strip() for text in self.tokenizer.batch_decode(output, skip_special_tokens=True)]


@dataclasses.dataclass
class TranslationCounts:
    """What a run's translation step did (results JSON ``bestofl.translation``, run summary)."""

    planned: int = 0
    translated: int = 0
    reused: int = 0
    refused: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    #: Of those refused: translations that ended at their token budget (cut), by language.
    cut: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    #: Answer lines appended, by form (``lm_eval_tasks.ANSWER_FORMS``; ``none``: no form parsed).
    answer_lines: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"planned": self.planned, "translated": self.translated, "reused": self.reused,
                "refused_number_check": sum(self.refused.values()), "refused_by_lang": dict(self.refused),
                "refused_cut_at_budget": sum(self.cut.values()), "cut_by_lang": dict(self.cut),
                "answer_lines": dict(self.answer_lines)}


class SelfTranslator:
    """The generator itself, greedy, with :data:`TRANSLATE_INSTRUCTION` through its chat template (plain text
    ending in ``{target}:`` and stopping at a newline without one). Budget (:meth:`budget`): :data:`BUDGET_FACTOR`
    x the question's tokens x the target's token cost relative to English (the tokenizer's lengths of the language
    table's ``instruction``, the same sentence in every language) + :data:`BUDGET_SLACK`; a batch runs to its
    longest budget + :data:`CUT_MARGIN`, and a translation whose tokens reach its own budget was cut (:meth:`cut`)."""

    name = SELF

    def __init__(self, tokenizer, generator_identity: dict, backend: Callable[[], Any]):
        self.tokenizer, self._backend = tokenizer, backend
        self.identity = {"kind": "generator", "generator": generator_identity, "prompt": PROMPT_VERSION}
        self.id = identity_id(self.identity, "translator")
        self.settings = {"prompt": PROMPT_VERSION, "decoding": "greedy",
                         "budget": f"{BUDGET_FACTOR}x-source-tokens-x-cost+{BUDGET_SLACK}"}
        self._cost: dict[str, float] = {}

    def check(self, languages) -> None:
        """Nothing to check: the generator writes every language of the table."""

    def prompt(self, text: str, source: str, target: str) -> str:
        names = get_language(source).name, get_language(target).name
        instruction = TRANSLATE_INSTRUCTION.format(source=names[0], target=names[1])
        if has_chat_template(self.tokenizer):
            return self.tokenizer.apply_chat_template([{"role": "user", "content": f"{instruction}\n\n{text}"}],
                                                      tokenize=False, add_generation_prompt=True)
        return f"{instruction}\n\n{names[0]}: {text}\n{names[1]}:"

    def budget(self, text: str, target: str) -> int:
        if target not in self._cost:
            self._cost[target] = len(self.tokenizer.encode(LANGUAGES[target].instruction)) / len(
                self.tokenizer.encode(LANGUAGES[SOURCE_LANG].instruction))
        return math.ceil(BUDGET_FACTOR * self._cost[target] * len(self.tokenizer.encode(text))) + BUDGET_SLACK

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        from .backends import SamplingSettings

        stop = () if has_chat_template(self.tokenizer) else ("\n",)
        settings = SamplingSettings(0.0, 1.0, max(self.budget(text, target) for text in texts) + CUT_MARGIN)
        outputs = self._backend().generate([self.prompt(t, source, target) for t in texts], [0] * len(texts),
                                           [stop] * len(texts), settings)
        return [output.text.strip() for output in outputs]

    def cut(self, texts: list[str], outputs: list[str], source: str, target: str) -> list[bool]:
        """Which ``outputs`` (translations of ``texts``) reached their budget: cut, or running on past it."""
        return [len(self.tokenizer.encode(out, add_special_tokens=False)) >= self.budget(text, target)
                for text, out in zip(texts, outputs)]

    def close(self) -> None:
        """The generator stays: it samples next."""


class MTTranslator:
    """``translator=ID``: a :class:`Seq2SeqTranslator` (loaded on first use, freed after) with beam search."""

    NUM_BEAMS, MAX_NEW_TOKENS = 4, 512

    def __init__(self, model: str, device: str):
        from ..store.identity import fingerprint

        self.name, self.device = model, device
        self.settings = {"num_beams": self.NUM_BEAMS, "max_new_tokens": self.MAX_NEW_TOKENS}
        self.identity = {"kind": "seq2seq", "fingerprint": fingerprint(model), **self.settings}
        self.id = identity_id(self.identity, "translator")
        self._model = None

    def check(self, languages) -> None:
        """The model is a seq2seq model with a language token for each of ``languages`` (ModelArgsError)."""
        from transformers import AutoConfig, AutoTokenizer

        from ..errors import ModelArgsError

        try:
            is_seq2seq = AutoConfig.from_pretrained(self.name).is_encoder_decoder
            tokenizer = AutoTokenizer.from_pretrained(self.name)
        except (OSError, ValueError) as exc:
            raise ModelArgsError(f"translator={self.name} cannot be loaded ({exc}); give a local folder or a Hub id "
                                 "of a seq2seq MT model, or translator=self.") from None
        if not is_seq2seq:
            raise ModelArgsError(f"translator={self.name} is not a seq2seq (encoder-decoder) model; use an MT model "
                                 "such as facebook/nllb-200-distilled-600M, or translator=self.")
        lacking = [lang for lang in languages
                   if tokenizer.convert_tokens_to_ids(NLLB_CODES[lang]) in (None, tokenizer.unk_token_id)]
        if lacking:
            raise ModelArgsError(
                f"translator={self.name} has no language token for {', '.join(lacking)} "
                f"({', '.join(NLLB_CODES[lang] for lang in lacking)}); remove them from languages= or use "
                "translator=self.")

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        if self._model is None:
            self._model = Seq2SeqTranslator(self.name, dict(NLLB_CODES), self.device, self.NUM_BEAMS,
                                            self.MAX_NEW_TOKENS)
        return self._model.translate(texts, source, target)

    def cut(self, texts: list[str], outputs: list[str], source: str, target: str) -> list[bool]:
        """Which of the last batch's translations ended at :data:`MAX_NEW_TOKENS` without an end token."""
        return list(self._model.last_cut)

    def close(self) -> None:
        self._model = None


def load_translator(config, tokenizer, generator_identity: dict, backend: Callable[[], Any]):
    """The run's translator, checked against the pool before anything is sampled; None with ``translator=none``
    or a target-only preset (its pool is the question's own language)."""
    if config.translator is None or config.pool != "languages":
        return None
    if config.translator == SELF:
        translator = SelfTranslator(tokenizer, generator_identity, backend)
    else:
        from .backends.hf import pick_device

        translator = MTTranslator(config.translator, str(pick_device(config.device)))
    translator.check(sorted({SOURCE_LANG, *config.languages}))
    return translator


def translate_problems(problems: list, pool: tuple[str, ...], translator, store: CandidateStore,
                       read_stores: list[CandidateStore], batch_size: int, counts: TranslationCounts) -> list:
    """``problems`` with ``parallel`` filled for each ``pool`` language of those with a ``source_lang``:
    translations from the store, or made now and stored; one that lost a number (or is empty) is left out and
    listed in the problem's ``refused``."""
    wanted: dict[str, tuple[str, str, str]] = {}  # key -> (source text, source lang, target lang)
    keys: dict[int, dict[str, str]] = {}  # problem index -> {target lang: key}
    for index, problem in enumerate(problems):
        if problem.source_lang is not None:
            text = problem.parallel[problem.source_lang]
            keys[index] = {lang: _key(translator, text, problem.source_lang, lang)
                           for lang in pool if lang != problem.source_lang}
            wanted.update((key, (text, problem.source_lang, lang)) for lang, key in keys[index].items())
    if not wanted:
        return problems
    done = store.translations(wanted)
    for other in read_stores:  # what this store lacks, copied from the stores read
        found = other.translations(key for key in wanted if key not in done)
        store.add_translations(found.values())
        done.update(found)
    missing = [(key, *item) for key, item in wanted.items() if key not in done]
    counts.planned += len(wanted)
    counts.reused += len(wanted) - len(missing)
    counts.translated += len(missing)
    logger.info("bestofl: %d translations planned, %d to make with translator=%s (the rest are in the store)",
                len(wanted), len(missing), translator.name)
    for (source, target), items in sorted(_by_languages(missing).items()):
        items.sort(key=lambda item: len(item[1]))
        for start in range(0, len(items), batch_size):
            batch = items[start:start + batch_size]
            sources = [text for _, text, _, _ in batch]
            texts = translator.translate(sources, source, target)
            cut = translator.cut(sources, texts, source, target) if hasattr(translator, "cut") else [False] * len(texts)
            made = [Translation(key, translator.id, source, target, _settings(translator, source, target), text,
                                out, tuple(missing_numbers(text, out, source, target)) + ((CUT_AT_BUDGET,) if c else ()))
                    for (key, text, _, _), out, c in zip(batch, texts, cut)]
            store.add_translations(made)
            # Another run may have stored these keys first: what the store holds is what every run uses.
            done.update({t.key: t for t in made})
            done.update(store.translations(t.key for t in made))
    translator.close()
    return [_with_translations(problem, keys[index], done, counts) if index in keys else problem
            for index, problem in enumerate(problems)]


def _by_languages(items: list[tuple[str, str, str, str]]) -> dict[tuple[str, str], list]:
    groups: dict[tuple[str, str], list] = collections.defaultdict(list)
    for item in items:
        groups[item[2], item[3]].append(item)
    return groups


def _settings(translator, source: str, target: str) -> dict[str, Any]:
    if isinstance(translator, MTTranslator):
        return {**translator.settings, "source_code": NLLB_CODES[source], "target_code": NLLB_CODES[target]}
    return dict(translator.settings)


def _key(translator, text: str, source: str, target: str) -> str:
    return translation_key(translator.id, text, source, target, _settings(translator, source, target))


def _with_translations(problem, keys: dict[str, str], done: dict[str, Translation], counts: TranslationCounts):
    """``problem`` with the translations of ``keys`` ({target lang: key}) that passed the number check (run again
    here with the current rules, so a translation stored under older ones is checked as today) and were not cut."""
    parallel, refused = dict(problem.parallel), []
    for lang, key in keys.items():
        translation = done[key]
        lost = missing_numbers(translation.source, translation.text, translation.source_lang, lang)
        if translation.text.strip() and not lost and not translation.cut:
            parallel[lang] = translation.text
        else:
            refused.append(lang)
            counts.refused[lang] += 1
            counts.cut[lang] += translation.cut
    return dataclasses.replace(problem, parallel=parallel, refused=tuple(refused))
