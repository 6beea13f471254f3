"""What ``verifier=`` names, decided before anything is sampled: a classifier and its input format, or a judge.

* a classifier (our trained LoRA adapter or full classifier, or a public one-logit chat reward model):
  ``verifier_format=bestofl`` scores ``prompts.verifier_text`` (what bestofl-train trains on), ``chat`` the
  question as prompted and the candidate through the reward model's chat template (``verifier.chat_rm_text``).
  ``auto`` (the default) decides from the checkpoint, in this order: a LoRA adapter is ours (``bestofl``); a
  model card tagged ``bestofl`` (bestofl-train's export writes one) is ours; a tokenizer with a chat template
  makes a chat reward model (``chat``); otherwise ``bestofl`` (its plain text format).
* a judge: ``verifier=self`` (the generator) or ``verifier=judge:ID`` (``bestofl_models.verifiers.judge``).

The decision is logged once, recorded in the verifier identity (so scores of one format are never reused for
another) and in the results JSON (``verifier_format``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from bestofl_tasks.prompts import has_chat_template

from ..generation.model_path import looks_like_local_path
from .config import SELF_JUDGE, VerifierConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifierSpec:
    #: ``classifier`` or ``judge``.
    kind: str
    #: The model that scores (a judge's model; the classifier or adapter).
    model: str
    #: ``bestofl``, ``chat`` or ``judge``.
    format: str
    #: Version of the text it scores (part of the verifier identity).
    format_version: str
    #: An adapter's base model (None otherwise).
    base: str | None = None
    #: Why this format (``verifier_format=auto``) or ``given``.
    reason: str = "given"

    @property
    def name(self) -> str:
        """How the store names it: the classifier's id/path, or ``judge:MODEL``."""
        return self.model if self.kind == "classifier" else f"judge:{self.model}"


def model_card_tags(name: str) -> list[str]:
    """The ``tags`` of a model card's YAML front matter (``README.md``); [] when there is none to read (a Hub
    id is read from the Hub or the local cache only)."""
    import yaml

    path = os.path.join(name, "README.md")
    if not os.path.isdir(name):
        try:
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(name, "README.md")
        except Exception as exc:  # noqa: BLE001 - no card, offline and not cached, ...: no tags
            logger.debug("no model card for %s: %s", name, exc)
            return []
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return []
    if not text.startswith("---"):
        return []
    front = text[3:].split("\n---", 1)[0]
    try:
        tags = (yaml.safe_load(front) or {}).get("tags") or []
    except (yaml.YAMLError, AttributeError):
        return []
    return [str(tag) for tag in tags] if isinstance(tags, list) else []


def auto_format(name: str, base: str | None, trust_remote_code: bool = False) -> tuple[str, str]:
    """``(format, reason)`` for a classifier verifier (see the module docstring)."""
    from .checkpoint import verifier_tokenizer

    if base is not None:
        return "bestofl", "a LoRA adapter (bestofl-train's verifier)"
    if "bestofl" in model_card_tags(name):
        return "bestofl", "its model card is bestofl-train's"
    if has_chat_template(verifier_tokenizer(name, None, trust_remote_code)):
        return "chat", "a one-logit classifier whose tokenizer has a chat template (a chat reward model)"
    return "bestofl", "a classifier without a chat template (bestofl's plain verifier text)"


def _check_judge(config: VerifierConfig, model: str, generator_tokenizer) -> None:
    """The judge loads as a causal LM and its tokenizer spells yes and no as single tokens."""
    import transformers

    from .judge import answer_token_ids, judge_tokenizer

    if model != config.generator:
        if looks_like_local_path(model) and not os.path.exists(model):
            raise FileNotFoundError(f"verifier=judge:{model}: no such file or directory.")
        try:
            judge_config = transformers.AutoConfig.from_pretrained(model, trust_remote_code=config.trust_remote_code)
        except OSError as exc:
            raise OSError(f"verifier=judge:{model} cannot be loaded: {exc}") from exc
        archs = getattr(judge_config, "architectures", None) or []
        if archs and all(arch.endswith(("ForSequenceClassification", "ForTokenClassification")) for arch in archs):
            raise ValueError(f"verifier=judge:{model} is a classifier ({', '.join(archs)}), not a generative judge: "
                             f"give it as verifier={model}.")
    tokenizer = generator_tokenizer if model == config.generator and generator_tokenizer else judge_tokenizer(
        config, model)
    answer_token_ids(tokenizer, model)


def resolve_verifier(config: VerifierConfig, generator_tokenizer=None) -> VerifierSpec:
    """Check ``config.path`` (config files, tokenizers and tensor headers only, no weights) and say what it is
    and what it scores. Errors (a missing path, a wrong-shaped classifier, ``verifier_format=chat`` without a chat
    template, a judge without single yes/no tokens) come here, before any sampling."""
    from .judge import JUDGE_PROMPT_VERSION
    from .checkpoint import check_verifier, verifier_tokenizer
    from .classifier import CHAT_FORMAT, TEXT_FORMAT

    judge = config.judge_model
    if judge is not None:
        _check_judge(config, judge, generator_tokenizer)
        reason = "the generator as judge" if config.path == SELF_JUDGE else "a generative judge"
        return VerifierSpec("judge", judge, "judge", JUDGE_PROMPT_VERSION, reason=reason)
    base = check_verifier(config)
    fmt, reason = config.format, "given"
    if fmt == "auto":
        fmt, reason = auto_format(config.path, base, config.trust_remote_code)
    elif fmt == "chat" and not has_chat_template(verifier_tokenizer(config.path, base, config.trust_remote_code)):
        raise ValueError(f"verifier_format=chat: the tokenizer of {config.path} has no chat template to put the "
                         "question and candidate through; use verifier_format=bestofl.")
    version = CHAT_FORMAT if fmt == "chat" else TEXT_FORMAT
    return VerifierSpec("classifier", config.path, fmt, version, base=base, reason=reason)


def log_choice(config, spec: VerifierSpec) -> None:
    """One log line when the verifier was defaulted to ``self`` or its format decided by ``auto``."""
    if config.verifier_defaulted:
        logger.info("bestofl: no verifier= given, so selection=%s scores with the generator as a yes/no judge "
                    "(verifier=self); a trained cross-lingual verifier (bestofl-train) is the recommended choice.",
                    config.selection)
    elif spec.reason != "given" and spec.kind == "classifier":
        logger.info("bestofl: verifier %s is scored as verifier_format=%s: %s.", spec.model, spec.format, spec.reason)


def load_scorer(config: VerifierConfig, spec: VerifierSpec):
    """The loaded verifier: ``score_items([(question, response, lang)], progress) -> scores`` and ``close()``."""
    if spec.kind == "judge":
        from .judge import load_judge

        return load_judge(config, spec.model)
    from .classifier import load_verifier

    return load_verifier(config, spec.base, text_format=spec.format)
