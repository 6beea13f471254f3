"""padding_efficiency: real tokens / padded tokens in the verifier batches the product builds.

The harness scores up to ``harness.score.SCORE_CHUNK`` (256) candidates per ``score_responses`` call, and
``HFVerifier.score`` cuts them into length-sorted batches of ``verifier_batch_size`` (16). This benchmark scores one
such chunk of MGSM-like candidates (:func:`benchmarks.common.mgsm_candidates`: real MGSM questions in 8 languages,
answers of sampled lengths, half cut at 512 tokens) with the tiny LoRA verifier fixture and reads every batch off the
model's input: a forward pre-hook on the verifier model counts the non-pad token ids (real tokens; the fixture's pad
token is a token of its own) and all ids (padded tokens). The ratio is deterministic (no timing), so a test can show
it failing when the length sort is removed (``tests/test_padding_efficiency.py``).
"""

from __future__ import annotations

from .common import Context, Result, median, mgsm_candidates

NAME = "padding_efficiency"
TARGET = 0.9
OP = ">="


def record_batches(model, pad_token_id: int, sink: list[tuple[int, int]]):
    """Append ``(real tokens, padded tokens)`` of every forward call of ``model`` to ``sink``; returns the hook."""
    def hook(module, args, kwargs):
        ids = kwargs["input_ids"]
        sink.append((int((ids != pad_token_id).sum()), ids.numel()))
    return model.register_forward_pre_hook(hook, with_kwargs=True)


def run(ctx: Context) -> Result:
    from bestofl_models.harness import score as score_stage
    from bestofl_models import testing
    from bestofl_models.harness.model_args import parse_model_args
    from bestofl_models.verifiers.classifier import load_verifier, score_responses

    config = parse_model_args({"pretrained": str(testing.tiny_generator()),
                               "verifier": str(testing.tiny_verifier_adapter()), "store": "none"})
    verifier = load_verifier(config.verifier_config())
    candidates = mgsm_candidates(score_stage.SCORE_CHUNK, verifier.tokenizer)
    batches: list[tuple[int, int]] = []
    hook = record_batches(verifier.model, verifier.tokenizer.pad_token_id, batches)
    try:
        score_responses(verifier, candidates, progress=False)
    finally:
        hook.remove()
        verifier.close()
    real, padded = sum(b[0] for b in batches), sum(b[1] for b in batches)
    per_batch = [r / p for r, p in batches]
    return Result(
        NAME, real / padded, TARGET, OP,
        f"{len(candidates)} candidates (one harness scoring chunk) in {len(batches)} batches of "
        f"{config.verifier_batch_size}: {real} real of {padded} padded tokens; per batch "
        f"{min(per_batch):.2f}-{max(per_batch):.2f} (median {median(per_batch):.2f})",
        {"real_tokens": real, "padded_tokens": padded, "batches": batches},
    )
