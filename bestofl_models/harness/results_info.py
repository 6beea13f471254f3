"""What a run really used, for lm-eval's results JSON and ``--log_samples`` rows.

* :func:`model_info`: the ``bestofl`` block of ``results["config"]`` (lm-eval merges ``get_model_info()`` into it
  after the evaluation): generator and verifier with their fingerprints, verifier kind and format, dtype, batch
  sizes, device, pool (and ``languages_file``), n, ``adaptive`` rule, selection, sampling settings, data source,
  candidates generated vs reused, samples used per request, translations (made, reused, refused by the number
  check, answer-line forms), version, and ``cost`` (tokens, seconds per stage, FLOPs estimate: ``cost.py``).
* :func:`sample_record`: per request, the selected candidate's language and score and every candidate
  (language, answer, score); the start-up hook (``bestofl_tasks._autoload``) adds it to the sample rows.
* :func:`ignored_options`: lm-eval options that do not reach our sampling (``--gen_kwargs`` other than
  ``max_gen_toks`` and ``until``, ``--seed``, ``--apply_chat_template``), one warning each; the results block lists
  them beside what applied (``applied_settings``, ``bestofl_models.harness.lm_eval_options``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from typing import Any, Iterable, Mapping

from ..generation.backends import device_of

logger = logging.getLogger(__name__)

#: ``simple_evaluate``'s seeds when none is given (lm-eval's ``--seed`` default ``0,1234,1234,1234``).
LM_EVAL_DEFAULT_SEEDS = {"random_seed": 0, "numpy_random_seed": 1234, "torch_random_seed": 1234,
                         "fewshot_random_seed": 1234}


def bestofl_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bestofl")
    except PackageNotFoundError:
        return None


def data_source(sources: Iterable[str]) -> dict[str, str]:
    """Per data source this run's docs came from (their ``source`` field), where ``bestofl_tasks.data`` read it:
    ``local:DIR``, ``embedded:...``, ``hub:ID@REVISION`` or ``generated:...``."""
    from bestofl_tasks.data import data_source as described

    return {source: described(source) for source in sorted(set(sources))}


def doc_source(doc) -> str:
    """A doc's data source: ours name it (``source``); lm-eval's MGSM tasks are joined to MGSM."""
    return doc.get("source", "mgsm") if isinstance(doc, Mapping) else "mgsm"


def model_info(lm) -> dict[str, Any]:
    """The ``bestofl`` block of the results JSON for the harness model ``lm`` after its run."""
    config, spec = lm.config, lm.verifier_spec
    template = getattr(lm.tokenizer, "chat_template", None)
    from bestofl_tasks.prompts import has_chat_template

    info = {
        **config.summary(),
        "bestofl_version": bestofl_version(),
        "generator_id": lm.generator_id,
        "generator_fingerprint": lm.generator_identity["fingerprint"],
        "generator_revision": config.backend_options.get("revision"),
        "dtype": config.dtype,
        "device": device_of(config),
        # applied by bestofl itself, whatever --apply_chat_template says (lm-eval's chat_template field in the
        # results only records lm-eval's own use of it)
        "prompt_format": "chat template" if has_chat_template(lm.tokenizer) else "plain prompt",
        "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest() if isinstance(template, str) else None,
        "verifier_kind": spec.kind if spec else None,
        "verifier_model": spec.model if spec else None,
        "verifier_format": spec.format if spec else None,
        "verifier_format_version": spec.format_version if spec else None,
        "verifier_format_reason": spec.reason if spec else None,
        "verifier_defaulted": config.verifier_defaulted,
        "verifier_id": lm.verifier_id,
        "verifier_fingerprint": lm.verifier_identity["fingerprint"] if spec else None,
        "batch_size": config.batch_size,
        "largest_generation_batch": lm.run_counts["largest_batch"],
        "verifier_batch_size": config.verifier_batch_size if spec else None,
        "largest_verifier_batch": lm.run_counts["largest_verifier_batch"] or None if spec else None,
        "data_source": data_source(lm.data_sources),
        "candidates": {key: lm.run_counts[key] for key in ("planned", "generated", "reused")},
        "samples_used": samples_used(lm),
        "translation": ({"translator": config.translator, "translator_id": lm.translator.id,
                         **lm.translation_counts.as_dict()} if lm.translator is not None else None),
        "scores": {key: lm.run_counts[key] for key in ("scored", "scores_reused")} if spec else None,
        "applied_settings": applied_settings(lm),
        "cost": lm.cost_all.as_dict(lm.run_counts, {"generator": lm.store.parameters(lm.generator_id),
                                                    "verifier": lm.store.parameters(lm.verifier_id) if spec else None},
                                    scored=spec is not None),
    }
    return {"bestofl": info}


def applied_settings(lm) -> dict[str, Any]:
    """The sampling settings this call used, the prompt, and what of lm-eval's options reached them."""
    config = lm.config
    applied = {**config.sampling_settings(), "prompt": "bestofl's own prompt per pool language"}
    if lm.gen_kwargs_applied:
        applied["gen_kwargs"] = lm.gen_kwargs_applied
    if lm.extra_stop:
        applied["stop_added"] = list(lm.extra_stop)
    instruction = lm.system_instruction
    if instruction is not None:
        applied["system_instruction"] = instruction.record()
        if any("task" in kinds for kinds in lm.prompts_by_task.values()):
            applied["system_instruction"]["task_prompts"] = ("where a task's own prompt was sampled, lm-eval put the "
                                                             "instruction into it")
    return applied


def samples_used(lm) -> dict[str, Any]:
    """Candidates the requests' selections used (fewer than ``n`` where ``adaptive=`` stopped early), over every
    rank, and how many of them were generated rather than reused."""
    requests, total = lm.run_counts["requests"], lm.run_counts["samples_used"]
    return {"adaptive": str(lm.config.adaptive) if lm.config.adaptive else None, "n": lm.config.n,
            "requests": requests, "total": total, "mean_per_request": total / requests if requests else None,
            "generated": lm.run_counts["generated"]}


def sample_record(chosen, scored: list) -> dict[str, Any]:
    """Fields for one request's ``--log_samples`` row: the selected candidate's language and score, and every
    candidate as ``{lang, answer, score}`` (score: None without a verifier, NaN shown as None)."""
    def score(item):
        return None if item.score is None or item.score != item.score else item.score

    return {
        "bestofl_selected_lang": chosen.lang if chosen else None,
        "bestofl_selected_score": score(chosen) if chosen else None,
        "candidates": [{"lang": s.lang, "answer": s.answer, "score": score(s)} for s in scored],
    }


def add_sample_records(results: Mapping[str, Any] | None, lm) -> None:
    """Put ``lm``'s per-request records into ``results["samples"]`` rows (matched by task and ``doc_id``)."""
    records = getattr(lm, "sample_records", None)
    if not results or not records or "samples" not in results:
        return
    for task, rows in results["samples"].items():
        for row in rows:
            row.update(records.get((task, row.get("doc_id")), {}))


def ignored_options(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``simple_evaluate`` arguments that do not reach our sampling, each warned about once."""
    ignored = {}
    from .lm_eval_options import HONOURED_GEN_KWARGS, parse_gen_kwargs

    gen_kwargs = {k: v for k, v in parse_gen_kwargs(arguments.get("gen_kwargs")).items()
                  if k not in HONOURED_GEN_KWARGS}
    if gen_kwargs:
        ignored["gen_kwargs"] = gen_kwargs
        shown = ",".join(f"{k}={v}" for k, v in gen_kwargs.items())
        if gen_kwargs.get("do_sample") is False or gen_kwargs.get("temperature") in (0, 0.0):
            _warn("--gen_kwargs %s would make every sample of a problem the same; bestofl keeps sampling with "
                  "temperature= and top_p= from --model_args (only max_gen_toks and until are honoured).", shown)
        else:
            _warn("--gen_kwargs %s: bestofl samples with its own --model_args (temperature, top_p, seed); set those "
                  "instead (only max_gen_toks and until are honoured).", shown)
    seeds = {k: arguments.get(k, v) for k, v in LM_EVAL_DEFAULT_SEEDS.items()}
    if seeds != LM_EVAL_DEFAULT_SEEDS:
        ignored["seed"] = seeds
        _warn("--seed %s seeds lm-eval's own random generators only; bestofl's samples follow seed= in "
              "--model_args (default 1234).", ",".join(str(v) for v in seeds.values()))
    if arguments.get("apply_chat_template"):
        ignored["apply_chat_template"] = arguments["apply_chat_template"]
        _warn("--apply_chat_template: bestofl renders its own prompt per pool language (through the generator's "
              "chat template when it has one) whatever this flag says.")
    return ignored


def warn_task_decoding(requests, honoured: Mapping[str, Any] = {}) -> None:  # noqa: B006 - read only
    """One warning per distinct set of task decoding settings (``generation_kwargs`` other than ``until`` and
    those ``--gen_kwargs`` set and the model honours, ``honoured``)."""
    seen = set()
    for request in requests:
        kwargs = request.args[1] if len(request.args) > 1 and isinstance(request.args[1], dict) else {}
        settings = tuple(sorted((k, repr(v)) for k, v in kwargs.items() if k != "until" and k not in honoured))
        if settings and settings not in seen:
            seen.add(settings)
            _warn("the tasks' decoding settings (%s) are not used: bestofl samples with its own --model_args "
                  "(temperature, top_p, max_gen_toks, seed; see config.bestofl.applied_settings in the results).",
                  ", ".join(f"{k}={v}" for k, v in settings))


@functools.lru_cache(maxsize=None)
def _warn(message: str, *args) -> None:
    logger.warning(message, *args)
