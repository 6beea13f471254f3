"""What a verifier checkpoint is and how it loads: a PEFT LoRA adapter over a sequence classifier or a full
one-logit classifier (``inspect_verifier``, ``check_verifier``: read from configs, before any weights), its
tokenizer, ``load_seqcls`` (shared with ``bestofl-train fit``) and merging an adapter for inference. The
scorers built on it are in :mod:`.classifier`."""

from __future__ import annotations

import logging
import os

from ..generation.model_path import looks_like_local_path

logger = logging.getLogger(__name__)


def _adapter_config(name: str):
    """The PEFT config of an adapter, or None if ``name`` is not an adapter.

    Verifiers load at their default revision: ``revision=`` in ``--model_args`` is the generator's."""
    if os.path.isdir(name):
        if not os.path.isfile(os.path.join(name, "adapter_config.json")):
            return None
    from peft import PeftConfig

    try:
        return PeftConfig.from_pretrained(name)
    except (ValueError, OSError) as exc:  # not an adapter (no adapter_config.json on the Hub)
        if os.path.isdir(name):
            raise
        logger.debug("%s is not a PEFT adapter (%s)", name, exc)
        return None


def check_one_logit(name: str, config) -> None:
    labels = getattr(config, "num_labels", None)
    if labels != 1:
        raise ValueError(
            f"verifier {name} is a classifier with {labels} outputs; bestofl needs a one-logit outcome reward "
            "model (AutoModelForSequenceClassification with num_labels=1, scored with a sigmoid)."
        )


def _is_sequence_classifier(config) -> bool:
    return any(arch.endswith("ForSequenceClassification") for arch in getattr(config, "architectures", None) or ())


def _check_classifier(name: str, config) -> None:
    """A full verifier must be a sequence classifier (a causal LM would get a random head) with one output."""
    if not _is_sequence_classifier(config):
        archs = ", ".join(getattr(config, "architectures", None) or ["no architectures in config.json"])
        raise ValueError(
            f"verifier {name} is not a sequence classifier ({archs}): loaded as one, its score head would be "
            "random. Give a one-logit AutoModelForSequenceClassification checkpoint, or a SEQ_CLS LoRA adapter "
            "(bestofl-train builds both)."
        )
    check_one_logit(name, config)


def _adapter_head_rows(adapter: str) -> list[int] | None:
    """Output rows of the classification head an adapter saved (``score``/``classifier`` in modules_to_save);
    None when it cannot be read without downloading (a Hub adapter)."""
    path = os.path.join(adapter, "adapter_model.safetensors")
    if not os.path.isfile(path):
        return None
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        return [f.get_slice(key).get_shape()[0] for key in f.keys()
                if key.endswith(("score.weight", "classifier.weight", "classifier.out_proj.weight"))]


def inspect_verifier(name: str, trust_remote_code: bool = False) -> str | None:
    """Check by what it is that ``name`` can score as a one-logit verifier, reading configuration files and
    tensor headers only (no weights); return the adapter's base model, or None for a full classifier.

    A full checkpoint must be a sequence classifier with one output; an adapter must be a SEQ_CLS adapter whose
    base is a one-output classifier, or a causal LM with the adapter carrying a one-row score head."""
    import transformers

    common = {"trust_remote_code": trust_remote_code}
    try:
        peft_config = _adapter_config(name)
        if peft_config is None:
            _check_classifier(name, transformers.AutoConfig.from_pretrained(name, **common))
            return None
    except OSError as exc:
        raise OSError(f"verifier={name} cannot be loaded (not a local directory, nor a Hub id it can resolve): "
                      f"{exc}") from exc
    task_type = str(getattr(peft_config, "task_type", None) or "none")
    if task_type.upper().removeprefix("TASKTYPE.") != "SEQ_CLS":
        raise ValueError(
            f"verifier {name} is a {task_type} LoRA adapter, not a reward model: bestofl needs a SEQ_CLS adapter "
            "with a one-logit head (bestofl-train fit builds one)."
        )
    base = peft_config.base_model_name_or_path
    try:
        base_config = transformers.AutoConfig.from_pretrained(base, **common)
    except OSError as exc:
        raise OSError(f"verifier={name} is a LoRA adapter whose base model {base} cannot be loaded: {exc}") from exc
    if _is_sequence_classifier(base_config):
        check_one_logit(f"{name} (its base {base})", base_config)
        return base
    rows = _adapter_head_rows(name)
    if rows is not None and not rows:
        raise ValueError(
            f"verifier {name} is a SEQ_CLS adapter on the causal LM {base} but saved no classification head "
            "(modules_to_save=['score']): its score head would be random."
        )
    if rows and any(r != 1 for r in rows):
        raise ValueError(f"verifier {name}: its saved classification head has {rows[0]} outputs; bestofl needs "
                         "one (num_labels=1, scored with a sigmoid).")
    return base


def check_verifier(config) -> str | None:
    """Fail before any sampling if the classifier ``config.path`` (a :class:`VerifierConfig`) cannot be loaded or is not a one-logit verifier: a path
    that does not exist, a Hub id that cannot be resolved (e.g. offline and not cached), an adapter whose base
    cannot be resolved, a checkpoint that is not a one-output sequence classifier (see :func:`inspect_verifier`).
    Reads configuration files and tensor headers only, no weights. Returns the adapter's base (None: a full
    classifier)."""
    name = config.path
    if looks_like_local_path(name) and not os.path.exists(name):
        raise FileNotFoundError(
            f"verifier={name}: no such file or directory (give a LoRA adapter directory with adapter_config.json, "
            "a classifier directory with config.json, or a Hub id)."
        )
    return inspect_verifier(name, config.trust_remote_code)


def prepare_verifier_tokenizer(tokenizer):
    """Make ``tokenizer`` ready for one-logit scoring (harness and training alike): pad with the EOS token when it
    has no pad token, pad on the right (the classifier pools the last non-pad token). Changes it in place and
    returns it."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


#: Module names of the one-logit heads transformers' sequence classifiers put on a backbone.
HEAD_MODULES = ("score", "classifier")


def _is_head_key(key: str) -> bool:
    return any(part in HEAD_MODULES for part in key.split("."))


class _LoadReports(logging.Filter):
    """Holds back transformers' LOAD REPORT warnings (they are re-emitted unless they only say what is expected)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if "LOAD REPORT" in record.getMessage():
            self.records.append(record)
            return False
        return True


def load_seqcls(base: str, adapter: str | None = None, dtype=None, trust_remote_code: bool = False,
                pad_token_id: int | None = None, new_head: bool = False, **from_pretrained_kwargs):
    """``AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)``, wrapped in the PEFT adapter
    ``adapter`` when given (``PeftModel.from_pretrained``, not merged).

    ``base`` is a one-logit classifier (the harness's full verifier), the base of an adapter that carries its own
    head, or (``new_head=True``: training) any model to put a fresh one-logit head on. A head missing from the
    checkpoint is an error unless the adapter or ``new_head`` supplies it; transformers' LOAD REPORT is shown only
    when it reports something else (a missing backbone weight, a size mismatch), so loading our own verifiers
    prints no false "newly initialized" alarm. ``dtype``: a torch dtype, a name (``"bfloat16"``), ``"auto"`` or
    None (the transformers default). ``pad_token_id`` (from :func:`prepare_verifier_tokenizer`'s tokenizer) is set
    on the model's config and, for an adapter, on its base model's config too. Further keyword arguments go to
    ``from_pretrained`` (e.g. ``problem_type``). Returns the model in train mode on the CPU, as loaded."""
    import transformers

    kwargs = {"trust_remote_code": trust_remote_code, "num_labels": 1, **from_pretrained_kwargs}
    if dtype is not None:
        from lm_eval.models.utils_hf import get_dtype

        kwargs["dtype"] = get_dtype(dtype)
    if pad_token_id is not None:
        kwargs["pad_token_id"] = pad_token_id
    reports = _LoadReports()
    source = logging.getLogger("transformers.modeling_utils")
    source.addFilter(reports)
    try:
        model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
            base, output_loading_info=True, **kwargs)
    finally:
        source.removeFilter(reports)
    missing = list(info.get("missing_keys") or ())
    head_missing = [key for key in missing if _is_head_key(key)]
    if head_missing and adapter is None and not new_head:
        raise ValueError(f"verifier {base}: its checkpoint has no trained score head ({', '.join(head_missing)} "
                         "missing), so its scores would come from a random head. Give the trained classifier or "
                         "its LoRA adapter.")
    expected = set(head_missing)
    unexpected = [key for key in info.get("unexpected_keys") or () if not key.startswith("lm_head.")]
    if set(missing) - expected or unexpected or info.get("mismatched_keys") or info.get("error_msgs"):
        for record in reports.records:
            source.handle(record)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
        if head_missing and not _adapter_saves_head(model):
            raise ValueError(f"verifier {adapter}: the adapter does not save a score head (modules_to_save) and its "
                             f"base {base} has none: its scores would come from a random head.")
    elif head_missing:
        logger.info("%s: a fresh one-logit head is put on the model (it is what training fits).", base)
    if pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
        base_model = model.get_base_model() if hasattr(model, "get_base_model") else model
        base_model.config.pad_token_id = pad_token_id
    return model


def _adapter_saves_head(model) -> bool:
    """Whether a loaded PEFT model carries its own trained head (``modules_to_save`` naming it)."""
    return any(name in HEAD_MODULES for config in model.peft_config.values()
               for name in (getattr(config, "modules_to_save", None) or ()))


def is_causal_decoder(model) -> bool:
    """Whether every attention layer of ``model`` is causal (a decoder-only model). Then, padded on the right, no
    real token attends to a pad, and a batch scores the same without its padding mask."""
    flags = [module.is_causal for module in model.modules() if isinstance(getattr(module, "is_causal", None), bool)]
    return bool(flags) and all(flags) and not getattr(model.config, "is_encoder_decoder", False)


UNKNOWN = object()


def verifier_tokenizer(name: str, base: str | None, trust_remote_code: bool = False):
    """A classifier's tokenizer; an adapter's own, else its base's (adapters often ship without one)."""
    import transformers

    common = {"trust_remote_code": trust_remote_code}
    if base is None:
        return transformers.AutoTokenizer.from_pretrained(name, **common)
    try:
        return transformers.AutoTokenizer.from_pretrained(name, **common)
    except (OSError, ValueError):
        return transformers.AutoTokenizer.from_pretrained(base, **common)


def merge_for_inference(model, name: str = "verifier"):
    """``(model, merged)``: a loaded PEFT LoRA model with its adapter merged into the base weights
    (``merge_and_unload``) when peft can merge it, else the model unchanged and False.

    The merge changes the copy in memory only, never the files it was loaded from. Unmerged, every one of the
    adapted projections runs two extra small matmuls, and peft computes them in the adapter's dtype (float32 for an
    adapter trained over float32 weights, so the bf16 activations are cast up and back at each one); merged, a
    forward is the base model's own. The merged weights round once to the model's dtype, so scores move by
    rounding only (``benchmarks/scoring_overhead.py`` reports the largest difference)."""
    if not hasattr(model, "merge_and_unload"):
        return model, False
    try:
        return model.merge_and_unload(), True
    except Exception as exc:  # e.g. a quantized base peft cannot merge into: score through the adapter
        logger.info("%s: the adapter is not merged for inference (%s); scoring runs through peft", name, exc)
        return model, False


def accepts(function, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
