"""Stage 2: ``generate.k`` responses per problem per language from each generator, through the harness models.

For every language the translated problems become one lm-eval task built from the ``gsm8k_xling_train``
task template (same prompt, filter and metric; docs carry ``problem_id``, ``lang``, ``parallel``), and
``lm_eval.simple_evaluate`` runs the harness model ``self-consistency`` (``n=k`` samples in the task's
language; no verifier needed) over all of them with ``store=OUT/generate/store``. So sampling uses the
harness's prompt builder, sampler, seeds and candidate store, not a copy: a killed run resumes from the
store and a rerun generates nothing twice.

The candidates are then read back from the harness model's own store (matched by generator, sampling
settings and the prompt the harness rendered for each question) into ``candidates.jsonl``: ``key``, ``problem_id``, ``lang``,
``sample_idx``, ``generator``, ``question``, ``response``, ``gold``. The manifest also records each
generator's self-consistency accuracy per language (lm-eval's ``exact_match``), for free.
"""

from __future__ import annotations

import importlib
from collections import Counter, defaultdict
from pathlib import Path

import yaml

from .common import Stage, StageError, logger, read_jsonl, write_jsonl
from .config import TrainConfig, harness_model_args

SETTINGS = ("generator", "languages", "source", "generate", "seed")
TEMPLATE = Path("gsm8k_xling_train") / "_template_yaml"


def stage(out_dir, config: TrainConfig) -> Stage:
    return Stage("generate", out_dir, config, settings=SETTINGS, upstream=("translate",))


class _TaskYamlLoader(yaml.SafeLoader):
    """Reads lm-eval task YAMLs: ``!function module.name`` becomes the imported object."""


def _function(loader: yaml.SafeLoader, node: yaml.Node):
    module, _, name = loader.construct_scalar(node).rpartition(".")
    return getattr(importlib.import_module(module), name)


_TaskYamlLoader.add_constructor("!function", _function)


def docs_by_language(out_dir: Path, config: TrainConfig) -> dict[str, list[dict]]:
    """Parallel docs (the task pack's doc format) per language from the translate stage's questions."""
    questions: dict[str, dict[str, str]] = defaultdict(dict)
    gold: dict[str, str] = {}
    for row in read_jsonl(out_dir / "translate" / "questions.jsonl"):
        questions[row["problem_id"]][row["lang"]] = row["question"]
        gold[row["problem_id"]] = row["answer"]
    docs = {}
    for lang in config.languages:
        docs[lang] = [
            {"problem_id": pid, "lang": lang, "question": versions[lang], "answer": gold[pid],
             "parallel": {code: versions.get(code) for code in config.languages}, "source": config.source}
            for pid, versions in sorted(questions.items()) if lang in versions
        ]
    return docs


def build_task(config: TrainConfig, lang: str, docs: list[dict]):
    """An lm-eval task over ``docs``: the ``gsm8k_xling_train`` template with our docs as its dataset.

    Its ``generation_kwargs`` only document the settings: the harness model samples with its own.
    """
    import datasets
    from lm_eval.api.task import ConfigurableTask

    from bestofl_tasks import task_yamls_dir

    template = yaml.load((Path(task_yamls_dir()) / TEMPLATE).read_text(encoding="utf-8"), Loader=_TaskYamlLoader)

    def load_docs(**_metadata):
        return datasets.DatasetDict({template["test_split"]: datasets.Dataset.from_list(docs)})

    gen = config.generate
    generation = {"until": [], "do_sample": True, "temperature": gen.temperature, "top_p": gen.top_p,
                  "max_gen_toks": gen.max_gen_toks}
    return ConfigurableTask(config={**template, "task": f"bestofl_train_{lang}", "custom_dataset": load_docs,
                                    "dataset_kwargs": {}, "generation_kwargs": generation})


def sample(config: TrainConfig, generator: str, docs: dict[str, list[dict]],
           store_dir: Path) -> tuple[dict[str, float], list[dict]]:
    """Run the harness over every language's task; returns lm-eval's exact_match per language and the
    candidates read back from the model's store (before it is closed)."""
    import lm_eval

    from bestofl_models.harness.model import SelfConsistency

    tasks = [build_task(config, lang, lang_docs) for lang, lang_docs in docs.items() if lang_docs]
    model = SelfConsistency.create_from_arg_obj(harness_model_args(config, generator, store_dir))
    try:
        results = lm_eval.simple_evaluate(model=model, tasks=tasks, bootstrap_iters=0, log_samples=False)
        rows = read_back(config, generator, docs, model)
    finally:
        model.close()
    accuracy = {}
    for task, values in (results or {}).get("results", {}).items():
        metric = next((v for k, v in values.items() if k.startswith("exact_match,")), None)
        accuracy[task.removeprefix("bestofl_train_")] = round(metric, 4) if metric is not None else None
    return accuracy, rows


def read_back(config: TrainConfig, generator: str, docs: dict[str, list[dict]], model) -> list[dict]:
    """The k candidates per (problem, language) that the harness ``model`` made for our prompts, from its store
    (already in memory: the store is not read again) and rendered with its tokenizer."""
    from bestofl_models.store import prompt_hash
    from bestofl_tasks.prompts import generator_prompt

    model_config = model.config
    wanted = model_config.sampling_settings()
    # (prompt hash, lang) -> docs: two problems with the same question text share their candidates.
    expected: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for lang, lang_docs in docs.items():
        for doc in lang_docs:
            expected[prompt_hash(generator_prompt(model.tokenizer, doc["question"], lang)), lang].append(doc)
    rows = []
    for candidate in model.store.candidates():
        if (
            candidate.generator_id != model.generator_id
            or candidate.sample_idx >= config.generate.k
            or any(candidate.settings.get(name) != value for name, value in wanted.items())
        ):
            continue
        for doc in expected.get((candidate.prompt_hash, candidate.lang), ()):
            rows.append({"key": candidate.key, "problem_id": doc["problem_id"], "lang": candidate.lang,
                         "sample_idx": candidate.sample_idx, "generator": generator, "question": doc["question"],
                         "response": candidate.text, "gold": doc["answer"]})
    return rows


def run(out_dir, config: TrainConfig) -> dict:
    current = stage(out_dir, config)
    current.begin()
    store_dir = current.path("store")
    docs = docs_by_language(out_dir, config)
    per_generator = len([d for lang_docs in docs.values() for d in lang_docs]) * config.generate.k
    rows, accuracy = [], {}
    for generator in config.generators:
        logger.info("generate: %s: %d candidates (%d per problem per language) into %s",
                    generator, per_generator, config.generate.k, store_dir)
        accuracy[generator], found = sample(config, generator, docs, store_dir)
        if len(found) != per_generator:
            raise StageError(f"generate: the store {store_dir} holds {len(found)} of the {per_generator} expected "
                             f"candidates of {generator}; rerun the stage to fill the gap")
        rows.extend(found)
    rows.sort(key=lambda r: (r["problem_id"], r["lang"], r["generator"], r["sample_idx"]))
    write_jsonl(current.path("candidates.jsonl"), rows)
    per_language = Counter(r["lang"] for r in rows)
    return current.finish({"candidates": len(rows), "problems": len({r["problem_id"] for r in rows}),
                           "per_language": dict(per_language)},
                          self_consistency_accuracy=accuracy, store=str(store_dir))
