"""transformers backend: batched sampling with left padding and per-row stop strings."""

from __future__ import annotations

import contextlib
import gc
import logging
import weakref
from typing import Sequence

import torch
import transformers
from lm_eval.models.utils import postprocess_generated_text
from lm_eval.models.utils_hf import get_dtype

from . import Generation, SamplingSettings, add_special_tokens, load_tokenizer

logger = logging.getLogger(__name__)


def pick_device(device: str | None) -> torch.device:
    """The requested device; like lm-eval's HFLM, an unavailable CUDA request (the CLI's default
    ``cuda:0``) falls back to the CPU."""
    if device and not (device.startswith("cuda") and not torch.cuda.is_available()):
        return torch.device(device)
    if device:
        logger.info("device=%s is not available; using %s", device, "cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


#: On a GPU, prompts are left-padded to a multiple of this many tokens, so that batches of a run (sorted by length,
#: each a little shorter than the one before) repeat a few shapes instead of each bringing a new one; on a CPU
#: there is no per-shape cost and prompts are padded to the batch's longest only (docs/ARCHITECTURE.md).
PROMPT_BUCKET_TOKENS = 64


def prompt_bucket(device: torch.device) -> int | None:
    """The multiple prompt batches are padded to on ``device`` (None: the longest prompt's length)."""
    return PROMPT_BUCKET_TOKENS if device.type == "cuda" else None


def attention_kernels(device: torch.device):
    """A context in which scaled-dot-product attention on ``device`` uses kernels that need no per-shape set-up:
    on CUDA flash, memory-efficient or math attention, leaving out cuDNN attention, which builds and caches an
    execution plan for every new (batch, length) shape (on a recent GPU torch may prefer it; decoding meets a new
    key length at every step of every batch). Elsewhere nothing changes."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def padded_batch(rows: Sequence[Sequence[int]], pad_token_id: int, right: bool = True, mask: bool = True,
                 device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Token id lists as one padded ``input_ids`` tensor (padded on the right or the left with ``pad_token_id``)
    and, with ``mask``, its ``attention_mask``: what the tokenizer's padding call gives, without tokenizing again."""
    length = max((len(row) for row in rows), default=0)
    ids = torch.full((len(rows), length), pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(rows), length), dtype=torch.long) if mask else None
    for i, row in enumerate(rows):
        span = slice(0, len(row)) if right else slice(length - len(row), length)
        ids[i, span] = torch.tensor(row, dtype=torch.long)
        if attention is not None:
            attention[i, span] = 1
    batch = {"input_ids": ids.to(device)}
    if attention is not None:
        batch["attention_mask"] = attention.to(device)
    return batch


#: Per tokenizer: each token id's text decoded alone, and the tables :func:`_ending_tokens` built from them.
_TOKEN_TABLES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _ending_tokens(tokenizer, decode_batch, chars: frozenset[str]) -> bytes:
    """A byte per token id, 1 when appending the token can complete a string ending in one of ``chars``: its text
    alone holds one of them, or, when one of them is not ASCII, holds U+FFFD (a piece of a multi-byte character,
    completed in context; an ASCII character is one byte, never such a piece). Built once per tokenizer and set of
    characters."""
    tables = _TOKEN_TABLES.setdefault(tokenizer, {})
    if chars not in tables:
        if "texts" not in tables:
            tables["texts"] = decode_batch([[i] for i in range(len(tokenizer))])
        marks = chars | ({"\ufffd"} if any(ord(c) > 127 for c in chars) else set())
        tables[chars] = bytes(any(c in text for c in marks) for text in tables["texts"])
    return tables[chars]


class StopStringsPerRow(transformers.StoppingCriteria):
    """Marks a row finished once its own stop strings appear in what it generated.

    It runs after every decoding step, so it decodes only what can have changed: a stop string first appears
    when the newest token brings its last character, so only rows whose newest token can do that (a table over
    the vocabulary, :func:`_ending_tokens`; ids past the tokenizer's count as able) have their last few tokens
    decoded, by the Rust tokenizer directly. A stop string ending in whitespace (a token decoded alone may drop its
    leading space) or a tokenizer without a Rust backend, or one that cleans up spaces after decoding, gets every
    row decoded at every step instead. A row is reported at the step its stop string appears; ``generate`` keeps
    it finished; ``stopped_at`` records, per row, how many tokens it had generated then."""

    def __init__(self, tokenizer, stops: Sequence[Sequence[str]], prompt_length: int):
        self.tokenizer = tokenizer
        self.stopped_at: dict[int, int] = {}
        self.stops = [tuple(s for s in row if s) for row in stops]
        self.prompt_length = prompt_length
        distinct = {s for row in self.stops for s in row}
        longest = max((len(tokenizer.encode(s, add_special_tokens=False)) for s in distinct), default=0)
        # A few extra tokens: a stop string may straddle token boundaries differently than it encodes alone.
        self.lookback = longest + 2
        backend = getattr(tokenizer, "backend_tokenizer", None)
        direct = backend is not None and not getattr(tokenizer, "clean_up_tokenization_spaces", False)
        self.decode_batch = (lambda rows: backend.decode_batch(rows, skip_special_tokens=False)) if direct \
            else tokenizer.batch_decode
        last = frozenset(s[-1] for s in distinct)
        self.ending = _ending_tokens(tokenizer, self.decode_batch, last) \
            if direct and not any(c.isspace() for c in last) else None
        self.with_stops = [i for i, row in enumerate(self.stops) if row]
        self._none: torch.Tensor | None = None  # all rows unfinished (generate does not change it in place)

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        if self._none is None or self._none.shape[0] != input_ids.shape[0] or self._none.device != input_ids.device:
            self._none = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if input_ids.shape[1] <= self.prompt_length:
            return self._none
        rows = self.with_stops
        if self.ending is not None:
            newest = input_ids[:, -1].tolist()
            ending, size = self.ending, len(self.ending)
            rows = [row for row in rows if newest[row] >= size or newest[row] < 0 or ending[newest[row]]]
        if not rows:
            return self._none
        tails = self.decode_batch(input_ids[rows, self.prompt_length :][:, -self.lookback :].tolist())
        hits = [row for row, tail in zip(rows, tails) if any(s in tail for s in self.stops[row])]
        if not hits:
            return self._none
        for row in hits:
            self.stopped_at.setdefault(row, input_ids.shape[1] - self.prompt_length)
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool)
        done[hits] = True
        return done.to(input_ids.device)


_MASK64 = (1 << 64) - 1


def uniform_draw(seed: int, step: int) -> float:
    """A number in [0, 1) that depends only on ``(seed, step)`` (splitmix64 of the pair): a candidate's draw at a
    decoding step, the same whatever else shares its batch."""
    z = (seed + (step + 1) * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return ((z ^ (z >> 31)) >> 11) / float(1 << 53)


class SamplePerRow(transformers.LogitsProcessor):
    """Samples each row's next token from its own seed, so a candidate's text does not depend on its batch mates.

    transformers draws a whole batch from one RNG, so a row's tokens would depend on the rows beside it (and on
    ``--limit`` and ``--batch_size``). Here each row's distribution (temperature, then nucleus ``top_p``, as
    ``generate`` applies them) is sampled by inverting its CDF at :func:`uniform_draw` ``(seed, step)``; every
    other token gets ``-inf``, so ``generate`` runs greedy (``do_sample=False``) and picks the drawn token."""

    def __init__(self, seeds: Sequence[int], settings: SamplingSettings, prompt_length: int):
        self.seeds = list(seeds)
        self.temperature = settings.temperature
        self.top_p = transformers.TopPLogitsWarper(settings.top_p) if settings.top_p < 1.0 else None
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logits = scores.float() / self.temperature
        if self.top_p is not None:
            logits = self.top_p(input_ids, logits)
        cdf = torch.softmax(logits, dim=-1).cumsum(dim=-1)
        step = input_ids.shape[1] - self.prompt_length
        draws = torch.tensor([uniform_draw(seed, step) for seed in self.seeds], dtype=cdf.dtype, device=cdf.device)
        # the first token whose cumulative probability exceeds the draw (scaled to the row's total, about 1)
        tokens = torch.searchsorted(cdf, (draws * cdf[:, -1]).unsqueeze(1), right=True).clamp_(max=cdf.shape[1] - 1)
        return torch.full_like(scores, -float("inf")).scatter_(1, tokens, 0.0)


def generated_counts(generated: torch.Tensor, eos_token_id, stopped_at: dict[int, int]) -> list[tuple[int, bool]]:
    """Per row of ``generate``'s new tokens: how many the row generated before it finished (its first
    end-of-sequence token included, or up to the step its stop string appeared, ``stopped_at``; the padding after
    either is not counted) and whether it never finished, i.e. ran to the cap."""
    eos = torch.tensor(eos_token_id if isinstance(eos_token_id, (list, tuple)) else [eos_token_id],
                       device=generated.device)
    is_eos = torch.isin(generated, eos)
    ended = is_eos.any(dim=1).tolist()
    first_eos = (is_eos.int().argmax(dim=1) + 1).tolist()
    steps = generated.shape[1]
    counts = []
    for row, (has_eos, eos_at) in enumerate(zip(ended, first_eos)):
        end = min(eos_at if has_eos else steps, stopped_at.get(row, steps))
        counts.append((end, not has_eos and row not in stopped_at))
    return counts


class HFBackend:
    """``AutoModelForCausalLM`` on one device; the caller sorts prompts by length and batches them."""

    def __init__(self, config):
        self.config = config
        self.tokenizer = load_tokenizer(config)
        self.tokenizer.padding_side = "left"
        self.device = pick_device(config.device)
        kwargs = {"dtype": get_dtype(config.dtype), "trust_remote_code": config.trust_remote_code}
        for key in ("revision", "attn_implementation"):
            if key in config.backend_options:
                kwargs[key] = config.backend_options[key]
        self.model = transformers.AutoModelForCausalLM.from_pretrained(config.pretrained, **kwargs)
        self.model.to(self.device).eval()
        defaults = self.model.generation_config
        self.eos_token_id = defaults.eos_token_id or self.tokenizer.eos_token_id
        # generate() fills every setting we leave unset from model.generation_config, i.e. the checkpoint's
        # generation_config.json (Qwen2.5-Instruct: repetition_penalty=1.05, top_k=20, ...), which vLLM's explicit
        # SamplingParams do not use. Keep only its token ids so both backends sample the same distribution.
        self.model.generation_config = transformers.GenerationConfig(
            bos_token_id=defaults.bos_token_id, eos_token_id=self.eos_token_id,
            pad_token_id=defaults.pad_token_id if defaults.pad_token_id is not None else self.tokenizer.pad_token_id,
        )

    def auto_batch_size(self, longest_prompt: int, new_tokens: int, cap: int | None = None) -> int | None:
        """The largest generation batch that fits the GPU's free memory for prompts of ``longest_prompt`` tokens
        and ``new_tokens`` new ones (``sizing.largest_batch``, at most ``cap``); None on a CPU (the fixed
        ``batch_size`` stays)."""
        from . import sizing

        free = sizing.free_memory_bytes(self.device)
        if free is None:
            return None
        dims = sizing.dims(self.model.config, self.model.dtype.itemsize)
        bucket = prompt_bucket(self.device) or 1
        length = -(-longest_prompt // bucket) * bucket  # the padded length it will run at
        return sizing.largest_batch(free, dims, length, "generate", new_tokens, cap=cap)

    def _generation_config(self, settings: SamplingSettings) -> transformers.GenerationConfig:
        """Only the token cap and ids; everything else is transformers' neutral default (the checkpoint's own
        sampling defaults were dropped at load). ``generate`` runs greedy: sampling (temperature, top_p, no top_k,
        the distribution vLLM samples) is :class:`SamplePerRow`'s, one seed per candidate."""
        return transformers.GenerationConfig(
            max_new_tokens=settings.max_gen_toks,
            do_sample=False,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.tokenizer.pad_token_id,
        )

    @torch.inference_mode()
    def generate(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        stops: Sequence[Sequence[str]],
        settings: SamplingSettings,
    ) -> list[Generation]:
        batch = self.tokenizer(
            list(prompts), return_tensors="pt", padding=True, pad_to_multiple_of=prompt_bucket(self.device),
            add_special_tokens=add_special_tokens(self.tokenizer),
        ).to(self.device)
        prompt_length = batch["input_ids"].shape[1]
        criteria = transformers.StoppingCriteriaList()
        stop_rows = StopStringsPerRow(self.tokenizer, stops, prompt_length) if any(stops) else None
        if stop_rows is not None:
            criteria.append(stop_rows)
        processors = transformers.LogitsProcessorList()
        if settings.temperature > 0:
            processors.append(SamplePerRow(seeds, settings, prompt_length))
        with attention_kernels(self.device):
            output = self.model.generate(
                **batch, generation_config=self._generation_config(settings), stopping_criteria=criteria,
                logits_processor=processors,
            )
        generated = output[:, prompt_length:]
        texts = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        counts = generated_counts(generated, self.eos_token_id, stop_rows.stopped_at if stop_rows else {})
        return [Generation(postprocess_generated_text(text, list(stop), None), int(prompt), gen, capped)
                for text, stop, prompt, (gen, capped)
                in zip(texts, stops, batch["attention_mask"].sum(dim=1).tolist(), counts)]

    def close(self) -> None:
        del self.model
        free_memory()


def free_memory() -> None:
    """Hand the memory of dropped models back (after ``del model``): collect, then empty the CUDA cache."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
