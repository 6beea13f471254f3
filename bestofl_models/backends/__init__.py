"""Generator backends: one small interface over transformers and vLLM.

A backend is built from a :class:`~bestofl_models.config.BestOfLConfig` and offers

* ``tokenizer``: the generator's tokenizer (prompts are rendered with its chat template);
* ``generate(prompts, seeds, stops, settings) -> texts``: one sampled continuation per prompt, cut at the
  first stop string; ``seeds`` are per-candidate seeds (vLLM uses each; transformers seeds the batch from all);
* ``close()``: free the model's memory (the verifier may need the GPU next).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol, Sequence

from bestofl_tasks.prompts import has_chat_template


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float
    top_p: float
    max_gen_toks: int


class Backend(Protocol):
    tokenizer: object

    def generate(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        stops: Sequence[Sequence[str]],
        settings: SamplingSettings,
    ) -> list[str]: ...

    def close(self) -> None: ...


def add_special_tokens(tokenizer) -> bool:
    """A chat-templated prompt already has its special tokens; a plain prompt gets the tokenizer's (BOS)."""
    return not has_chat_template(tokenizer)


def combined_seed(seeds: Sequence[int]) -> int:
    """One 63-bit seed derived from several (order-independent)."""
    digest = hashlib.sha256(",".join(str(s) for s in sorted(seeds)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def load_backend(config) -> Backend:
    """The generator backend named by ``config.backend``."""
    if config.backend == "vllm":
        from .vllm import VLLMBackend

        return VLLMBackend(config)
    from .hf import HFBackend

    return HFBackend(config)


def load_tokenizer(config):
    """The generator's tokenizer alone (cheap: for chat templates before the model is needed)."""
    from transformers import AutoTokenizer

    kwargs = {"trust_remote_code": config.trust_remote_code}
    if "revision" in config.backend_options:
        kwargs["revision"] = config.backend_options["revision"]
    tokenizer = AutoTokenizer.from_pretrained(config.pretrained, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
