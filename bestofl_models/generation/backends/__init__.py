"""Generator backends: one small interface over transformers and vLLM.

A backend is built from a :class:`~bestofl_models.harness.model_args.BestOfLConfig` and offers

* ``tokenizer``: the generator's tokenizer (prompts are rendered with its chat template);
* ``generate(prompts, seeds, stops, settings) -> [Generation]``: one sampled continuation per prompt, cut at the
  first stop string, with its token counts; ``seeds`` are per-candidate seeds (each candidate samples from its
  own on both backends);
* ``close()``: free the model's memory (the verifier may need the GPU next).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, TypeVar

from bestofl_tasks.prompts import has_chat_template


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float
    top_p: float
    max_gen_toks: int


@dataclass(frozen=True)
class Generation:
    """One sampled continuation: its text (cut at the first stop string) and its cost in tokens: the prompt's,
    the generated ones (an end-of-sequence token and the stop string's tokens included: what the model ran) and
    whether it ran to the token cap (``max_gen_toks``) without ending."""

    text: str
    prompt_tokens: int
    gen_tokens: int
    hit_cap: bool


class Backend(Protocol):
    tokenizer: object

    def generate(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        stops: Sequence[Sequence[str]],
        settings: SamplingSettings,
    ) -> list[Generation]: ...

    def close(self) -> None: ...


def add_special_tokens(tokenizer) -> bool:
    """A chat-templated prompt already has its special tokens; a plain prompt gets the tokenizer's (BOS)."""
    return not has_chat_template(tokenizer)


T = TypeVar("T")


def prompt_batches(items: Sequence[T], size: int, key: Callable[[T], str]) -> list[list[T]]:
    """``items`` (ordered so that those sharing a prompt are adjacent) in batches of about ``size``: a prompt's
    candidates are never split, so a batch holds at least one prompt's candidates (several at ``--batch_size 1``)
    and further whole prompts while they fit in ``size``."""
    batches: list[list[T]] = []
    group: list[T] = []
    for item in items:
        if group and key(item) != key(group[0]):
            _add_group(batches, group, size)
            group = []
        group.append(item)
    if group:
        _add_group(batches, group, size)
    return batches


def _add_group(batches: list[list], group: list, size: int) -> None:
    if batches and len(batches[-1]) + len(group) <= size:
        batches[-1].extend(group)
    else:
        batches.append(list(group))


def load_backend(config) -> Backend:
    """The generator backend named by ``config.backend``."""
    if config.backend == "vllm":
        from .vllm import VLLMBackend

        return VLLMBackend(config)
    from .hf import HFBackend

    return HFBackend(config)


def load_tokenizer(config):
    """The generator's tokenizer alone (cheap: for chat templates before the model is needed)."""
    return tokenizer_for(config.pretrained, config.trust_remote_code, config.backend_options.get("revision"))


def tokenizer_for(model: str, trust_remote_code: bool = False, revision: str | None = None):
    """``model``'s tokenizer (at ``revision``), padding with the EOS token when it has no pad token."""
    from transformers import AutoTokenizer

    kwargs = {"trust_remote_code": trust_remote_code}
    if revision:
        kwargs["revision"] = revision
    tokenizer = AutoTokenizer.from_pretrained(model, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def device_of(config) -> str:
    """Where a config's generator runs, as the results name it."""
    if config.backend == "vllm":
        return "vllm (tensor_parallel_size={})".format(config.backend_options.get("tensor_parallel_size", 1))
    from .hf import pick_device

    return str(pick_device(config.device))
