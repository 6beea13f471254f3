"""The lm-eval models: ``bestofl`` (Best-of-L), ``multi-orm`` and ``self-consistency``.

They are registered lazily by the start-up hook (``bestofl_tasks._autoload``), so this module needs no
``@register_model``: ``lm_eval --model bestofl``, ``simple_evaluate(model="bestofl")`` and
``get_model("bestofl")`` resolve to the classes below.

``generate_until`` receives every request of every task at once, turns each into a problem, plans ``n``
samples over the pool, generates only what the store lacks, scores with the verifier if the selection needs one,
and returns the selected candidate plus the target language's final answer line. The steps, and what is ignored
from the task (its ``ctx``, sampling settings, ``--apply_chat_template``), are in docs/MODELS.md.

Under ``accelerate launch`` every rank plans its own requests, then the ranks gather what is missing, drop
duplicates, and each generates (and scores) the share :func:`~bestofl_models.generation.distributed.balanced_split` gives it;
the ranks then exchange what they made, so each selects from exactly what a single process would have had.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from typing import Any

from lm_eval.api.model import LM
from lm_eval.utils import simple_parse_args_string

from ..errors import LmEvalOptionError, ModelArgsError
from ..generation.distributed import ProcessGroup
from ..store import Candidate, CandidateStore
from .adaptive_run import draw_in_rounds, rounds_of
from .answer import answer_text
from .choose import choose, scored
from .generate import generate_missing, record_uses
from .lm_eval_options import SystemInstruction, honoured_gen_kwargs
from .lookup import stored_candidates, stored_scores
from .config import BestOfLConfig
from .cost import CostLedger, loaded_parameters
from .model_args import parse_model_args
from .plan import Planner, Slot, planned_by_key
from .problems import Problem, has_fewshot_examples, problem_from_instance
from .run import Run
from .run_log import RunSummary, show_logs_like_lm_eval, warn_fewshot_ignored, warn_pool_file_mismatch, warn_repeats
from .score import score_missing

logger = logging.getLogger(__name__)

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
        from ..generation.backends import load_tokenizer
        from ..store.identity import generator_identity, identity_id, verifier_identity

        self.tokenizer = load_tokenizer(self.config)
        self.verifier_id = self.verifier_spec = self.verifier_config = None
        if self.config.needs_verifier:  # a missing or wrong-shaped verifier fails now, not after sampling
            from ..verifiers.spec import log_choice, resolve_verifier

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
        from ..generation.translation import load_translator

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
        from ..generation.translation import TranslationCounts

        self.run_counts: collections.Counter = collections.Counter(largest_batch=0, requests=0, samples_used=0)
        self.data_sources: set[str] = set()
        self.sample_records: dict[tuple[str, int], dict] = {}
        self.translation_counts = TranslationCounts()
        self.prompts_by_task: dict[str, set[str]] = collections.defaultdict(set)
        self.cost = CostLedger()  # this rank's
        self.cost_all = CostLedger()  # every rank's, after each generate_until

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
        """The pipeline, one stage per module: problems -> plan -> look up -> generate -> score -> select ->
        answer (with ``adaptive=``, look up to score run in rounds)."""
        if not requests and self.world_size == 1:  # a rank with no requests still takes part in the exchanges
            return []
        run = self._run(progress=not disable_tqdm and self.rank == 0)
        problems = self._problems(requests)
        planner = Planner(self.config, self.generator_id, self.tokenizer, self.system_instruction, self.extra_stop,
                          self._prompts)
        slots = [planner.plan(i, problem) for i, problem in enumerate(problems)]
        candidates: dict[str, Candidate] = {}
        scores: dict[str, float | None] = {}

        def draw(batch: list[list[Slot]], score: bool) -> None:
            """Look up, generate (and score) the slots of ``batch``, and record who used them."""
            planned = planned_by_key(batch)
            with run.cost.timed("sampling"):
                candidates.update(generate_missing(run, problems, batch, planned, stored_candidates(run, planned)))
                record_uses(run, problems, batch)
            if score:
                with run.cost.timed("scoring"):
                    scores.update(score_missing(run, planned, candidates, stored_scores(run, planned, candidates)))

        rule = self.config.adaptive
        if rule is None:
            draw(slots, self.config.needs_verifier)
        else:  # rounds; the verifier scores each round only if the rule reads scores, else once at the end
            slots = draw_in_rounds(rule, [rounds_of(request_slots) for request_slots in slots],
                                   lambda batch: draw(batch, rule.needs_verifier),
                                   lambda drawn: scored(drawn, candidates, scores), self.group)
            if self.config.needs_verifier and not rule.needs_verifier:
                planned = planned_by_key(slots)
                with run.cost.timed("scoring"):
                    scores.update(score_missing(run, planned, candidates, stored_scores(run, planned, candidates)))
        for requests_done, samples in self.group.all_gather([(len(slots), sum(map(len, slots)))]):
            self.run_counts.update(requests=requests_done, samples_used=samples)
        with self.cost.timed("selection"):
            answers = self._answers(requests, problems, slots, candidates, scores)
        self._count_used(slots, candidates)
        return answers

    def _count_used(self, slots: list[list[Slot]], candidates: dict[str, Candidate]) -> None:
        """The cost of the candidates the answers used, then every rank's ledger added up."""
        answers = [[(slot.lang, candidates[slot.key]) for slot in request_slots] for request_slots in slots]
        keys = {c.key for used in answers for _, c in used}
        tokens = self.store.score_tokens(self.verifier_id, keys) if self.config.needs_verifier else None
        self.cost.add_used(answers, tokens)
        self.cost_all = CostLedger().merged(self.group.all_gather([self.cost]))

    def _run(self, progress: bool) -> Run:
        return Run(self.config, self.store, self.read_stores, self.group, self.rank, self.world_size,
                   self.generator_id, self.verifier_id, self.run_counts, self._generator, self._load_verifier,
                   self._close_generator, self.cost, progress)

    def _problems(self, requests) -> list[Problem]:
        """Stage *problems*: each request's problem (``problems.py``), its question translated into the pool
        when the task has no parallel versions (``translation.py``)."""
        from .results_info import doc_source, warn_task_decoding

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
            from ..generation.translation import translate_problems

            with self.cost.timed("translation"):
                problems = translate_problems(problems, self.config.languages, self.translator, self.store,
                                              self.read_stores, self.config.batch_size, self.translation_counts)
        for request, problem in zip(requests, problems):
            if has_fewshot_examples(request.args[0], problem, self.tasks.get(problem.task)):
                warn_fewshot_ignored(problem.task)
        return problems

    def _answers(self, requests, problems: list[Problem], slots: list[list[Slot]],
                 candidates: dict[str, Candidate], scores: dict[str, float | None]) -> list[str]:
        """Stages *select* and *answer* for every request; the run summary and ``--log_samples``'s records."""
        from .results_info import sample_record

        outputs, report, records = [], RunSummary(), {}
        for request, problem, request_slots in zip(requests, problems, slots):
            chosen, first, every = choose(self.config.selection, problem, request_slots, candidates, scores)
            outputs.append(answer_text(problem, chosen, candidates, request.doc, self.tasks.get(problem.task),
                                       self.translation_counts.answer_lines))
            report.add(problem, chosen, first, len(request_slots))
            records[problem.task, problem.doc_id] = sample_record(chosen, every)
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

    # ------------------------------------------------------------------------------------------ models

    def _generator(self):
        if self._backend is None:
            self._close_verifier()
            from ..generation.backends import load_backend

            self._backend = load_backend(self.config)
            self._record_parameters(self.generator_id, self._backend, self.config.pretrained)
        return self._backend

    def _record_parameters(self, model_id: str | None, loaded, folder: str | None) -> None:
        """Keep a just-loaded model's parameter count in the store (the cost's ``flops_estimate``)."""
        count = loaded_parameters(loaded, folder)
        if model_id is not None and count is not None and count != self.store.parameters(model_id):
            self.store.record_parameters(model_id, count)

    def _close_generator(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def _load_verifier(self):
        if self._verifier is None:
            from ..verifiers.spec import load_scorer

            self._verifier = load_scorer(self.verifier_config, self.verifier_spec)
            self._record_parameters(self.verifier_id, self._verifier, getattr(self._verifier, "name", None))
        return self._verifier

    def _close_verifier(self) -> None:
        if self._verifier is not None:
            self._verifier.close()
            self._verifier = None

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
