"""benchmarks/gpu_check.py: the paper's shapes, and a CPU smoke run of every step at ``--tiny`` scale (no timing
assertion: the tiny numbers mean nothing, only that each step runs through the product's code and reports)."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import gpu_check  # noqa: E402


def test_the_shapes_are_qwen2_5_3b_and_7b(tiny_tokenizer_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    params = {}
    for name in gpu_check.SHAPES:
        with torch.device("meta"):  # shapes only, no memory
            model = AutoModelForCausalLM.from_config(gpu_check.qwen2_config(name, tokenizer, tiny=False))
        params[name] = sum(p.numel() for p in model.parameters())
    # The model cards: Qwen2.5-3B-Instruct 3.09 B parameters, Qwen2.5-7B-Instruct 7.61 B.
    assert round(params["verifier"] / 1e9, 2) == 3.09
    assert round(params["generator"] / 1e9, 2) == 7.62


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_without_a_gpu_it_asks_for_tiny(capsys):
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main([])
    assert exit_info.value.code == 2
    assert "--tiny" in capsys.readouterr().err


@pytest.mark.parametrize("batches", ["", "0,16", "a,b"])
def test_batches_must_be_positive_integers(batches, capsys):
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(["--tiny", "--batches", batches])
    assert exit_info.value.code == 2
    assert "--batches" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_run_goes_through_fit_scoring_and_generation(tmp_path, capsys, monkeypatch):
    from bestofl_models.generation.backends import sizing

    monkeypatch.setattr(sizing, "free_memory_bytes", lambda device: 8 * 2**30)  # as if a GPU had 8 GiB free
    code = gpu_check.main(["--tiny", "--batches", "1,4", "--json", str(tmp_path / "report.json")])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    assert code == 0
    fit = report["fit"]
    assert fit["global_step"] == 1 and math.isfinite(fit["train_loss"]) and fit["rows"] == 32
    assert fit["adapter"].endswith("fit/adapter") and "r=16 alpha=32" in fit["settings"]
    scoring = report["scoring"]
    assert scoring["candidates"] == 32 and scoring["ratio"] > 0 and scoring["merged"] is True
    assert scoring["max_score_difference"] < 1e-3  # batching must not change the scores
    overhead = scoring["overhead"]
    assert set(overhead["ratio_wall"]) == {"plain", "peft_unmerged"}
    assert overhead["max_score_difference"]["plain"] < 1e-4  # ours and the plain merged forward agree
    assert overhead["max_score_difference"]["peft_unmerged"] < 1e-4  # and merging changed nothing but rounding
    # 8 GiB hold any batch of the tiny model: the scoring batch is the token cap's (a multiple of 8)
    assert scoring["auto_batch"] == sizing.SCORE_TOKENS // scoring["tokens"]["max"] // 8 * 8
    generation = report["generation"]
    assert set(generation["batches"]) == {"1", "4"} and generation["auto_batch"] >= 8
    for batch in generation["batches"].values():
        assert batch["ratio"] > 0 and batch["cold_over_warm"] > 0 and batch["plain_cold_over_warm"] > 0
        assert 0 < batch["steps"]["ours"] <= 16 and 0 < batch["steps"]["plain"] <= 16
    lines = re.findall(r"^(gpu_\w+) ratio=\S+ target=(\S+)$", out, re.M)
    assert lines == [("gpu_batched_scoring", ">=5"), ("gpu_scoring_overhead", "<=1.1"),
                     ("gpu_generation_overhead", "<=1.1"), ("gpu_cold_shape_b1", "<=1.5"),
                     ("gpu_cold_shape_b4", "<=1.5"), ("gpu_check_seconds", "<=480")]
    assert out.count("[not checked: --tiny]") == 6
