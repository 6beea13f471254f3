"""The lm-eval models: ``bestofl`` (Best-of-L), ``multi-orm`` and ``self-consistency``.

They are registered lazily by the start-up hook (``bestofl_tasks._autoload``), so this module needs no
``@register_model``: ``lm_eval --model bestofl``, ``simple_evaluate(model="bestofl")`` and
``get_model("bestofl")`` resolve to the classes below.

``generate_until`` receives every request of every task at once, turns each into a problem, plans ``n``
samples over the pool, generates only what the store lacks, scores with the verifier if the selection needs one,
and returns the selected candidate plus the target language's final answer line. The steps, and what is ignored
from the task (its ``ctx``, sampling settings, ``--apply_chat_template``), are in docs/MODELS.md.

Under ``accelerate launch`` every rank plans its own requests, then the ranks gather what is missing, drop
duplicates, and each generates (and scores) the share :func:`~bestofl_models.distributed.balanced_split` gives it;
the ranks then exchange what they made, so each selects from exactly what a single process would have had.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import math
from dataclasses import dataclass
from typing import Any

from lm_eval.api.model import LM
from lm_eval.utils import simple_parse_args_string
from tqdm.auto import tqdm

from bestofl_tasks.answers import extract_answer
from bestofl_tasks.languages import final_answer_line, get_language
from bestofl_tasks.prompts import generator_prompt, has_chat_template

from .adaptive_run import draw_in_rounds, rounds_of
from .backends import prompt_batches
from .config import BestOfLConfig, LmEvalOptionError, ModelArgsError, check_target, parse_model_args
from .distributed import ProcessGroup, balanced_split
from .lm_eval_options import SystemInstruction, honoured_gen_kwargs, prompt_with_system
from .pool import plan_samples
from .problems import Problem, has_fewshot_examples, problem_from_instance
from .run_log import (
    RunSummary,
    show_logs_like_lm_eval,
    warn_fewshot_ignored,
    warn_no_pool,
    warn_pool_file_mismatch,
    warn_repeats,
    warn_target_outside_pool,
)
from .selection import Scored, select
from .store import (
    MISSING,
    Candidate,
    CandidateStore,
    Use,
    candidate_key,
    prompt_hash,
    text_hash,
)

logger = logging.getLogger(__name__)

#: Candidates whose scores are appended to the store together.
SCORE_CHUNK = 256


@dataclass(frozen=True)
class Slot:
    """One planned sample of one request."""

    request: int
    lang: str | None
    sample_idx: int
    key: str
    prompt: str
    question: str
    stop: tuple[str, ...]


@dataclass(frozen=True)
class ToGenerate:
    """A candidate to generate, as one rank hands it to all: its prompt's length in tokens (the global order is
    longest first), its slot, and the use to record with it."""

    length: int
    slot: Slot
    use: Use


def candidate_seed(key: str) -> int:
    """The sampling seed of a candidate (its key already covers the run's ``seed``)."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:15], 16)


class BestOfLLM(LM):
    """Samples ``n`` answers per problem across a language pool and answers with the selected one."""

    PRESET = "bestofl"

    def __init__(self, config: BestOfLConfig | None = None, **model_args: Any) -> None:
        super().__init__()
        show_logs_like_lm_eval()
        self.config = config if config is not None else parse_model_args(model_args, self.PRESET)
        self.group = ProcessGroup()
        self._rank, self._world_size = self.group.rank, self.group.world_size
        if self.group.world_size > 1:
            if self.config.backend == "vllm":
                raise ModelArgsError(
                    "backend=vllm runs data parallel inside the model (data_parallel_size=K, one engine per "
                    "replica), not under accelerate launch: run lm_eval as one process.")
            self._device = self.group.device  # each rank on its own device (the CPU without CUDA)
            self.config = dataclasses.replace(self.config, device=str(self.group.device))
        from .backends import load_tokenizer
        from .identity import generator_identity, identity_id, verifier_identity

        self.tokenizer = load_tokenizer(self.config)
        self.verifier_id = self.verifier_spec = self.verifier_config = None
        if self.config.needs_verifier:  # a missing or wrong-shaped verifier fails now, not after sampling
            from .verifier_spec import log_choice, resolve_verifier

            self.verifier_config = self.config.verifier_config()
            self.verifier_spec = resolve_verifier(self.verifier_config, self.tokenizer)
            self.verifier_identity = verifier_identity(self.verifier_config, self.verifier_spec)
            self.verifier_id = identity_id(self.verifier_identity, "verifier")
            log_choice(self.config, self.verifier_spec)
        self.generator_identity = generator_identity(self.config)
        self.generator_id = identity_id(self.generator_identity, "generator")
        self.store = CandidateStore(self.config.store)
        self.read_stores = [CandidateStore(path, read_only=True) for path in self.config.read_stores]
        self.store.register_model(self.generator_id, "generator", self.config.pretrained, self.generator_identity)
        if self.verifier_id is not None:
            self.store.register_model(self.verifier_id, "verifier", self.verifier_spec.name, self.verifier_identity)
        warn_pool_file_mismatch(self.config, self.generator_id, self.verifier_id)
        from .translation import load_translator

        self.translator = load_translator(self.config, self.tokenizer, self.generator_identity, self._generator)
        if self.translator is not None:
            self.store.register_model(self.translator.id, "translator", self.translator.name, self.translator.identity)
        self.tasks: dict[str, Any] = {}  # lm-eval task objects by name (bind_tasks)
        self.store.register_run(self.generator_id, self.config.summary())  # reports read the pool order here
        self._backend = None
        self._verifier = None
        self._prompts: dict[tuple[str, str, str | None], str] = {}
        #: The model's own settings; ``self.config`` is this call's (``--gen_kwargs max_gen_toks`` may lower the cap).
        self.base_config = self.config
        #: This call's lm-eval options as applied (``begin_call``): doc ids under ``--samples``, the system
        #: instruction per language, stop strings and the token cap from ``--gen_kwargs``.
        self.doc_ids: dict[str, list[int]] = {}
        self.system_instruction: SystemInstruction | None = None
        self.extra_stop: tuple[str, ...] = ()
        self.gen_kwargs_applied: dict[str, Any] = {}
        self._reset_counts()

    def _reset_counts(self) -> None:
        """For the results JSON (``results_info``), per ``simple_evaluate`` call: counts, data sources, per-request
        records by (task, doc_id), and per task whether any request sampled the task's own prompt."""
        from .translation import TranslationCounts

        self.run_counts: collections.Counter = collections.Counter(largest_batch=0, requests=0, samples_used=0)
        self.data_sources: set[str] = set()
        self.sample_records: dict[tuple[str, int], dict] = {}
        self.translation_counts = TranslationCounts()
        self.prompts_by_task: dict[str, set[str]] = collections.defaultdict(set)

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None) -> "BestOfLLM":
        """``--model_args`` wins over lm-eval's ``--batch_size`` (always passed, ``1`` by default)."""
        return cls(config=parse_model_args(simple_parse_args_string(arg_string), cls.PRESET, additional_config))

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict, additional_config: dict | None = None) -> "BestOfLLM":
        return cls(config=parse_model_args(dict(arg_dict), cls.PRESET, additional_config))

    # ------------------------------------------------------------------------------------------ lm-eval API

    def all_gather(self, tensor):
        return self.group.all_gather_tensor(tensor)

    def gather_object(self, obj, dst=0):
        return self.group.gather_to(obj, dst)

    def barrier(self) -> None:
        self.group.barrier()

    def loglikelihood(self, requests):
        raise NotImplementedError(
            f"--model {self.config.preset} only generates (generate_until tasks such as mgsm_xling); "
            "loglikelihood tasks need a plain model, e.g. --model hf."
        )

    def loglikelihood_rolling(self, requests):
        raise NotImplementedError(
            f"--model {self.config.preset} only generates; perplexity tasks need a plain model, e.g. --model hf."
        )

    @property
    def batch_sizes(self) -> dict[str, int]:
        """What lm-eval lists as ``config.batch_sizes``: the generator's batch size, then the verifier's when one
        scores (``largest_generation_batch`` in the ``bestofl`` block is the largest batch this call ran)."""
        sizes = {"generator": self.config.batch_size}
        if self.verifier_id is not None:
            sizes["verifier"] = self.config.verifier_batch_size
        return sizes

    @property
    def tokenizer_name(self) -> str:
        return self.config.pretrained.replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return getattr(self.tokenizer, "chat_template", None) or ""

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """Used only for tasks without parallel docs (their own prompt is the one sampled)."""
        return self.tokenizer.apply_chat_template(
            chat_history, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def bind_tasks(self, task_dict) -> None:
        """The tasks being evaluated (the start-up hook passes ``evaluate``'s task dict): their ``doc_to_text``
        isolates questions to translate, their filters check the answer line."""
        from .lm_eval_tasks import tasks_by_name

        self.tasks = tasks_by_name(task_dict)

    def begin_call(self, task_dict=None, *, samples: dict[str, list[int]] | None = None,
                   system_instruction: str | None = None, gen_kwargs: Any = None) -> None:
        """Start one ``evaluate`` call (the start-up hook calls it with that call's options): every count in the
        results describes this call only, and lm-eval's options apply as docs/MODELS.md says:

        * ``samples``: per task, the doc indices ``--samples`` chose (lm-eval numbers them 0..k-1 in the requests);
          problems, the store and the sample records carry the doc's own index;
        * ``system_instruction``: the system turn of every pool language's prompt (or the text before a plain
          prompt); a JSON object ``{"en": ..., "de": ...}`` gives each language its own (translated) text;
        * ``gen_kwargs``: ``max_gen_toks`` (the smaller of it and ``max_gen_toks=`` wins) and ``until`` (added
          stop strings) are honoured; the rest is warned about by ``results_info.ignored_options``."""
        if task_dict is not None:
            self.bind_tasks(task_dict)
        self.doc_ids = {task: sorted(set(indices)) for task, indices in (samples or {}).items() if indices}
        self.system_instruction = SystemInstruction.parse(system_instruction, self.base_config)
        self._prompts = {}
        cap, self.extra_stop, self.gen_kwargs_applied = honoured_gen_kwargs(gen_kwargs, self.base_config)
        self.config = dataclasses.replace(self.base_config, max_gen_toks=cap)
        self._reset_counts()

    def get_model_info(self) -> dict:
        from .results_info import model_info

        return model_info(self)

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        if not requests and self.world_size == 1:  # a rank with no requests still takes part in the exchanges
            return []
        from .results_info import doc_source, sample_record, warn_task_decoding

        disable_tqdm = disable_tqdm or self.rank != 0
        warn_repeats(max((getattr(r, "repeats", 1) or 1 for r in requests), default=1))
        warn_task_decoding(requests, honoured=self.gen_kwargs_applied)
        translate = self.config.translator is not None
        problems = [problem_from_instance(r, self.tasks.get(r.task_name), translate, self._doc_id(r))
                    for r in requests]
        for problem in problems:
            self.prompts_by_task[problem.task].add("task" if problem.is_fallback else "bestofl")
        self.data_sources.update(doc_source(r.doc) for r, problem in zip(requests, problems)
                                 if not problem.is_fallback and problem.source_lang is None)
        if self.translator is not None:
            from .translation import translate_problems

            problems = translate_problems(problems, self.config.languages, self.translator, self.store,
                                          self.read_stores, self.config.batch_size, self.translation_counts)
        for request, problem in zip(requests, problems):
            if has_fewshot_examples(request.args[0], problem, self.tasks.get(problem.task)):
                warn_fewshot_ignored(problem.task)
        slots = [self._plan(i, problem) for i, problem in enumerate(problems)]
        candidates: dict[str, Candidate] = {}
        scores: dict[str, float | None] = {}

        def draw(batch: list[list[Slot]], score: bool) -> None:
            """Generate (and score) the slots the store lacks, and record who used them."""
            candidates.update(self._generate_missing(problems, batch, disable_tqdm))
            self._record_uses(problems, batch)
            if score:
                scores.update(self._score_missing(batch, candidates, disable_tqdm))

        rule = self.config.adaptive
        if rule is None:
            draw(slots, self.config.needs_verifier)
        else:  # rounds; the verifier scores each round only if the rule reads scores, else once at the end
            slots = draw_in_rounds(rule, [rounds_of(request_slots) for request_slots in slots],
                                   lambda batch: draw(batch, rule.needs_verifier),
                                   lambda drawn: self._scored(drawn, candidates, scores), self.group)
            if self.config.needs_verifier and not rule.needs_verifier:
                scores.update(self._score_missing(slots, candidates, disable_tqdm))
        for requests_done, samples in self.group.all_gather([(len(slots), sum(map(len, slots)))]):
            self.run_counts.update(requests=requests_done, samples_used=samples)
        outputs, report = [], RunSummary()
        records = {}
        for request, problem, request_slots in zip(requests, problems, slots):
            chosen, first, scored = self._select(problem, request_slots, candidates, scores)
            outputs.append(self._answer_text(problem, chosen, candidates, request.doc))
            report.add(problem, chosen, first, len(request_slots))
            records[problem.task, problem.doc_id] = sample_record(chosen, scored)
        for rank_records in self.group.all_gather([records]):  # rank 0 writes every row of --log_samples
            self.sample_records.update(rank_records)
        report.log(self.config)
        return outputs

    def _doc_id(self, request) -> int | None:
        """lm-eval's own index of the request's doc: under ``--samples`` the requests number the chosen docs
        0..k-1 (in the order of the task's docs), so their index is looked up; else ``None`` (the request's own)."""
        chosen = self.doc_ids.get(request.task_name)
        if not chosen:
            return None
        if not 0 <= request.doc_id < len(chosen):
            raise LmEvalOptionError(f"{request.task_name}: request doc_id {request.doc_id} is outside the "
                                    f"{len(chosen)} docs --samples chose ({chosen}).")
        return chosen[request.doc_id]

    # ------------------------------------------------------------------------------------------ planning

    def _plan(self, index: int, problem: Problem) -> list[Slot]:
        settings = self.config.sampling_settings()
        generator = self.generator_id
        if problem.is_fallback:
            stop = tuple(problem.until)
            key_settings = {**settings, "stop": sorted(stop)}
            return [
                Slot(index, None, i, candidate_key(generator, problem.own_prompt, key_settings, i),
                     problem.own_prompt, problem.own_prompt, stop)
                for i in range(self.config.n)
            ]
        check_target(self.config, problem.target_lang, problem.task)
        pool = self._pool(problem)
        slots = []
        for lang, sample_idx in plan_samples(self.config.n, pool):
            question = problem.parallel[lang]
            prompt = self._prompt(question, lang)
            stop = self._stop(lang)
            key = candidate_key(generator, prompt, {**settings, "stop": sorted(stop)}, sample_idx)
            slots.append(Slot(index, lang, sample_idx, key, prompt, question, stop))
        return slots

    def _pool(self, problem: Problem) -> list[str]:
        wanted = self.config.pool_for(problem.target_lang)
        pool = [lang for lang in wanted if lang in problem.parallel]
        if not pool:
            warn_no_pool(problem.task, tuple(wanted))
            pool = [problem.target_lang]
        elif self.config.pool == "languages" and problem.target_lang not in wanted:
            warn_target_outside_pool(problem.task, problem.target_lang, tuple(wanted))
        return pool

    def _prompt(self, question: str, lang: str) -> str:
        system = self.system_instruction.text_for(lang) if self.system_instruction else None
        if (question, lang, system) not in self._prompts:
            if system is None:
                prompt = generator_prompt(self.tokenizer, question, lang)
            else:
                prompt, how = prompt_with_system(self.tokenizer, question, lang, system)
                self.system_instruction.applied_as.add(how)
            self._prompts[question, lang, system] = prompt
        return self._prompts[question, lang, system]

    def _generation_batch_size(self, backend, order: list) -> int:
        """``batch_size``; with ``batch_size=auto`` on one GPU, the largest batch that fits its free memory for the
        longest prompt of ``order`` (``HFBackend.auto_batch_size``; the CPU, vLLM and several ranks, which must
        all form the same batches, keep ``batch_size``)."""
        sized = getattr(backend, "auto_batch_size", None)
        if not (self.config.batch_size_auto and order and sized and self.world_size == 1):
            return self.config.batch_size
        return sized(order[0].length, self.config.max_gen_toks, cap=self.config.max_batch_size) \
            or self.config.batch_size

    def _stop(self, lang: str) -> tuple[str, ...]:
        """A chat model ends its turn with EOS; a plain prompt would run on into the next question. ``until``
        from ``--gen_kwargs`` adds its strings."""
        own = () if has_chat_template(self.tokenizer) else (get_language(lang).question_prefix,)
        return tuple(dict.fromkeys((*own, *self.extra_stop)))

    # ------------------------------------------------------------------------------------------ sampling

    def _generate_missing(self, problems: list[Problem], slots: list[list[Slot]],
                          disable_tqdm: bool) -> dict[str, Candidate]:
        """Generate what the store lacks (this rank's share of what any rank lacks); return every planned
        candidate as stored, by key."""
        planned = {slot.key: slot for request_slots in slots for slot in request_slots}
        for other in self.read_stores:
            self.store.copy_from(other, planned)  # their scores: _score_missing, for every planned text
        stored = self.store.get_many(planned)
        missing = {key: slot for key, slot in planned.items() if key not in stored}
        total = sum(len(s) for s in slots)
        self.run_counts.update(planned=len(planned), reused=len(planned) - len(missing))
        logger.info(
            "bestofl: %d requests, %d planned samples, %d distinct, %d to generate (the rest are in the store)",
            len(slots), total, len({s.key for r in slots for s in r}), len(missing),
        )
        backend = self._generator() if missing else None
        lengths: dict[str, int] = {}  # per distinct prompt: its n candidates share it
        for slot in missing.values():
            if slot.prompt not in lengths:
                lengths[slot.prompt] = len(backend.tokenizer.encode(slot.prompt))
        ours = [ToGenerate(lengths[slot.prompt], slot, self._use(problems[slot.request], slot))
                for slot in missing.values()]
        work: dict[str, ToGenerate] = {}
        for item in self.group.all_gather(ours):
            work.setdefault(item.slot.key, item)  # a key several ranks miss is generated once
        self.run_counts.update(generated=len(work))
        # longest prompt first; a prompt's candidates stay together (one batch even at --batch_size 1)
        order = sorted(work.values(), key=lambda item: (-item.length, item.slot.prompt, item.slot.key))
        size = self._generation_batch_size(backend, order)
        batches = prompt_batches(order, size, key=lambda item: item.slot.prompt)
        self.run_counts["largest_batch"] = max([self.run_counts["largest_batch"], *map(len, batches)])
        # a batch costs about its rows times (longest prompt + new tokens); each rank gets whole batches, so every
        # batch is the one a single process would run
        costs = [len(batch) * (batch[0].length + self.config.max_gen_toks) for batch in batches]
        mine = [batches[i] for i in balanced_split(costs, self.world_size)[self.rank]]
        made: list[Candidate] = []
        if mine:
            backend = backend or self._generator()
            from .backends import SamplingSettings

            settings = SamplingSettings(self.config.temperature, self.config.top_p, self.config.max_gen_toks)
            with tqdm(total=sum(map(len, mine)), desc="bestofl: sampling", unit="cand", disable=disable_tqdm) as bar:
                for batch in mine:
                    texts = backend.generate(
                        [item.slot.prompt for item in batch],
                        [candidate_seed(item.slot.key) for item in batch],
                        [item.slot.stop for item in batch],
                        settings,
                    )
                    batch_made = [self._candidate(item.use, item.slot, text) for item, text in zip(batch, texts)]
                    self._keep(batch_made, stored)
                    made += batch_made
                    bar.update(len(batch))
        if self.world_size > 1:
            logger.info("bestofl: rank %d/%d generated %d of the %d candidates missing on any rank",
                        self.rank, self.world_size, len(made), len(order))
            as_stored = [stored[c.key] for c in made]
            theirs = [c for c in self.group.all_gather(as_stored) if c.key in planned and c.key not in stored]
            self._keep(theirs, stored)  # a no-op on a shared store; fills a rank's own store otherwise
        return {key: stored[key] for key in planned}

    def _keep(self, made: list[Candidate], stored: dict[str, Candidate]) -> None:
        """Store candidates and put them, as stored, into ``stored``."""
        if not made:
            return
        written = self.store.add_candidates(made)
        stored.update((c.key, c) for c in written)
        if len(written) < len(made):  # another process stored some of these keys first: theirs count
            stored.update(self.store.get_many(c.key for c in made if c.key not in stored))

    def _candidate(self, use: Use, slot: Slot, text: str) -> Candidate:
        return Candidate(
            key=slot.key,
            problem_id=use.problem_id,
            task=use.task,
            doc_id=use.doc_id,
            target_lang=use.target_lang,
            lang=slot.lang,
            sample_idx=slot.sample_idx,
            generator=self.config.pretrained,
            generator_id=self.generator_id,
            prompt_hash=prompt_hash(slot.prompt),
            settings={**self.config.sampling_settings(), "stop": list(slot.stop)},
            text=text,
            answer=extract_answer(text, slot.lang),
            gold=use.gold,
        )

    @staticmethod
    def _use(problem: Problem, slot: Slot) -> Use:
        return Use(slot.key, problem.task, problem.doc_id, problem.target_lang, problem.problem_id, problem.gold)

    def _record_uses(self, problems: list[Problem], slots: list[list[Slot]]) -> None:
        """Every (task, doc, target) that used a candidate, so reports group it under each problem it served."""
        self.store.add_uses(self._use(problems[slot.request], slot) for request_slots in slots
                            for slot in request_slots)

    def _generator(self):
        if self._backend is None:
            self._close_verifier()
            from .backends import load_backend

            self._backend = load_backend(self.config)
        return self._backend

    def _close_generator(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    # ------------------------------------------------------------------------------------------ scoring

    def _score_missing(self, slots: list[list[Slot]], candidates: dict[str, Candidate],
                       disable_tqdm: bool) -> dict[str, float | None]:
        """Score the candidates' texts the verifier has not scored; return every planned score by key (None: the
        verifier gave no usable number)."""
        verifier_id = self.verifier_id
        planned = {slot.key: slot for request_slots in slots for slot in request_slots}
        done = self.store.scores_for(verifier_id, planned)
        for other in self.read_stores:  # scores of the same texts computed elsewhere
            found = other.scores_for(verifier_id, [key for key in planned if key not in done])
            theirs = other.get_many(found)
            same = {key: score for key, score in found.items() if theirs[key].text == candidates[key].text}
            if same:
                self.store.add_scores(verifier_id, same, texts={key: candidates[key].text for key in same})
                done.update(same)
        work: dict[str, tuple[Slot, str]] = {}
        for slot, text in self.group.all_gather([(slot, candidates[key].text) for key, slot in planned.items()
                                                 if key not in done]):
            work.setdefault(slot.key, (slot, text))  # a key several ranks lack is scored once
        items = list(work.values())
        self.run_counts.update(scored=len(items), scores_reused=len(planned) - len(items))
        costs = [len(slot.question) + len(text) for slot, text in items]  # about the verifier's tokens
        mine = [items[i] for i in balanced_split(costs, self.world_size)[self.rank]]
        made: dict[str, tuple[str, float]] = {}
        if mine:
            if not self.config.keep_generator:
                self._close_generator()
            verifier = self._load_verifier()
            if hasattr(verifier, "largest_batch"):  # counted per call, like run_counts
                verifier.largest_batch = 0
            from .verifier import score_responses

            with tqdm(total=len(mine), desc="bestofl: scoring", unit="cand", disable=disable_tqdm) as bar:
                for start in range(0, len(mine), SCORE_CHUNK):
                    chunk = mine[start : start + SCORE_CHUNK]
                    scores = score_responses(
                        verifier, [(slot.question, text, slot.lang or "en") for slot, text in chunk], progress=False)
                    unusable = sum(1 for score in scores if not math.isfinite(score))
                    if unusable:
                        logger.warning("verifier %s gave %d NaN/infinite score(s); those candidates rank after every "
                                       "real score.", self.config.verifier, unusable)
                    new = {slot.key: (text, score) for (slot, text), score in zip(chunk, scores)}
                    self._keep_scores(new, candidates, done)
                    made.update(new)
                    bar.update(len(chunk))
            self.run_counts["largest_verifier_batch"] = max(self.run_counts["largest_verifier_batch"],
                                                            getattr(verifier, "largest_batch", 0))
        if self.world_size > 1:
            exchanged = self.group.all_gather([(key, text_hash(text), score) for key, (text, score) in made.items()])
            self._keep_scores({key: (candidates[key].text, score) for key, digest, score in exchanged
                               if key in planned and key not in done and candidates[key].text_hash == digest},
                              candidates, done)
        return done

    def _keep_scores(self, new: dict[str, tuple[str, float]], candidates: dict[str, Candidate],
                     done: dict[str, float | None]) -> None:
        """Store the scores (key -> (text scored, score)) of candidates this store holds with that very text, and
        put them, as stored, into ``done`` (another writer's may have won). Keys another rank planned are looked up
        in the store (on a shared store they are there)."""
        others = self.store.get_many(key for key in new if key not in candidates)
        held = [candidates.get(key) or others.get(key) for key in new]
        keep = {key: score for (key, (text, score)), c in zip(new.items(), held) if c is not None and c.text == text}
        if keep:
            self.store.add_scores(self.verifier_id, keep, texts={key: new[key][0] for key in keep})
            done.update(self.store.scores_for(self.verifier_id, keep))

    def _load_verifier(self):
        if self._verifier is None:
            from .verifier_spec import load_scorer

            self._verifier = load_scorer(self.verifier_config, self.verifier_spec)
        return self._verifier

    def _close_verifier(self) -> None:
        if self._verifier is not None:
            self._verifier.close()
            self._verifier = None

    # ------------------------------------------------------------------------------------------ selection

    def _select(self, problem: Problem, slots: list[Slot], candidates: dict[str, Candidate],
                scores: dict[str, float | None]) -> tuple[Scored | None, Scored | None, list[Scored]]:
        """The selected candidate, the target language's first sample (for the summary) and every candidate."""
        scored = self._scored(slots, candidates, scores)
        pool = list(dict.fromkeys(slot.lang for slot in slots))
        chosen = select(self.config.selection, scored, problem.target_lang, pool)
        first = next((s for s in scored if s.lang == problem.target_lang and s.sample_idx == 0), None)
        return chosen, first, scored

    @staticmethod
    def _scored(slots: list[Slot], candidates: dict[str, Candidate], scores: dict[str, float | None]) -> list[Scored]:
        """The slots' candidates as selection sees them. NaN: the verifier gave no usable number (ranks last); a
        key without a score stays None."""
        scored = []
        for slot in slots:
            score = scores.get(slot.key, MISSING)
            score = None if score is MISSING else (math.nan if score is None else score)
            scored.append(Scored(slot.key, slot.lang, slot.sample_idx, candidates[slot.key].answer, score))
        return scored

    def _answer_text(self, problem: Problem, chosen: Scored | None, candidates: dict[str, Candidate], doc) -> str:
        """The selected text plus a final answer line: for a translated problem of a known task, the first form
        its own filters parse (``lm_eval_tasks.with_answer_line``)."""
        if chosen is None:
            return ""
        text = candidates[chosen.key].text
        if chosen.answer is None or problem.final_line_lang is None:
            return text
        task = self.tasks.get(problem.task)
        if problem.source_lang is not None and task is not None:
            from .lm_eval_tasks import with_answer_line

            text, form = with_answer_line(task, doc, text, chosen.answer, problem.final_line_lang)
            self.translation_counts.answer_lines[form or "none"] += 1
            return text
        return text.rstrip() + "\n" + final_answer_line(chosen.answer, problem.final_line_lang)

    def close(self) -> None:
        """Free the generator and the verifier (the stores stay readable)."""
        self._close_generator()
        self._close_verifier()


class BestOfL(BestOfLLM):
    """``--model bestofl``: the verifier's top-scored candidate across all pool languages (Best-of-L)."""

    PRESET = "bestofl"


class MultiORM(BestOfLLM):
    """``--model multi-orm``: the verifier's top-scored candidate among target-language samples."""

    PRESET = "multi-orm"


class SelfConsistency(BestOfLLM):
    """``--model self-consistency``: majority vote over the target language's samples."""

    PRESET = "self-consistency"
