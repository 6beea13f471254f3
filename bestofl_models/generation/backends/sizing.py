"""Batch sizes that fit a GPU's free memory: a pure function of (free memory, model dimensions, sequence lengths).

What a batch row costs on top of the loaded weights, in bytes (``b`` = bytes per element of the model's dtype):

* generation (``kind="generate"``): its key/value cache at the longest length it reaches,
  ``2 * layers * kv_heads * head_dim * (prompt + new_tokens) * b``; the prefill's activations of one layer over the
  prompt, ``prompt * (4 * hidden + 3 * intermediate) * b``; and sampling over the vocabulary in float32 (logits,
  softmax, top-p's sort with its int64 indices), ``vocab * 24``;
* scoring (``kind="score"``): one forward over the text without a cache, ``length * (6 * hidden + 3 *
  intermediate) * b``, the head's logits over every position, ``length * num_labels * 4``;
* eager attention (no fused kernel) also holds a ``heads * length * length`` matrix in float32 per layer.

The batch is the largest that fits ``headroom`` of the free memory (allocator fragmentation, CUDA workspaces and
what the estimate leaves out take the rest; a scoring batch also at most :data:`SCORE_TOKENS` tokens), rounded down
to a multiple of 8 above 8 (tensor-core tiles) and held between 1 and the cap of its kind (:data:`CAPS`, or lm-eval's
``--max_batch_size``). :func:`dims` reads the dimensions from a transformers config; :func:`free_memory_bytes` asks
the device. ``tests/test_batch_sizing.py`` checks the arithmetic on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Fraction of the free memory a batch may fill.
HEADROOM = 0.7
#: The largest batch chosen per kind. Generating, a decoding step of a 7B model took about the same time at
#: batch 1, 16 and 64 on an H200 (launch-bound), so larger batches keep paying.
CAPS = {"generate": 256, "score": 256}
#: Scoring is compute-bound once a batch holds about this many tokens: on an H200 a 3B forward over batches of 16
#: texts of 300-900 tokens (about 11k tokens a batch) ran at ~430 TFLOP/s and batches of 64 were no faster, so a
#: scoring batch holds at most this many tokens (more rows only add padding).
SCORE_TOKENS = 16384


@dataclass(frozen=True)
class ModelDims:
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    dtype_bytes: int = 2
    num_labels: int = 1
    eager_attention: bool = False


def dims(config, dtype_bytes: int = 2) -> ModelDims:
    """:class:`ModelDims` of a transformers ``PretrainedConfig`` (decoder models: Llama, Qwen2, Mistral, ...)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = text.num_attention_heads
    return ModelDims(
        layers=text.num_hidden_layers, hidden=text.hidden_size,
        intermediate=getattr(text, "intermediate_size", None) or 4 * text.hidden_size, heads=heads,
        kv_heads=getattr(text, "num_key_value_heads", None) or heads,
        head_dim=getattr(text, "head_dim", None) or text.hidden_size // heads, vocab=text.vocab_size,
        dtype_bytes=dtype_bytes, num_labels=getattr(config, "num_labels", 1) or 1,
        eager_attention=getattr(config, "_attn_implementation", None) == "eager",
    )


def row_bytes(d: ModelDims, length: int, kind: str, new_tokens: int = 0) -> int:
    """Bytes one batch row needs beyond the weights: ``length`` prompt (``generate``) or text (``score``) tokens."""
    b = d.dtype_bytes
    attention = d.heads * length * length * 4 if d.eager_attention else 0
    if kind == "generate":
        cache = 2 * d.layers * d.kv_heads * d.head_dim * (length + new_tokens) * b
        prefill = length * (4 * d.hidden + 3 * d.intermediate) * b
        return cache + prefill + attention + d.vocab * 24
    if kind == "score":
        return length * (6 * d.hidden + 3 * d.intermediate) * b + length * d.num_labels * 4 + attention
    raise ValueError(f"kind must be 'generate' or 'score', not {kind!r}")


def largest_batch(free_bytes: int, d: ModelDims, length: int, kind: str, new_tokens: int = 0,
                  cap: int | None = None, headroom: float = HEADROOM) -> int:
    """The largest batch of rows of ``length`` tokens (the longest in the batch; plus ``new_tokens`` generated)
    that fits ``headroom`` of ``free_bytes`` (a scoring batch also at most :data:`SCORE_TOKENS` tokens), a multiple
    of 8 when it is 8 or more, then held between 1 and ``cap`` (default :data:`CAPS` of ``kind``; lm-eval's
    ``--max_batch_size``)."""
    length = max(length, 1)
    fits = _tiles(int(free_bytes * headroom) // max(row_bytes(d, length, kind, new_tokens), 1))
    if kind == "score":
        fits = min(fits, _tiles(SCORE_TOKENS // length))
    return max(1, min(CAPS[kind] if cap is None else cap, fits))


def _tiles(rows: int) -> int:
    """``rows`` rounded down to a multiple of 8 when it is 8 or more."""
    return rows - rows % 8 if rows >= 8 else rows


def free_memory_bytes(device) -> int | None:
    """Free memory of a CUDA ``device`` (what the driver reports, plus what torch's allocator holds unused);
    None elsewhere (the CPU keeps its fixed batch sizes)."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
