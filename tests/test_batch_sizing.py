"""bestofl_models.generation.backends.sizing: the GPU batch size as a pure function of free memory, model dims and lengths
(checked on CPU: arithmetic only, nothing is allocated)."""

from __future__ import annotations

import pytest
import torch

from bestofl_models.generation.backends import sizing

GIB = 2**30
#: Qwen2.5-7B-Instruct and Qwen2.5-3B-Instruct (config.json), bf16.
QWEN7B = sizing.ModelDims(layers=28, hidden=3584, intermediate=18944, heads=28, kv_heads=4, head_dim=128,
                          vocab=152064)
QWEN3B = sizing.ModelDims(layers=36, hidden=2048, intermediate=11008, heads=16, kv_heads=2, head_dim=128,
                          vocab=151936)


def test_a_generation_row_is_its_cache_prefill_and_sampling():
    row = sizing.row_bytes(QWEN7B, 300, "generate", new_tokens=512)
    cache = 2 * 28 * 4 * 128 * 812 * 2
    assert row == cache + 300 * (4 * 3584 + 3 * 18944) * 2 + 152064 * 24
    assert 80e6 < row < 100e6  # about 93 MB a row


def test_the_batch_is_the_largest_that_fits_and_shrinks_with_length_and_memory():
    free = 8 * GIB
    short = sizing.largest_batch(free, QWEN7B, 200, "generate", new_tokens=256)
    long = sizing.largest_batch(free, QWEN7B, 1000, "generate", new_tokens=512)
    assert short > long >= 8 and short % 8 == 0 and long % 8 == 0
    for batch, length, new in ((short, 200, 256), (long, 1000, 512)):  # it fits, and 8 more would not
        row = sizing.row_bytes(QWEN7B, length, "generate", new)
        assert batch * row <= free * sizing.HEADROOM < (batch + 8) * row
    assert sizing.largest_batch(free // 2, QWEN7B, 200, "generate", 256) < short


def test_caps_floor_and_small_batches():
    assert sizing.largest_batch(1000 * GIB, QWEN7B, 100, "generate", 16) == sizing.CAPS["generate"]
    assert sizing.largest_batch(1000 * GIB, QWEN3B, 16, "score") == sizing.CAPS["score"]
    # a scoring batch holds about SCORE_TOKENS tokens at most: 16 rows of 1,024, 160 rows of 100
    assert sizing.largest_batch(1000 * GIB, QWEN3B, 1024, "score") == sizing.SCORE_TOKENS // 1024 == 16
    assert sizing.largest_batch(1000 * GIB, QWEN3B, 100, "score") == 160
    assert sizing.largest_batch(1, QWEN7B, 4000, "generate", 512) == 1  # never 0: one row is tried
    row = sizing.row_bytes(QWEN3B, 900, "score")
    five = sizing.largest_batch(int(5.5 * row / sizing.HEADROOM), QWEN3B, 900, "score")
    assert five == 5  # below 8 no rounding to a multiple of 8
    assert sizing.largest_batch(10 * GIB, QWEN7B, 100, "generate", 16, cap=12) == 12


def test_scoring_rows_have_no_cache_and_eager_attention_adds_its_matrix():
    score = sizing.row_bytes(QWEN3B, 900, "score")
    assert score == 900 * (6 * 2048 + 3 * 11008) * 2 + 900 * 4
    eager = sizing.ModelDims(**{**QWEN3B.__dict__, "eager_attention": True})
    assert sizing.row_bytes(eager, 900, "score") == score + 16 * 900 * 900 * 4
    with pytest.raises(ValueError, match="generate' or 'score"):
        sizing.row_bytes(QWEN3B, 10, "train")


def test_dims_read_a_transformers_config():
    from transformers import Qwen2Config

    config = Qwen2Config(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                         num_key_value_heads=4, vocab_size=152064, num_labels=1)
    assert sizing.dims(config) == QWEN7B
    assert sizing.dims(config, dtype_bytes=4).dtype_bytes == 4


def test_the_cpu_has_no_free_memory_to_size_by():
    assert sizing.free_memory_bytes(torch.device("cpu")) is None
    assert sizing.free_memory_bytes("cpu") is None


# ------------------------------------------------------------------------------------- --batch_size auto, wired


def test_auto_is_remembered_with_the_cap_and_a_number_is_not_auto():
    from bestofl_models.harness.model_args import parse_model_args

    auto = parse_model_args({"pretrained": "x", "store": "none", "batch_size": "auto"},
                            harness_args={"max_batch_size": 48})
    assert auto.batch_size_auto and auto.verifier_batch_size_auto and auto.max_batch_size == 48
    assert auto.batch_size == 16  # what a CPU (and vLLM's caller) still uses
    fixed = parse_model_args({"pretrained": "x", "store": "none", "batch_size": 8, "verifier_batch_size": 4})
    assert not fixed.batch_size_auto and not fixed.verifier_batch_size_auto and fixed.max_batch_size is None
    # the verifier follows --batch_size auto unless its own size is given; lm-eval's default --batch_size 1 is fixed
    assert not parse_model_args({"pretrained": "x", "store": "none"}, harness_args={"batch_size": 1}) \
        .verifier_batch_size_auto
    assert not parse_model_args({"pretrained": "x", "store": "none", "batch_size": "auto",
                                 "verifier_batch_size": 16}).verifier_batch_size_auto
    assert parse_model_args({"pretrained": "x", "store": "none", "batch_size": 4,
                             "verifier_batch_size": "auto"}).verifier_batch_size_auto
    verifier = parse_model_args({"pretrained": "x", "store": "none", "verifier": "v", "batch_size": "auto",
                                 "verifier_batch_size": "auto"}).verifier_config()
    assert verifier.batch_size_auto and verifier.batch_size == 16


def test_the_generator_and_verifier_size_by_free_memory_on_a_gpu_only(tiny_generator_dir, tiny_verifier_adapter_dir,
                                                                     monkeypatch):
    from bestofl_models.generation.backends.hf import HFBackend
    from bestofl_models.harness.model_args import parse_model_args
    from bestofl_models.verifiers.classifier import load_verifier

    config = parse_model_args({"pretrained": str(tiny_generator_dir), "store": "none",
                               "verifier": str(tiny_verifier_adapter_dir), "batch_size": "auto",
                               "verifier_batch_size": "auto"})
    backend = HFBackend(config)
    verifier = load_verifier(config.verifier_config())
    assert backend.auto_batch_size(300, 512) is None  # a CPU: the fixed sizes stay
    assert verifier.batch_size_for(900) == 16
    monkeypatch.setattr(sizing, "free_memory_bytes", lambda device: 2**20)  # as if a GPU had 1 MiB free
    d = sizing.dims(backend.model.config, 4)
    assert backend.auto_batch_size(300, 512) == sizing.largest_batch(2**20, d, 300, "generate", 512)
    assert backend.auto_batch_size(300, 512, cap=2) <= 2
    assert verifier.batch_size_for(900) == sizing.largest_batch(2**20, sizing.dims(verifier.model.config, 4), 900,
                                                                "score")
    verifier.batch_size_auto = False
    assert verifier.batch_size_for(900) == 16
    backend.close()
    verifier.close()


def test_the_harness_sizes_generation_batches_only_when_auto_on_one_process():
    from types import SimpleNamespace

    from bestofl_models.harness.generate import generation_batch_size

    class Backend:
        def auto_batch_size(self, longest, new_tokens, cap=None):
            return 40 if cap is None else min(40, cap)

    order = [SimpleNamespace(length=300)]
    config = SimpleNamespace(batch_size=16, batch_size_auto=True, max_gen_toks=512, max_batch_size=None)
    run = SimpleNamespace(config=config, world_size=1)
    assert generation_batch_size(run, Backend(), order) == 40
    assert generation_batch_size(SimpleNamespace(config=SimpleNamespace(**{**vars(config),
                                                                                     "max_batch_size": 24}),
                                                            world_size=1), Backend(), order) == 24
    assert generation_batch_size(SimpleNamespace(config=config, world_size=2), Backend(), order) == 16
    assert generation_batch_size(run, object(), order) == 16  # a backend that does not size (vLLM)
    fixed = SimpleNamespace(config=SimpleNamespace(**{**vars(config), "batch_size_auto": False}), world_size=1)
    assert generation_batch_size(fixed, Backend(), order) == 16

    class CPU(Backend):
        def auto_batch_size(self, longest, new_tokens, cap=None):
            return None

    assert generation_batch_size(run, CPU(), order) == 16


def test_the_results_record_the_largest_verifier_batch_of_the_call(tiny_generator_dir, tiny_verifier_adapter_dir):
    from lm_eval.api.instance import Instance

    from bestofl_models.harness import model as harness
    from bestofl_tasks.data import load_docs

    lm = harness.BestOfL(pretrained=str(tiny_generator_dir), verifier=str(tiny_verifier_adapter_dir), n=4,
                         languages="en:de", max_gen_toks=4, store=None, batch_size=8, verifier_batch_size=3)
    docs = load_docs("mgsm", "de")[:2]
    lm.generate_until([Instance("generate_until", doc, ("ignored", {"until": ["Frage:"], "do_sample": False}), 0,
                                ("mgsm_xling_de", i, 1)) for i, doc in enumerate(docs)])
    info = lm.get_model_info()["bestofl"]
    assert (info["verifier_batch_size"], info["largest_verifier_batch"]) == (3, 3)  # 8 candidates in 3, 3, 2
    lm.close()
