"""bestofl_models.backends.sizing: the GPU batch size as a pure function of free memory, model dims and lengths
(checked on CPU: arithmetic only, nothing is allocated)."""

from __future__ import annotations

import pytest
import torch

from bestofl_models.backends import sizing

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
    assert sizing.largest_batch(1000 * GIB, QWEN3B, 100, "score") == sizing.CAPS["score"]
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
