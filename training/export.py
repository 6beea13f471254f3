"""Stage 7: the deliverables in the output directory.

* ``OUT/adapter``: the LoRA adapter (+ trained ``score`` head, tokenizer): ``verifier=OUT/adapter`` for the
  harness models (PeftModel over ``AutoModelForSequenceClassification(base, num_labels=1)``).
* ``OUT/merged``: ``merge_and_unload`` saved as a full one-logit classifier (transformers, vLLM pooling runner);
  both folders are then loaded and scored by the harness verifier (``bestofl_models.verifiers.classifier``) on a few
  validation inputs: ``merged_max_abs_score_diff`` (probabilities) in the manifest.
* ``OUT/metrics.json`` (from evaluate) and ``OUT/README.md`` (model card: data per language, metrics, config),
  also copied into both model folders.
* ``export.push_to_hub``: uploads the adapter to ``export.hub_repo_id`` and the merged model to ``<repo>-merged``.
"""

from __future__ import annotations

import json
import shutil

import yaml

from bestofl_models.generation.model_path import normalize_model_path

from .common import Stage, logger, read_jsonl
from .config import TrainConfig
from .evaluate import verifier_config

SETTINGS = ("export",)
CHECK_ROWS = 4


def stage(out_dir, config: TrainConfig) -> Stage:
    return Stage("export", out_dir, config, settings=SETTINGS, upstream=("fit", "evaluate"))


def harness_scores(config: TrainConfig, verifier_dir, rows: list[dict]) -> list[float]:
    """What the harness verifier (``verifier=verifier_dir``) scores for ``rows``."""
    from bestofl_models.verifiers.spec import load_scorer, resolve_verifier

    settings = verifier_config(config, verifier_dir)
    verifier = load_scorer(settings, resolve_verifier(settings))
    try:
        return verifier.score_items([(r["question"], r["response"], r["lang"]) for r in rows], progress=False)
    finally:
        verifier.close()


def write_merged(config: TrainConfig, adapter_dir, merged_dir, check_rows: list[dict]) -> float | None:
    """Merge the adapter into its base and save it; then score ``check_rows`` with the harness verifier on the
    adapter and on the merged folder. Returns the largest probability difference."""
    from transformers import AutoTokenizer

    from bestofl_models.verifiers.checkpoint import load_seqcls, prepare_verifier_tokenizer

    tokenizer = prepare_verifier_tokenizer(AutoTokenizer.from_pretrained(str(adapter_dir)))
    model = load_seqcls(normalize_model_path(config.verifier_base), adapter=str(adapter_dir),
                        pad_token_id=tokenizer.pad_token_id, problem_type="multi_label_classification")
    merged = model.merge_and_unload()  # load_seqcls set pad_token_id on the base model's config
    if merged_dir.exists():
        shutil.rmtree(merged_dir)
    merged.save_pretrained(str(merged_dir))
    tokenizer.save_pretrained(str(merged_dir))
    del model, merged
    before = harness_scores(config, adapter_dir, check_rows)
    after = harness_scores(config, merged_dir, check_rows)
    return max((abs(a - b) for a, b in zip(before, after)), default=None)


def _cell(value) -> str:
    return "-" if value is None else str(value)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows])


def model_card(config: TrainConfig, out_dir, metrics: dict) -> str:
    """README.md for OUT/ and the model folders."""
    manifests = {}
    for name in ("translate", "generate", "label", "balance", "fit"):
        path = out_dir / name / "manifest.json"
        manifests[name] = json.loads(path.read_text()) if path.is_file() else {}
    label_stats = manifests["label"].get("counts", {}).get("per_language", {})
    balance_stats = manifests["balance"].get("counts", {}).get("per_language", {})
    data_rows = []
    for lang in config.languages:
        lab, bal = label_stats.get(lang, {}), balance_stats.get(lang, {})
        data_rows.append([lang, lab.get("total"), lab.get("correct"), lab.get("unparsable"),
                          bal.get("duplicates_removed"), bal.get("train", {}).get("kept"),
                          bal.get("validation", {}).get("kept")])
    metric_rows = [["all", metrics.get("auc"), metrics.get("accuracy"), metrics.get("n")]] + [
        [lang, m.get("auc"), m.get("accuracy"), m.get("n")] for lang, m in metrics.get("per_language", {}).items()
    ]
    bon = metrics.get("best_of_n", {})
    dist = metrics.get("top_language_distribution", {})
    front = {
        "library_name": "peft",
        "base_model": config.verifier_base,
        "pipeline_tag": "text-classification",
        "language": list(config.languages),
        "tags": ["bestofl", "outcome-reward-model", "verifier", "math", "multilingual", "lora"],
    }
    fit = manifests["fit"].get("counts", {})
    return f"""---
{yaml.safe_dump(front, sort_keys=False, allow_unicode=True)}---

# Best-of-L cross-lingual verifier

An outcome reward model: P(the response's final answer is correct | math question, response), for responses
in {", ".join(config.languages)}. A LoRA adapter (r={config.fit.lora_r}, alpha={config.fit.lora_alpha}) over
`{config.verifier_base}` as a one-logit sequence classifier trained with binary cross-entropy, built with
`bestofl-train` (the bestofl package) following Best-of-L (Rajaee et al., arXiv 2509.15811).
Generators: {", ".join(f"`{g}`" for g in config.generators) or "-"}; source problems: `{config.source}`
(limit {config.limit or "none"}), {config.generate.k} responses per problem per language.

## Use

```bash
lm_eval --model bestofl --model_args pretrained=GENERATOR,verifier=THIS_FOLDER,languages={":".join(config.languages)},n=8 --tasks mgsm_xling
```

`adapter/` loads as `PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(base, num_labels=1), adapter)`;
`merged/` is the same model merged into a full classifier (transformers, or vLLM `LLM(merged, runner="pooling").classify`).
Scores are `sigmoid(logit)` of `bestofl_tasks.prompts.verifier_text(tokenizer, question, response, lang)`.

## Training data

Per language: sampled responses, correct, unparsable (kept as incorrect unless `label.unparsable=drop`;
rule: `{config.label.unparsable}`), exact duplicates removed, rows kept after balancing (train / validation,
split by problem).

{_table(["lang", "responses", "correct", "unparsable", "duplicates", "train", "validation"], data_rows)}

Fit: {fit.get("train_rows", "-")} training rows, {fit.get("global_step", "-")} optimizer steps, final train loss
{fit.get("train_loss", "-")}.

## Metrics (validation problems)

{_table(["lang", "AUC", "accuracy", "rows"], metric_rows)}

AUC over all candidates of the validation problems: {metrics.get("pool_auc", "-")}.

Best-of-N over each validation problem's cross-lingual pool ({bon.get("problems", 0)} problems, mean pool
size {bon.get("mean_pool_size", "-")}): verifier top pick {bon.get("verifier", "-")}, majority vote
{bon.get("majority", "-")}, random candidate {bon.get("random", "-")}, oracle {bon.get("oracle", "-")}.

Languages of the verifier's top picks (a top share far above the correct share means language bias):

{_table(["lang", "top picks", "top share", "pool share", "correct share"],
        [[lang, d["top_count"], d["top_share"], d["pool_share"], d["correct_share"]] for lang, d in dist.items()])}

## Configuration

```yaml
{yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True).strip()}
```
"""


def push(config: TrainConfig, out_dir) -> list[str]:
    from huggingface_hub import HfApi

    api = HfApi()
    pushed = []
    targets = [(out_dir / "adapter", config.export.hub_repo_id)]
    if config.export.merged:
        targets.append((out_dir / "merged", f"{config.export.hub_repo_id}-merged"))
    for folder, repo in targets:
        api.create_repo(repo, private=config.export.hub_private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo, commit_message="bestofl-train export")
        logger.info("export: pushed %s to %s", folder, repo)
        pushed.append(repo)
    return pushed


def run(out_dir, config: TrainConfig) -> dict:
    current = stage(out_dir, config)
    current.begin()
    adapter_dir, merged_dir = out_dir / "adapter", out_dir / "merged"
    if adapter_dir.exists():
        shutil.rmtree(adapter_dir)
    shutil.copytree(out_dir / "fit" / "adapter", adapter_dir)
    metrics = json.loads((out_dir / "evaluate" / "metrics.json").read_text())
    metrics["verifier"] = str(adapter_dir)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")

    diff = None
    if config.export.merged:
        check_rows = read_jsonl(out_dir / "balance" / "validation.jsonl")[:CHECK_ROWS] or read_jsonl(
            out_dir / "balance" / "train.jsonl")[:CHECK_ROWS]
        diff = write_merged(config, adapter_dir, merged_dir, check_rows)
        logger.info("export: merged classifier in %s (max |score difference| vs adapter: %s)", merged_dir, diff)
    card = model_card(config, out_dir, metrics)
    for folder in (out_dir, adapter_dir, merged_dir if config.export.merged else None):
        if folder is not None:
            (folder / "README.md").write_text(card, encoding="utf-8")
    pushed = push(config, out_dir) if config.export.push_to_hub else []
    return current.finish({"merged": config.export.merged, "pushed": pushed},
                          merged_max_abs_score_diff=diff, adapter=str(adapter_dir),
                          merged_dir=str(merged_dir) if config.export.merged else None)
