"""The harness runs behind ``bestofl_overhead``, ``all_tasks_vs_one`` and the per-candidate generation time.

Three competitors, run round-robin in one process, each from scratch; ``one_task`` runs right next to each of
the other two in every round (who goes first alternates), and the ratios are medians of per-round ratios:

* ``one_task``: ``lm_eval.simple_evaluate(model="bestofl", tasks=[mgsm_xling_de], limit=P)`` with a fresh store
  (loads the generator, samples, frees it, loads the verifier, scores, selects, computes the metric);
* ``bare``: the same work without lm-eval or bestofl: load the generator backend, generate exactly the prompts the
  harness generated (same texts, seeds, stop strings, length order and batch size), free it, load the verifier,
  score the same candidates with ``score_responses``;
* ``all_tasks``: the group ``mgsm_xling`` (all 11 languages, limit P each) with the same fixed pool and a fresh
  store: the candidates are shared across target languages, so the 10 extra tasks add only selection.

lm-eval's ``TaskManager`` (its index of ~10k task YAMLs, identical for every ``--model``) is built once before the
timing and passed to every run; its build time is reported. The generator is SmolLM2-135M-Instruct when its
folder can be built (``bestofl_models.testing.smollm2_hf``), else the tiny random generator with a large
``max_gen_toks``; the verifier is the tiny LoRA adapter. One warm-up round (short generations) goes first so
imports and file caches do not land on one side.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from .common import Context, interleaved, median

POOL = ("en", "de", "fr", "zh")
TASK = "mgsm_xling_de"
GROUP = "mgsm_xling"


def pick_models(ctx: Context) -> dict:
    from bestofl_models import testing

    verifier = str(testing.tiny_verifier_adapter())
    if ctx.scale != "tiny":
        try:
            return {"generator": str(testing.smollm2_hf()), "verifier": verifier,
                    "label": "SmolLM2-135M-Instruct", "max_gen_toks": ctx.pick(None, 96, 160)}
        except (ImportError, FileNotFoundError, RuntimeError) as exc:
            ctx.log(f"[harness] SmolLM2 unavailable ({exc}); using the tiny generator")
    return {"generator": str(testing.tiny_generator()), "verifier": verifier,
            "label": "tiny random Llama (2 layers)", "max_gen_toks": ctx.pick(48, 512, 1024)}


def model_args(models: dict, store: Path, max_gen_toks: int, problems: int) -> dict:
    return {
        "pretrained": models["generator"], "verifier": models["verifier"], "languages": ":".join(POOL),
        "n": len(POOL), "temperature": 0.7, "max_gen_toks": max_gen_toks, "seed": 1234, "store": str(store),
        # One generation batch and one scoring pass for all candidates, on both sides.
        "batch_size": problems * len(POOL), "verifier_batch_size": 16,
    }


def planned(config, problems: int) -> list[dict]:
    """The harness's slots for the first ``problems`` MGSM problems of ``TASK``: prompt, stop, key, seed.

    Built with the same public functions the harness uses; checked against the store after the run."""
    from bestofl_models.generation.backends import load_tokenizer
    from bestofl_models.harness.generate import candidate_seed
    from bestofl_models.store.identity import generator_identity, identity_id
    from bestofl_models.selection.pool import plan_samples
    from bestofl_models.store import candidate_key
    from bestofl_tasks.data import load_docs
    from bestofl_tasks.languages import get_language
    from bestofl_tasks.prompts import generator_prompt, has_chat_template

    tokenizer = load_tokenizer(config)
    generator = identity_id(generator_identity(config), "generator")  # the harness keys candidates by it
    slots = []
    for doc in load_docs("mgsm", TASK.rsplit("_", 1)[-1])[:problems]:
        for lang, sample_idx in plan_samples(config.n, list(POOL)):
            question = doc["parallel"][lang]
            prompt = generator_prompt(tokenizer, question, lang)
            stop = () if has_chat_template(tokenizer) else (get_language(lang).question_prefix,)
            key = candidate_key(generator, prompt, {**config.sampling_settings(), "stop": sorted(stop)},
                                sample_idx)
            slots.append({"key": key, "prompt": prompt, "stop": stop, "question": question, "lang": lang,
                          "seed": candidate_seed(key), "length": len(tokenizer.encode(prompt))})
    slots.sort(key=lambda s: (-s["length"], s["key"]))
    return slots


def bare_run(config, slots: list[dict], timings: dict) -> list[str]:
    """Generate the slots with the bare backend, then score them with the verifier; returns the texts."""
    from bestofl_models.generation.backends import SamplingSettings, load_backend
    from bestofl_models.verifiers.classifier import load_verifier, score_responses

    settings = SamplingSettings(config.temperature, config.top_p, config.max_gen_toks)
    backend = load_backend(config)
    start = time.perf_counter()
    texts = []
    for i in range(0, len(slots), config.batch_size):
        batch = slots[i : i + config.batch_size]
        texts += [g.text for g in backend.generate([s["prompt"] for s in batch], [s["seed"] for s in batch],
                                                   [s["stop"] for s in batch], settings)]
    timings.setdefault("generate", []).append(time.perf_counter() - start)
    backend.close()
    verifier = load_verifier(config.verifier_config())
    start = time.perf_counter()
    score_responses(verifier, [(s["question"], t, s["lang"]) for s, t in zip(slots, texts)], progress=False)
    timings.setdefault("score", []).append(time.perf_counter() - start)
    verifier.close()
    return texts


def measure(ctx: Context) -> dict:
    """Run the three competitors (once per process; cached in ``ctx.shared``)."""
    if "harness_runs" in ctx.shared:
        return ctx.shared["harness_runs"]
    import lm_eval
    from lm_eval.tasks import TaskManager

    from bestofl_models.harness.model_args import parse_model_args

    models = pick_models(ctx)
    problems = ctx.pick(1, 2, 4)
    rounds = ctx.pick(1, 5, 7)
    max_gen_toks = models["max_gen_toks"]
    workdir = Path(ctx.workdir)
    start = time.perf_counter()
    task_manager = TaskManager()
    task_manager_s = time.perf_counter() - start
    counter = {"n": 0}

    def fresh_store() -> Path:
        counter["n"] += 1
        path = workdir / f"store-{counter['n']}"
        shutil.rmtree(path, ignore_errors=True)
        return path

    last_store = {}

    def evaluate(tasks: list[str], tokens: int, name: str):
        def go():
            store = fresh_store()
            last_store[name] = store
            results = lm_eval.simple_evaluate(
                model="bestofl", model_args=model_args(models, store, tokens, problems), tasks=tasks,
                limit=problems, task_manager=task_manager, bootstrap_iters=0, log_samples=False,
            )
            assert results is not None and all(t in results["results"] for t in tasks), "missing results"
        return go

    bare_timings: dict = {}
    bare_texts = {}

    def bare(tokens: int):
        config = parse_model_args(model_args(models, workdir / "unused", tokens, problems), "bestofl")
        slots = planned(config, problems)

        def go():
            bare_texts["slots"], bare_texts["texts"] = slots, bare_run(config, slots, bare_timings)
        return go

    ctx.log(f"[harness] warm-up ({models['label']})")
    warm = min(8, max_gen_toks)
    interleaved({"one_task": evaluate([TASK], warm, "warm"), "bare": bare(warm)}, 1)
    bare_timings.clear()
    ctx.log(f"[harness] {rounds} round(s): one task, bare backend + verifier, all 11 tasks; "
            f"{problems} problem(s) x {len(POOL)} candidates, max_gen_toks={max_gen_toks}")
    cpu: dict = {}
    # one_task sits next to both of its partners in every round; who goes first alternates.
    orders = [["bare", "one_task", "all_tasks"], ["all_tasks", "one_task", "bare"]]
    times = interleaved(
        {"one_task": evaluate([TASK], max_gen_toks, "one_task"), "bare": bare(max_gen_toks),
         "all_tasks": evaluate([GROUP], max_gen_toks, "all_tasks")},
        rounds, cpu=cpu, orders=orders,
    )

    # The bare side really did the harness's work: same prompts (by hash), same number of candidates.
    from bestofl_models.store import CandidateStore

    stored = {c.key: c for c in CandidateStore(last_store["one_task"], read_only=True).candidates()}
    slots = bare_texts["slots"]
    hashes = {hashlib.sha256(s["prompt"].encode()).hexdigest() for s in slots}
    if len(stored) != len(slots) or {c.prompt_hash for c in stored.values()} != hashes:
        raise AssertionError(
            f"the bare run did not generate the harness's prompts ({len(stored)} stored, {len(slots)} planned)"
        )
    same_text = sum(stored[s["key"]].text == t for s, t in zip(slots, bare_texts["texts"]) if s["key"] in stored)
    if same_text != len(slots):  # same keys, so same seeds: the bare side must sample the harness's very texts
        raise AssertionError(f"the bare run sampled {same_text} of the harness's {len(slots)} texts "
                             "(keys or seeds differ)")
    all_tasks_candidates = len(CandidateStore(last_store["all_tasks"], read_only=True))

    result = {
        "models": models, "problems": problems, "candidates": len(slots), "rounds": rounds,
        "max_gen_toks": max_gen_toks, "times": times, "cpu": cpu, "bare_timings": bare_timings,
        "task_manager_s": task_manager_s, "same_text": same_text, "all_tasks_candidates": all_tasks_candidates,
        "generation_s_per_candidate": median(bare_timings["generate"]) / len(slots),
    }
    ctx.shared["harness_runs"] = result
    ctx.shared["generation_seconds_per_candidate"] = result["generation_s_per_candidate"]
    ctx.shared["generator_label"] = models["label"]
    ctx.log("[harness] " + json.dumps({k: v for k, v in result.items() if k != "models"}, default=str))
    return result
