"""The outcome reward model: P(correct | question, response) from a one-logit sequence classifier.

``verifier=`` is either a PEFT LoRA adapter (``adapter_config.json``; its base is loaded as
``AutoModelForSequenceClassification(num_labels=1)``) or a full one-logit classifier, as a local path or a
Hub id. The scored text is always :func:`bestofl_tasks.prompts.verifier_text` with the candidate's own
language and question, so training and evaluation see the same input.

Backends: transformers (any verifier), or vLLM's pooling runner (``LLM(runner="pooling").classify``, sigmoid
applied by vLLM for one label) for a full classifier when ``backend=vllm``; vLLM cannot load a LoRA adapter
with a trained score head, so adapters always use transformers (merge the adapter to use vLLM).
"""

from __future__ import annotations

import gc
import logging
import math
import os
from typing import Sequence

from tqdm.auto import tqdm

from bestofl_tasks.prompts import verifier_text

from .config import looks_like_local_path

logger = logging.getLogger(__name__)


def adapter_base(name: str) -> str | None:
    """The base model of a PEFT adapter, or None if ``name`` is not an adapter.

    Verifiers load at their default revision: ``revision=`` in ``--model_args`` is the generator's."""
    if os.path.isdir(name):
        if not os.path.isfile(os.path.join(name, "adapter_config.json")):
            return None
    from peft import PeftConfig

    try:
        config = PeftConfig.from_pretrained(name)
    except (ValueError, OSError) as exc:  # not an adapter (no adapter_config.json on the Hub)
        if os.path.isdir(name):
            raise
        logger.debug("%s is not a PEFT adapter (%s)", name, exc)
        return None
    return config.base_model_name_or_path


def check_one_logit(name: str, config) -> None:
    labels = getattr(config, "num_labels", None)
    if labels != 1:
        raise ValueError(
            f"verifier {name} is a classifier with {labels} outputs; bestofl needs a one-logit outcome reward "
            "model (AutoModelForSequenceClassification with num_labels=1, scored with a sigmoid)."
        )


def check_verifier(config) -> None:
    """Fail before any sampling if ``config.verifier`` cannot be loaded: a path that does not exist, a Hub id
    that cannot be resolved (e.g. offline and not cached), an adapter whose base cannot be resolved, or a
    classifier with more than one output. Reads configuration files only, no weights."""
    name = config.verifier
    if not name:
        return
    if looks_like_local_path(name) and not os.path.exists(name):
        raise FileNotFoundError(
            f"verifier={name}: no such file or directory (give a LoRA adapter directory with adapter_config.json, "
            "a classifier directory with config.json, or a Hub id)."
        )
    import transformers

    common = {"trust_remote_code": config.trust_remote_code}
    try:
        base = adapter_base(name)
        if base is None:
            check_one_logit(name, transformers.AutoConfig.from_pretrained(name, **common))
    except OSError as exc:
        raise OSError(f"verifier={name} cannot be loaded (not a local directory, nor a Hub id it can resolve): "
                      f"{exc}") from exc
    if base is None:
        return
    try:
        transformers.AutoConfig.from_pretrained(base, **common)
    except OSError as exc:
        raise OSError(f"verifier={name} is a LoRA adapter whose base model {base} cannot be loaded: {exc}") from exc


def prepare_verifier_tokenizer(tokenizer):
    """Make ``tokenizer`` ready for one-logit scoring (harness and training alike): pad with the EOS token when it
    has no pad token, pad on the right (the classifier pools the last non-pad token). Changes it in place and
    returns it."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def load_seqcls(base: str, adapter: str | None = None, dtype=None, trust_remote_code: bool = False,
                pad_token_id: int | None = None, **from_pretrained_kwargs):
    """``AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)``, wrapped in the PEFT adapter
    ``adapter`` when given (``PeftModel.from_pretrained``, not merged).

    ``base`` is a one-logit classifier (the harness's full verifier) or any model to put a fresh one-logit head
    on (training's causal LM base). ``dtype``: a torch dtype, a name (``"bfloat16"``), ``"auto"`` or None (the
    transformers default). ``pad_token_id`` (from :func:`prepare_verifier_tokenizer`'s tokenizer) is set on the
    model's config and, for an adapter, on its base model's config too. Further keyword arguments go to
    ``from_pretrained`` (e.g. ``problem_type``). Returns the model in train mode on the CPU, as loaded."""
    import transformers

    kwargs = {"trust_remote_code": trust_remote_code, "num_labels": 1, **from_pretrained_kwargs}
    if dtype is not None:
        from lm_eval.models.utils_hf import get_dtype

        kwargs["dtype"] = get_dtype(dtype)
    if pad_token_id is not None:
        kwargs["pad_token_id"] = pad_token_id
    model = transformers.AutoModelForSequenceClassification.from_pretrained(base, **kwargs)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    if pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
        base_model = model.get_base_model() if hasattr(model, "get_base_model") else model
        base_model.config.pad_token_id = pad_token_id
    return model


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices into ``lengths`` in batches of ``batch_size``, longest first: similar lengths share a batch, so
    little of each batch is padding (``benchmarks/padding_efficiency.py`` measures how little)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


_UNKNOWN = object()


class HFVerifier:
    """transformers (+ peft) verifier scoring length-sorted batches."""

    def __init__(self, config, base=_UNKNOWN):
        """``base``: :func:`adapter_base` of ``config.verifier`` when the caller already read it."""
        import torch
        import transformers

        from .backends.hf import pick_device

        self.name = config.verifier
        self.batch_size = config.verifier_batch_size
        self.device = pick_device(config.device)
        common = {"trust_remote_code": config.trust_remote_code}
        base = adapter_base(self.name) if base is _UNKNOWN else base
        if base is None:
            check_one_logit(self.name, transformers.AutoConfig.from_pretrained(self.name, **common))
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.name, **common)
        else:
            try:
                self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.name, **common)
            except (OSError, ValueError):  # adapters often ship without a tokenizer
                self.tokenizer = transformers.AutoTokenizer.from_pretrained(base, **common)
        prepare_verifier_tokenizer(self.tokenizer)
        model = load_seqcls(
            self.name if base is None else base,
            adapter=None if base is None else self.name,
            dtype=config.dtype,
            trust_remote_code=config.trust_remote_code,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        self.model = model.to(self.device).eval()
        self._torch = torch

    def score(self, texts: Sequence[str], progress: bool = True) -> list[float]:
        """Sigmoid probability per text; batches go longest first (an out-of-memory shows up at once)."""
        from .backends import add_special_tokens

        torch = self._torch
        special = add_special_tokens(self.tokenizer)
        lengths = [len(self.tokenizer.encode(t, add_special_tokens=special)) for t in texts]
        scores: list[float] = [math.nan] * len(texts)
        with tqdm(total=len(texts), desc="bestofl: scoring", unit="cand", disable=not progress) as bar:
            for rows in length_sorted_batches(lengths, self.batch_size):
                batch = self.tokenizer(
                    [texts[i] for i in rows], return_tensors="pt", padding=True, add_special_tokens=special
                ).to(self.device)
                with torch.inference_mode():
                    logits = self.model(**batch).logits
                for i, p in zip(rows, torch.sigmoid(logits[:, 0].float()).tolist()):
                    scores[i] = p
                bar.update(len(rows))
        return scores

    def close(self) -> None:
        del self.model
        gc.collect()
        if self._torch.cuda.is_available():
            self._torch.cuda.empty_cache()


class VLLMVerifier:
    """A full one-logit classifier on vLLM's pooling runner."""

    def __init__(self, config):
        import transformers

        from .backends.vllm import build_llm

        self.name = config.verifier
        common = {"trust_remote_code": config.trust_remote_code}
        check_one_logit(self.name, transformers.AutoConfig.from_pretrained(self.name, **common))
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.name, **common)
        self.llm = build_llm(self.name, config, generator=False, runner="pooling")

    def score(self, texts: Sequence[str], progress: bool = True) -> list[float]:
        from .backends.vllm import token_prompts

        outputs = self.llm.classify(token_prompts(self.tokenizer, texts), use_tqdm=progress)
        return [float(output.outputs.probs[0]) for output in outputs]

    def close(self) -> None:
        from .backends.vllm import shutdown

        shutdown(self.llm)
        del self.llm


def score_responses(verifier, items: Sequence[tuple[str, str, str]], progress: bool = True) -> list[float]:
    """Score ``(question, response, lang)`` triples: the text is ``verifier_text`` with the verifier's tokenizer."""
    texts = [verifier_text(verifier.tokenizer, question, response, lang) for question, response, lang in items]
    return verifier.score(texts, progress=progress)


def load_verifier(config):
    """The verifier named by ``config.verifier`` on the backend ``config.verifier_backend`` picks.

    ``auto``: vLLM when ``backend=vllm`` and the verifier is a full classifier, transformers otherwise.
    """
    choice = config.verifier_backend
    base = adapter_base(config.verifier)
    is_adapter = base is not None
    if choice == "auto":
        choice = "vllm" if config.backend == "vllm" and not is_adapter else "hf"
    if choice == "vllm":
        if is_adapter:
            raise ValueError(
                f"verifier {config.verifier} is a LoRA adapter, which vLLM's pooling runner cannot load with its "
                "score head; use verifier_backend=hf, or merge it (PeftModel.merge_and_unload) and save a full "
                "classifier."
            )
        return VLLMVerifier(config)
    return HFVerifier(config, base=base)
