"""The outcome reward model: P(correct | question, response) from a one-logit sequence classifier.

``verifier=`` is either a PEFT LoRA adapter (``adapter_config.json``; its base is loaded as
``AutoModelForSequenceClassification(num_labels=1)``) or a full one-logit classifier, as a local path or a
Hub id. The scored text is always :func:`bestofl_tasks.prompts.verifier_text` with the candidate's own
language and question, so training and evaluation see the same input.

A public chat reward model (``verifier_format=chat``, e.g. Skywork-Reward-V2) is scored on
:func:`chat_rm_text` instead: the question as prompted (user turn) and the candidate (assistant turn) through the
reward model's own chat template, version :data:`CHAT_FORMAT`. Which format a checkpoint gets is decided in
``bestofl_models.verifiers.spec``. Every score is stored as ``sigmoid(logit)`` (computed in float64 by
transformers): a probability for our BCE-trained verifiers, a monotone squashing of a chat reward model's raw
reward (the order, hence the selection, is the reward's).

Backends: transformers (any verifier), or vLLM's pooling runner (``LLM(runner="pooling").classify``, sigmoid
applied by vLLM for one label) for a full classifier when ``backend=vllm``; vLLM cannot load a LoRA adapter
with a trained score head, so adapters always use transformers (merge the adapter to use vLLM).
"""

from __future__ import annotations

import logging
import math
from typing import Sequence

from tqdm.auto import tqdm

from bestofl_tasks.prompts import chat_messages, verifier_text

from .checkpoint import (
    UNKNOWN,
    accepts,
    inspect_verifier,
    is_causal_decoder,
    load_seqcls,
    merge_for_inference,
    prepare_verifier_tokenizer,
    verifier_tokenizer,
)
from .config import VerifierConfig

logger = logging.getLogger(__name__)

#: Version of the text the verifier scores (:func:`bestofl_tasks.prompts.verifier_text`): part of a score's
#: verifier identity, so a change of format never reuses scores of the old one.
TEXT_FORMAT = "bestofl-verifier-text-1"
#: Version of :func:`chat_rm_text`, the input of a chat reward model (``verifier_format=chat``).
CHAT_FORMAT = "chat-rm-1"


def chat_rm_text(tokenizer, question: str, response: str, lang: str) -> str:
    """A chat reward model's input: the user turn is the question as the generator was prompted with it, the
    assistant turn the candidate, through the reward model's own chat template."""
    return tokenizer.apply_chat_template(chat_messages(question, lang, response=response.strip()), tokenize=False,
                                         add_generation_prompt=False)


#: ``verifier_format`` -> the text function a classifier scores.
TEXTS = {"bestofl": verifier_text, "chat": chat_rm_text}


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices into ``lengths`` in batches of ``batch_size``, longest first (lm-eval's ``Collator``, as its ``hf``
    model batches requests): similar lengths share a batch, so little of each batch is padding
    (``benchmarks/padding_efficiency.py`` measures how little)."""
    from lm_eval.models.utils import Collator

    return list(Collator(range(len(lengths)), sort_fn=lambda i: -lengths[i]).get_batched(n=batch_size))


class _ScoresTexts:
    """``score_items``: the texts of ``text_format`` for ``(question, response, lang)`` items, then ``score``.
    Every scorer keeps ``last_input_tokens``: the input tokens of each item of its last call (the run's cost)."""

    tokenizer: object
    text_format: str

    def score_items(self, items: Sequence[tuple[str, str, str]], progress: bool = True) -> list[float]:
        text = TEXTS[self.text_format]
        return self.score([text(self.tokenizer, q, r, lang) for q, r, lang in items], progress=progress)


class HFVerifier(_ScoresTexts):
    """transformers (+ peft) verifier scoring length-sorted batches."""

    def __init__(self, config: VerifierConfig, base=UNKNOWN, text_format: str = "bestofl"):
        """``base``: :func:`inspect_verifier`'s answer for ``config.path`` when the caller already has it;
        ``text_format``: a key of :data:`TEXTS`."""
        import torch

        from ..generation.backends.hf import pick_device

        self.name = config.path
        self.batch_size = config.batch_size
        #: ``verifier_batch_size=auto`` on a GPU: each call's batch fits the free memory (:meth:`batch_size_for`).
        self.batch_size_auto = config.batch_size_auto
        self.max_batch_size = config.max_batch_size
        #: The largest batch a call used (what the run record says ran).
        self.largest_batch = 0
        self.device = pick_device(config.device)
        base = inspect_verifier(self.name, config.trust_remote_code) if base is UNKNOWN else base
        self.text_format = text_format
        self.tokenizer = prepare_verifier_tokenizer(verifier_tokenizer(self.name, base, config.trust_remote_code))
        model = load_seqcls(
            self.name if base is None else base,
            adapter=None if base is None else self.name,
            dtype=config.dtype,
            trust_remote_code=config.trust_remote_code,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        #: Whether the adapter's LoRA weights were merged into the base weights (:func:`merge_for_inference`).
        self.merged = base is not None
        if self.merged:
            model, self.merged = merge_for_inference(model, self.name)
        self.model = model.to(self.device).eval()
        # A decoder's forward builds a key/value cache unless told not to; scoring never reads it.
        self._forward_options = {"use_cache": False} if accepts(self.model.forward, "use_cache") else {}
        self._torch = torch

    def score(self, texts: Sequence[str], progress: bool = True) -> list[float]:
        """Sigmoid probability per text; batches go longest first (an out-of-memory shows up at once).

        Each text is tokenized once (its length sorts it, its ids are padded into its batch), no key/value cache is
        built, the logits stay on the device until the last batch (no host sync per batch, so the next batch is
        prepared while the device computes), and attention runs on kernels without a per-shape set-up
        (:func:`bestofl_models.generation.backends.hf.attention_kernels`). ``benchmarks/scoring_overhead.py`` holds this
        against a plain ``transformers`` forward of the same (merged) model on the same batches."""
        from ..generation.backends import add_special_tokens
        from ..generation.backends.hf import attention_kernels, padded_batch

        torch = self._torch
        ids = self.tokenizer(list(texts), add_special_tokens=add_special_tokens(self.tokenizer))["input_ids"]
        self.last_input_tokens = [len(row) for row in ids]
        # For a causal decoder the mask changes no score; without it attention runs its causal kernel and builds no
        # [batch, 1, length, length] mask, which keeps batches as fast as single candidates on a CPU
        # (benchmarks/batched_scoring.py).
        right = self.tokenizer.padding_side == "right"
        drop_mask = right and is_causal_decoder(self.model)
        order: list[int] = []
        logits = []
        size = self.batch_size_for(max((len(row) for row in ids), default=1))
        with tqdm(total=len(texts), desc="bestofl: scoring", unit="cand", disable=not progress) as bar, \
                torch.inference_mode(), attention_kernels(self.device):
            for rows in length_sorted_batches([len(row) for row in ids], size):
                self.largest_batch = max(self.largest_batch, len(rows))
                batch = padded_batch([ids[i] for i in rows], self.tokenizer.pad_token_id, right=right,
                                     mask=not drop_mask, device=self.device)
                logits.append(self.model(**batch, **self._forward_options).logits[:, 0])
                order.extend(rows)
                bar.update(len(rows))
            probabilities = torch.sigmoid(torch.cat(logits).double()).tolist() if logits else []
        scores: list[float] = [math.nan] * len(texts)
        for i, p in zip(order, probabilities):
            scores[i] = p
        return scores

    def batch_size_for(self, longest: int) -> int:
        """``batch_size``, or with ``batch_size_auto`` on a GPU the largest batch of texts up to ``longest`` tokens
        that fits the free memory (``bestofl_models.generation.backends.sizing``, at most ``max_batch_size``)."""
        if not self.batch_size_auto:
            return self.batch_size
        from ..generation.backends import sizing

        free = sizing.free_memory_bytes(self.device)
        if free is None:
            return self.batch_size
        dims = sizing.dims(self.model.config, self.model.dtype.itemsize)
        return sizing.largest_batch(free, dims, longest, "score", cap=self.max_batch_size)

    def close(self) -> None:
        from ..generation.backends.hf import free_memory

        del self.model
        free_memory()


class VLLMVerifier(_ScoresTexts):
    """A full one-logit classifier on vLLM's pooling runner."""

    def __init__(self, config: VerifierConfig, text_format: str = "bestofl", llm=None):
        from ..generation.backends.vllm import build_llm

        self.name = config.path
        self.text_format = text_format
        self.tokenizer = verifier_tokenizer(self.name, None, config.trust_remote_code)
        self.llm = llm if llm is not None else build_llm(self.name, config, generator=False, runner="pooling")

    def score(self, texts: Sequence[str], progress: bool = True) -> list[float]:
        from ..generation.backends.vllm import token_prompts

        prompts = token_prompts(self.tokenizer, texts)
        self.last_input_tokens = [len(prompt["prompt_token_ids"]) for prompt in prompts]
        outputs = self.llm.classify(prompts, use_tqdm=progress)
        return [float(output.outputs.probs[0]) for output in outputs]

    def close(self) -> None:
        from ..generation.backends.vllm import shutdown

        shutdown(self.llm)
        del self.llm


def score_responses(verifier, items: Sequence[tuple[str, str, str]], progress: bool = True) -> list[float]:
    """Score ``(question, response, lang)`` triples with any loaded verifier (``verifiers.spec.load_scorer``): a
    classifier in its text format (``verifier_text`` for ours), a judge on its prompt."""
    return verifier.score_items(items, progress=progress)


def load_verifier(config: VerifierConfig, base=UNKNOWN, text_format: str = "bestofl"):
    """The classifier ``config.path`` on the backend ``config.backend`` picks (:meth:`VerifierConfig.uses_vllm`).

    ``base``: :func:`inspect_verifier`'s answer when the caller already has it; ``text_format``: what it scores
    (a key of :data:`TEXTS`).
    """
    base = inspect_verifier(config.path, config.trust_remote_code) if base is UNKNOWN else base
    is_adapter = base is not None
    if config.uses_vllm(is_adapter):
        if is_adapter:
            raise ValueError(
                f"verifier {config.path} is a LoRA adapter, which vLLM's pooling runner cannot load with its "
                "score head; use verifier_backend=hf, or merge it (PeftModel.merge_and_unload) and save a full "
                "classifier."
            )
        return VLLMVerifier(config, text_format)
    return HFVerifier(config, base=base, text_format=text_format)
