"""Stage 5: train the verifier: one-logit sequence classifier + LoRA, binary cross-entropy, transformers Trainer.

* Model: ``AutoModelForSequenceClassification(verifier_base, num_labels=1,
  problem_type="multi_label_classification")``, so transformers' loss is ``BCEWithLogitsLoss`` on float
  labels shaped ``[batch, 1]`` (with ``problem_type`` unset a single label would mean MSE regression).
  Tokenizer and model are set up by the harness verifier's own ``prepare_verifier_tokenizer`` and
  ``load_seqcls`` (``bestofl_models.verifiers.classifier``): pad token (the EOS token when there is none), right padding,
  ``pad_token_id`` on the model, so batches pool on the last real token as at inference.
* PEFT LoRA (``task_type=SEQ_CLS``: the new ``score`` head is trained in full and saved with the adapter).
* Inputs: ``bestofl_tasks.prompts.verifier_text`` with the verifier base's tokenizer, special tokens as the
  harness verifier adds them. Inputs are never cut (see :func:`encode`): rows longer than ``fit.max_length``
  tokens are left out of training and counted in the manifest.
* ``Trainer`` with bf16 (auto), optional gradient checkpointing, length-grouped sampling and DeepSpeed, so
  ``accelerate launch`` scales it. Checkpoints every ``fit.save_steps``; a rerun resumes from the last one.

Output: ``adapter/`` (LoRA adapter + tokenizer), ``checkpoints/``, ``log_history.jsonl``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from bestofl_models.generation.model_path import normalize_model_path

from .common import Stage, StageError, logger, read_jsonl, write_jsonl
from .config import TrainConfig

SETTINGS = ("verifier_base", "fit", "seed")


def stage(out_dir, config: TrainConfig) -> Stage:
    return Stage("fit", out_dir, config, settings=SETTINGS, upstream=("balance",))


def encode(tokenizer, rows: list[dict], max_length: int):
    """``datasets.Dataset`` (input_ids, attention_mask, labels as ``[float]``) of the rows that fit in
    ``max_length`` tokens, and the rows left out because they are longer.

    Length rule (the same in training and at inference): a verifier input is never truncated. The harness
    verifier (``bestofl_models.verifiers.classifier``, transformers and vLLM alike) scores the whole ``verifier_text``,
    so training uses only whole texts too: a longer row is dropped, not cut. Every training input is then
    exactly an input the verifier sees at inference (BOS, chat template, question, response, final answer).
    """
    import datasets

    from bestofl_models.generation.backends import add_special_tokens
    from bestofl_tasks.prompts import verifier_text

    texts = [verifier_text(tokenizer, r["question"], r["response"], r["lang"]) for r in rows]
    full = tokenizer(texts, add_special_tokens=add_special_tokens(tokenizer)) if texts else {
        "input_ids": [], "attention_mask": []}
    keep = [i for i, ids in enumerate(full["input_ids"]) if len(ids) <= max_length]
    kept = set(keep)
    data = {
        "input_ids": [full["input_ids"][i] for i in keep],
        "attention_mask": [full["attention_mask"][i] for i in keep],
        "labels": [[float(rows[i]["label"])] for i in keep],
    }
    return datasets.Dataset.from_dict(data), [row for i, row in enumerate(rows) if i not in kept]


def build_model(config: TrainConfig, tokenizer):
    from peft import LoraConfig, TaskType, get_peft_model

    from bestofl_models.verifiers.checkpoint import load_seqcls

    fit = config.fit
    model = load_seqcls(normalize_model_path(config.verifier_base), dtype=fit.model_dtype, pad_token_id=tokenizer.pad_token_id,
                        new_head=True, problem_type="multi_label_classification")
    targets = fit.lora_target_modules
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=fit.lora_r,
        lora_alpha=fit.lora_alpha,
        lora_dropout=fit.lora_dropout,
        target_modules=targets[0] if targets == ["all-linear"] else targets,
    )
    model = get_peft_model(model, lora)
    trainable, total = model.get_nb_trainable_parameters()
    logger.info("fit: %s + LoRA r=%d alpha=%d on %s: %.2fM of %.1fM parameters trainable",
                config.verifier_base, fit.lora_r, fit.lora_alpha, ",".join(targets), trainable / 1e6, total / 1e6)
    return model


def training_arguments(config: TrainConfig, checkpoint_dir: Path, has_validation: bool):
    """``config.fit`` with what the stage sets: the checkpoint folder, the top-level seed, our labels column, no
    evaluation without validation rows, non-reentrant checkpointing."""
    import torch

    fit = config.fit
    checkpointing = "activation_checkpointing" if hasattr(fit, "activation_checkpointing") else "gradient_checkpointing"
    on = getattr(fit, checkpointing)
    return dataclasses.replace(
        fit, output_dir=str(checkpoint_dir), seed=config.seed, data_seed=config.seed, label_names=["labels"],
        remove_unused_columns=False, dataloader_pin_memory=torch.cuda.is_available(),
        **({} if has_validation else {"eval_strategy": "no", "eval_steps": None}),
        **{f"{checkpointing}_kwargs": getattr(fit, f"{checkpointing}_kwargs") or ({"use_reentrant": False} if on else None)},
    )


def _guard_checkpoints(current: Stage, checkpoint_dir: Path) -> None:
    """Refuse to resume checkpoints made with other settings or data."""
    marker = current.path("run.json")
    if checkpoint_dir.is_dir() and any(checkpoint_dir.glob("checkpoint-*")) and marker.is_file():
        previous = json.loads(marker.read_text()).get("fingerprint")
        if previous != current.fingerprint:
            raise StageError(
                f"{checkpoint_dir} holds checkpoints of a fit with other settings or data. Delete "
                f"{current.dir} to start over, or use another --output-dir."
            )
    marker.write_text(json.dumps({"fingerprint": current.fingerprint}) + "\n")


def last_complete_checkpoint(checkpoint_dir: Path, delete_incomplete: bool = True) -> Path | None:
    """The newest ``checkpoint-N`` whose ``trainer_state.json`` (written last) is complete.

    Newer, incomplete ones (the run was killed while saving) are skipped and, on the main process, deleted.
    """
    found = sorted(checkpoint_dir.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[-1]), reverse=True)
    for path in found:
        try:
            json.loads((path / "trainer_state.json").read_text())
        except (OSError, ValueError):
            logger.warning("fit: %s is incomplete (killed while saving); skipping it", path)
            if delete_incomplete:
                shutil.rmtree(path, ignore_errors=True)
            continue
        return path
    return None


def run(out_dir, config: TrainConfig) -> dict:
    from transformers import (
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        set_seed,
    )

    from bestofl_models.verifiers.checkpoint import prepare_verifier_tokenizer

    current = stage(out_dir, config)
    current.begin()
    checkpoint_dir = current.path("checkpoints")
    _guard_checkpoints(current, checkpoint_dir)

    train_rows = read_jsonl(out_dir / "balance" / "train.jsonl")
    validation_rows = read_jsonl(out_dir / "balance" / "validation.jsonl")
    if not train_rows:
        raise StageError(
            "balance produced no training rows (see balance/manifest.json): the generator answered no problem "
            "correctly (or all correctly) in every language. Raise limit or generate.k, use a stronger generator, "
            "or --set balance.enabled=false to train on the unbalanced data."
        )
    set_seed(config.seed)
    tokenizer = prepare_verifier_tokenizer(AutoTokenizer.from_pretrained(normalize_model_path(config.verifier_base)))
    max_length = config.fit.max_length
    train_data, too_long = encode(tokenizer, train_rows, max_length)
    validation_data, too_long_validation = encode(tokenizer, validation_rows, max_length)
    if too_long or too_long_validation:
        logger.warning("fit: %d of %d training rows (%d correct) and %d of %d validation rows are longer than "
                       "fit.max_length=%d tokens and are left out (inputs are never cut: the harness verifier "
                       "scores whole texts)", len(too_long), len(train_rows), sum(r["label"] for r in too_long),
                       len(too_long_validation), len(validation_rows), max_length)
    if not len(train_data):
        raise StageError(f"fit: every training row is longer than fit.max_length={max_length} tokens; "
                         "raise fit.max_length (or lower generate.max_gen_toks)")
    if not len(validation_data):
        validation_data = None
    model = build_model(config, tokenizer)

    class StepCounter(TrainerCallback):
        steps = 0

        def on_step_end(self, args, state, control, **kwargs):
            StepCounter.steps += 1

    trainer = Trainer(
        model=model,
        args=training_arguments(config, checkpoint_dir, validation_data is not None),
        train_dataset=train_data,
        eval_dataset=validation_data,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        callbacks=[StepCounter()],
    )
    last = last_complete_checkpoint(checkpoint_dir, delete_incomplete=trainer.is_world_process_zero())
    last = str(last) if last else None
    resumed_step = int(last.rsplit("-", 1)[-1]) if last else 0
    if last:
        logger.info("fit: resuming from %s (step %d)", last, resumed_step)
    result = trainer.train(resume_from_checkpoint=last)

    adapter_dir = current.path("adapter")
    if trainer.is_world_process_zero() and adapter_dir.exists():
        shutil.rmtree(adapter_dir)
    trainer.save_model(str(adapter_dir))  # every rank (DeepSpeed gathers); writes on the main one: adapter + tokenizer
    if not trainer.is_world_process_zero():
        return {}
    (adapter_dir / "training_args.bin").unlink(missing_ok=True)  # a pickle; the settings are in the manifest
    write_jsonl(current.path("log_history.jsonl"), trainer.state.log_history)
    counts = {
        "train_rows": len(train_rows),
        "validation_rows": len(validation_rows),
        "over_length_train_rows": len(too_long),
        "over_length_train_correct": sum(r["label"] for r in too_long),
        "over_length_validation_rows": len(too_long_validation),
        "global_step": trainer.state.global_step,
        "steps_this_run": StepCounter.steps,
        "resumed_from_step": resumed_step,
        "train_loss": round(result.training_loss, 5),
    }
    return current.finish(counts, adapter=str(adapter_dir), world_size=int(os.environ.get("WORLD_SIZE", "1")),
                          bf16=config.fit.bf16)
