"""The padding-efficiency benchmark can fail for the right reason: it meets its target on the product's length-sorted
batches and misses it, with ``run_all`` exiting 1, when the verifier's batching stops sorting by length.
Deterministic (token counts of the batches the verifier model receives, no timing)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import run_all  # noqa: E402
from bestofl_models.verifiers import classifier as verifier  # noqa: E402


def padding_line(argv_out: str) -> tuple[float, str]:
    ratio = float(re.search(r"^padding_efficiency ratio=(\S+) target=>=0.9$", argv_out, re.M)[1])
    verdict = re.search(r"\[(met|MISSED); \d+ s\]$", argv_out, re.M)[1]
    return ratio, verdict


def test_length_sorted_batches_meet_the_target(capsys):
    code = run_all.main(["--scale", "tiny", "--only", "padding_efficiency"])
    ratio, verdict = padding_line(capsys.readouterr().out)
    assert (code, verdict) == (0, "met") and ratio >= 0.9


def test_unsorted_batches_miss_it_and_run_all_fails(monkeypatch, capsys):
    def arrival_order(lengths, batch_size):  # the same batch size, candidates in the order they came
        return [list(range(start, min(start + batch_size, len(lengths))))
                for start in range(0, len(lengths), batch_size)]

    monkeypatch.setattr(verifier, "length_sorted_batches", arrival_order)
    code = run_all.main(["--scale", "tiny", "--only", "padding_efficiency"])
    out = capsys.readouterr().out
    ratio, verdict = padding_line(out)
    assert (code, verdict) == (1, "MISSED") and ratio < 0.9
    assert "1 of 1 missed their target: padding_efficiency" in out


def test_batches_without_a_padding_mask_score_as_single_candidates(tiny_generator_dir, tiny_verifier_adapter_dir):
    """The batches the benchmark measures drop the padding mask (a causal decoder padded on the right): every score
    equals the candidate's score alone and the score the masked batch gives."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from benchmarks.common import mgsm_candidates
    from bestofl_models.verifiers.config import VerifierConfig
    from bestofl_tasks.prompts import verifier_text

    loaded = verifier.load_verifier(VerifierConfig(str(tiny_verifier_adapter_dir)))
    assert verifier.is_causal_decoder(loaded.model) and loaded.tokenizer.padding_side == "right"
    items = mgsm_candidates(16, loaded.tokenizer)
    batched = verifier.score_responses(loaded, items, progress=False)
    loaded.batch_size = 1
    assert batched == pytest.approx(verifier.score_responses(loaded, items, progress=False), abs=1e-6)
    texts = [verifier_text(loaded.tokenizer, q, r, lang) for q, r, lang in items]
    with torch.inference_mode():
        masked = torch.sigmoid(loaded.model(**loaded.tokenizer(texts, return_tensors="pt", padding=True)).logits[:, 0])
    assert batched == pytest.approx(masked.tolist(), abs=1e-6)
    bert = BertForSequenceClassification(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                    intermediate_size=32, num_labels=1))
    assert not verifier.is_causal_decoder(bert)  # an encoder sees the pads: it keeps its mask
