"""scoring_overhead: the harness's verifier scoring path against a plain ``transformers`` forward of the same model.

"Ours" is what the harness runs: ``load_verifier`` + ``score_responses`` (the verifier's text, one tokenization,
length-sorted batches of ``verifier_batch_size``, the adapter merged for inference). "Plain" is what anyone would
write with transformers and peft alone: ``AutoModelForSequenceClassification.from_pretrained`` of the adapter's base,
``PeftModel.from_pretrained(...).merge_and_unload()`` on that copy in memory (the adapter's files are only read),
then per batch ``tokenizer(texts, padding=True, return_tensors="pt")`` and ``model(**batch)`` with its attention
mask, ``sigmoid`` of the logits. Plain gets the same texts already built and the same batches already formed (the
same length sort), so everything ours does besides the forward counts against it. Both run in one process on the
same MGSM-like candidates (:func:`benchmarks.common.mgsm_candidates`), interleaved, after one untimed pass each;
the ratio is the median over rounds of ours / plain, CPU time of this process on a CPU (less sensitive to the
other jobs on a shared machine than wall time), wall time with a device sync on a GPU. Target <= 1.10. Both must
give the same scores (up to rounding; reported).

``benchmarks/gpu_check.py`` runs the same comparison (:func:`compare`) at the paper's shapes on a GPU.
"""

from __future__ import annotations

import os

from .common import Context, Result, interleaved, mgsm_candidates, paired_ratio, spread

NAME = "scoring_overhead"
TARGET = 1.10
OP = "<="
BATCH = 16


def plain_classifier(path: str, dtype=None, device="cpu", merge: bool = True):
    """``(model, tokenizer)`` loaded with transformers and peft only: the one-logit classifier ``path``, or a LoRA
    adapter's base with the adapter merged (``merge_and_unload`` on the copy in memory; ``merge=False`` keeps the
    ``PeftModel``); the tokenizer pads on the right with EOS when it has no pad token."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    adapter = os.path.isfile(os.path.join(path, "adapter_config.json"))
    base = path
    if adapter:
        from peft import PeftConfig

        base = PeftConfig.from_pretrained(path).base_model_name_or_path
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError):
        tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    kwargs = {"num_labels": 1, "pad_token_id": tokenizer.pad_token_id}
    if dtype is not None:
        kwargs["dtype"] = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    model = AutoModelForSequenceClassification.from_pretrained(base, **kwargs)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, path)
        if merge:
            model = model.merge_and_unload()
    return model.to(device).eval(), tokenizer


def plain_scores(model, tokenizer, texts: list[str], batches: list[list[int]], special: bool, device) -> list[float]:
    """The plain loop: tokenize each batch with padding and its attention mask, forward, sigmoid."""
    import torch

    scores = [0.0] * len(texts)
    with torch.inference_mode():
        for rows in batches:
            batch = tokenizer([texts[i] for i in rows], return_tensors="pt", padding=True,
                              add_special_tokens=special).to(device)
            logits = model(**batch).logits
            for i, p in zip(rows, torch.sigmoid(logits[:, 0].double()).tolist()):
                scores[i] = p
    return scores


def compare(verifier, plain: dict, items, batch_size: int, repeats: int, sync=None) -> dict:
    """Time ``score_responses(verifier, items)`` (batch ``batch_size``) against each ``plain`` competitor
    (``name -> (model, tokenizer)``) on the same texts and batches, interleaved after one untimed pass each.
    Returns wall and CPU times per competitor, the paired ratios ours / each, the largest score differences
    and the token lengths."""
    from bestofl_models.generation.backends import add_special_tokens
    from bestofl_models.verifiers.classifier import TEXTS, length_sorted_batches, score_responses

    text = TEXTS[verifier.text_format]
    texts = [text(verifier.tokenizer, question, response, lang) for question, response, lang in items]
    special = add_special_tokens(verifier.tokenizer)
    lengths = [len(ids) for ids in verifier.tokenizer(texts, add_special_tokens=special)["input_ids"]]
    batches = length_sorted_batches(lengths, batch_size)
    verifier.batch_size = batch_size
    scores: dict[str, list[float]] = {}

    def timed(name, run):
        def go():
            scores[name] = run()
            if sync is not None:
                sync()
        return go

    competitors = {"ours": timed("ours", lambda: score_responses(verifier, items, progress=False))}
    for name, (model, tokenizer) in plain.items():
        competitors[name] = timed(name, lambda m=model, t=tokenizer: plain_scores(m, t, texts, batches, special,
                                                                                   verifier.device))
    cpu: dict[str, list[float]] = {}
    wall = interleaved(competitors, repeats, warmup=True, cpu=cpu)
    return {
        "wall_s": wall, "cpu_s": cpu,
        "ratio_wall": {name: paired_ratio(wall["ours"], wall[name]) for name in plain},
        "ratio_cpu": {name: paired_ratio(cpu["ours"], cpu[name]) for name in plain},
        "max_score_difference": {name: max(abs(a - b) for a, b in zip(scores["ours"], scores[name]))
                                 for name in plain},
        "candidates": len(items), "batches": len(batches), "batch_size": batch_size,
        "tokens": {"min": min(lengths), "max": max(lengths), "total": sum(lengths)},
    }


def run(ctx: Context) -> Result:
    from bestofl_models.harness import score as score_stage
    from bestofl_models import testing
    from bestofl_models.harness.model_args import parse_model_args
    from bestofl_models.verifiers.classifier import load_verifier

    from .batched_scoring import verifier_dir

    path = verifier_dir()
    config = parse_model_args({"pretrained": str(testing.tiny_generator()), "verifier": path, "store": "none",
                               "verifier_batch_size": BATCH})
    verifier = load_verifier(config.verifier_config())
    items = mgsm_candidates(ctx.pick(32, score_stage.SCORE_CHUNK, score_stage.SCORE_CHUNK), verifier.tokenizer)
    plain = plain_classifier(path)
    measured = compare(verifier, {"plain": plain}, items, BATCH, ctx.pick(2, 7, 11))
    verifier.close()
    drift = measured["max_score_difference"]["plain"]
    if drift > 1e-4:
        raise AssertionError(f"our scores and the plain forward's differ by up to {drift:.2g}")
    ratio = measured["ratio_cpu"]["plain"]
    tokens = measured["tokens"]
    return Result(
        NAME, ratio, TARGET, OP,
        f"{measured['candidates']} candidates ({tokens['min']}-{tokens['max']} tokens), verifier "
        f"{os.path.basename(path.rstrip('/'))} (adapter merged on both sides) on CPU, batch {BATCH}, "
        f"{measured['batches']} length-sorted batches: ours {spread(measured['wall_s']['ours'])}, plain forward "
        f"{spread(measured['wall_s']['plain'])} (wall); CPU-time ratio ours/plain {ratio:.3f}, wall-time ratio "
        f"{measured['ratio_wall']['plain']:.3f}; max score difference {drift:.1g}",
        {"ours_s": measured["wall_s"]["ours"], "plain_s": measured["wall_s"]["plain"],
         "ours_cpu_s": measured["cpu_s"]["ours"], "plain_cpu_s": measured["cpu_s"]["plain"],
         "candidates": measured["candidates"], "max_score_difference": drift},
    )
