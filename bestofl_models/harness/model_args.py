"""``--model_args`` of the harness models, parsed and validated before anything is loaded.

lm-eval hands ``--model_args`` over as keyword arguments: strings already cast by
``lm_eval.utils.handle_arg_string`` (``"4"`` -> 4, ``"true"`` -> True, ``"none"`` -> None) from the CLI,
or any typed values from ``simple_evaluate(model_args={...})``. :func:`parse_model_args` accepts both.

Defaults chosen here (documented in the README):

* ``temperature=0.7``, ``top_p=1.0``: plain temperature sampling; ``temperature=0`` is greedy decoding and
  is refused when a language would get more than one sample (they would all be identical).
* ``n=8``: one sample per language of the paper's pool; the same budget for the target-only presets.
* ``store``: ``$BESTOFL_STORE`` or ``~/.cache/bestofl/store``; ``store=none`` keeps candidates in memory only
  (nothing is reused across runs); an empty ``store=`` is an error. ``read_stores=A:B`` reuses what other
  stores hold (read only; copied into ``store`` when used).
* ``batch_size``: lm-eval's ``--batch_size`` (``1`` unless given) unless ``batch_size=`` is in ``--model_args``,
  which wins; ``auto`` means the backend's default (:data:`AUTO_BATCH_SIZE`).
* ``keep_generator=false``: the generator is freed before the verifier loads (they may share one GPU).
* ``languages=auto:FILE``: the pool a ``bestofl-report recommend-pool`` file (or its folder) names, read here.
* ``adaptive=RULE`` (``bestofl_models.selection.adaptive``): sample in rounds and stop a problem once the rule holds; off
  by default (every problem gets ``n``).
* ``translator=self``: tasks without parallel versions (lm-eval's ``gsm8k``, ...) get their question translated
  into the pool's languages by the generator (``bestofl_models.generation.translation``); ``translator=ID`` uses a seq2seq
  MT model, ``translator=none`` samples such tasks' own prompt only.
* ``verifier``: a selection that needs one and no ``verifier=`` uses ``self`` (the generator as a yes/no judge,
  ``bestofl_models.verifiers.judge``); ``verifier_format=auto`` decides a classifier's input format from the checkpoint
  (``bestofl_models.verifiers.spec``).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

from bestofl_tasks.languages import DEFAULT_POOL, LANGUAGES, NLLB_CODES

from ..errors import ModelArgsError
from ..generation.model_path import check_local_model, normalize_model_path
from ..selection.adaptive import AdaptiveRule
from ..selection.pool import RecommendedPool, load_recommended_pool
from .presets import PRESETS, Preset
from ..selection.methods import METHODS
from ..verifiers.config import JUDGE_PREFIX, SELF_JUDGE, VerifierConfig

logger = logging.getLogger(__name__)

BACKENDS = ("hf", "vllm")
VERIFIER_BACKENDS = ("auto", "hf", "vllm")
#: ``verifier_format``: ``bestofl`` is our trained verifiers' text, ``chat`` a reward model's own chat template.
VERIFIER_FORMATS = ("auto", "bestofl", "chat")
#: Candidates per backend call when ``batch_size`` is ``auto``.
AUTO_BATCH_SIZE = {"hf": 16, "vllm": 512}
STORE_ENV = "BESTOFL_STORE"


def default_store() -> str:
    """``$BESTOFL_STORE`` or ``~/.cache/bestofl/store``."""
    return os.environ.get(STORE_ENV) or str(Path.home() / ".cache" / "bestofl" / "store")


@dataclass(frozen=True)
class BestOfLConfig:
    pretrained: str
    preset: str = "bestofl"
    backend: str = "hf"
    verifier: str | None = None
    verifier_format: str = "auto"
    #: True when no ``verifier=`` was given and a selection that needs one defaulted to ``self``.
    verifier_defaulted: bool = False
    languages: tuple[str, ...] = DEFAULT_POOL
    #: The ``bestofl-report recommend-pool`` file ``languages=auto:FILE`` read (None: languages given directly).
    pool_file: RecommendedPool | None = None
    pool: str = "languages"
    selection: str = "cross_orm"
    n: int = 8
    #: ``adaptive=``: the early stopping rule (None: every problem gets ``n`` samples).
    adaptive: AdaptiveRule | None = None
    temperature: float = 0.7
    top_p: float = 1.0
    max_gen_toks: int = 512
    seed: int = 1234
    store: str | None = None
    #: Further stores to reuse candidates and scores from (read only; what they hold is copied into ``store``).
    read_stores: tuple[str, ...] = ()
    batch_size: int = AUTO_BATCH_SIZE["hf"]
    verifier_batch_size: int = 16
    #: ``batch_size`` / ``verifier_batch_size`` were ``auto`` (or not given): on a GPU the hf backend and verifier
    #: size their batches to the free memory (``bestofl_models.generation.backends.sizing``), at most ``max_batch_size``
    #: when lm-eval's ``--max_batch_size`` is given; on a CPU (and on vLLM, which batches itself) the sizes above.
    batch_size_auto: bool = False
    verifier_batch_size_auto: bool = False
    max_batch_size: int | None = None
    dtype: str = "auto"
    device: str | None = None
    trust_remote_code: bool = False
    keep_generator: bool = False
    verifier_backend: str = "auto"
    #: ``self`` (the generator), an MT model's id or path, or None (``translator=none``: no translation).
    translator: str | None = "self"
    #: Options handed to the backend as they are (``tensor_parallel_size``, ``max_model_len``, ...).
    backend_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def judge_model(self) -> str | None:
        """The judge's model for ``verifier=self`` / ``judge:ID``; None for a classifier verifier."""
        return self.verifier_config().judge_model if self.verifier else None

    def verifier_config(self) -> VerifierConfig:
        """The verifier's own settings (``verifier``, ``verifier_format``, ``verifier_batch_size``,
        ``verifier_backend``, and the run's dtype, device and engine options)."""
        if not self.verifier:
            raise ValueError(f"selection={self.selection} uses no verifier, and none was given.")
        return VerifierConfig(
            path=self.verifier, format=self.verifier_format, dtype=self.dtype, device=self.device,
            batch_size=self.verifier_batch_size, batch_size_auto=self.verifier_batch_size_auto,
            max_batch_size=self.max_batch_size, backend=self.verifier_backend,
            trust_remote_code=self.trust_remote_code, generator=self.pretrained, generator_backend=self.backend,
            backend_options=self.backend_options, seed=self.seed)

    @property
    def needs_verifier(self) -> bool:
        return METHODS[self.selection].needs_verifier

    def pool_for(self, target_lang: str) -> tuple[str, ...]:
        """Languages to sample in for a request whose target language is ``target_lang``."""
        return (target_lang,) if self.pool == "target" else self.languages

    def sampling_settings(self) -> dict[str, Any]:
        """The settings that define a candidate (part of its store key)."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_gen_toks": self.max_gen_toks,
            "seed": self.seed,
        }

    def summary(self) -> dict[str, Any]:
        """JSON-friendly view for lm-eval's results ``config`` block."""
        return {
            "preset": self.preset,
            "pretrained": self.pretrained,
            "backend": self.backend,
            "verifier": self.verifier,
            "verifier_format": self.verifier_format,
            "selection": self.selection,
            "pool": list(self.languages) if self.pool == "languages" else "target",
            "languages_file": self.pool_file.file if self.pool_file else None,
            "n": self.n,
            "adaptive": str(self.adaptive) if self.adaptive else None,
            "translator": self.translator,
            **self.sampling_settings(),
            "store": self.store,
            "read_stores": list(self.read_stores),
        }


# ----------------------------------------------------------------------------------------------- converters


def _as_str(key: str, value: Any) -> str:
    if isinstance(value, (str, os.PathLike)):
        text = str(value).strip()
        if text:
            return text
    raise ModelArgsError(f"{key} must be a non-empty string, got {value!r}.")


def _as_optional_str(key: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    return _as_str(key, value)


def _as_store(key: str, value: Any) -> str | None:
    """A directory, or None for ``none`` (in memory). An empty value is an error: ``store=$UNSET`` must not
    silently store nothing."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    if isinstance(value, str) and not value.strip():
        raise ModelArgsError(f"{key}= is empty; give a directory (store=path/to/store), or store=none to keep "
                         "candidates in memory only (nothing reused across runs).")
    return _as_str(key, value)


def _as_paths(key: str, value: Any) -> tuple[str, ...]:
    parts = value.split(":") if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    if parts is None or not all(isinstance(p, (str, os.PathLike)) and str(p).strip() for p in parts):
        raise ModelArgsError(f"{key} must be directories separated by ':' (e.g. {key}=/a/store:/b/store), got {value!r}.")
    missing = [str(p) for p in parts if not os.path.isdir(os.path.expanduser(str(p).strip()))]
    if missing:
        raise ModelArgsError(f"{key}: no store directory at {', '.join(missing)}.")
    return tuple(str(Path(str(p).strip()).expanduser().resolve()) for p in parts)


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ModelArgsError(f"{key} must be an integer, got {value!r}.")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ModelArgsError(f"{key} must be an integer, got {value!r}.")


def _as_float(key: str, value: Any) -> float:
    if not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if math.isfinite(number):
            return number
    raise ModelArgsError(f"{key} must be a finite number, got {value!r}.")


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ModelArgsError(f"{key} must be true or false, got {value!r}.")


def _as_languages(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        codes = [code.strip() for code in value.split(":")]
    elif isinstance(value, (list, tuple)):
        codes = [str(code).strip() for code in value]
    else:
        raise ModelArgsError(f"{key} must be language codes separated by ':' (e.g. en:de:fr), got {value!r}.")
    codes = [code for code in codes if code]
    if not codes:
        raise ModelArgsError(f"{key} is empty; give language codes separated by ':' (e.g. en:de:fr).")
    unknown = [code for code in codes if code not in LANGUAGES]
    if unknown:
        raise ModelArgsError(
            f"{key}: unknown language code(s) {', '.join(unknown)}. Supported: {', '.join(LANGUAGES)}."
        )
    duplicates = sorted({code for code in codes if codes.count(code) > 1})
    if duplicates:
        raise ModelArgsError(f"{key}: language(s) {', '.join(duplicates)} listed twice.")
    return tuple(codes)


def _as_adaptive(key: str, value: Any) -> AdaptiveRule | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "off")):
        return None
    try:
        return AdaptiveRule.parse(str(value))
    except ValueError as exc:
        raise ModelArgsError(str(exc)) from None


def _recommended_pool(value: str) -> RecommendedPool:
    """``languages=auto:FILE``: the pool file (or its folder) read now, so a bad one fails before loading."""
    path = value.strip()[len("auto:"):].strip()
    if not path:
        raise ModelArgsError("languages=auto: needs a file after the colon: languages=auto:FOLDER/recommended_pool.json "
                             "(written by bestofl-report recommend-pool), or the folder holding it.")
    try:
        return load_recommended_pool(path)
    except ValueError as exc:
        raise ModelArgsError(str(exc)) from None


def _as_translator(key: str, value: Any) -> str | None:
    """``self``, None for ``none``/``off``, or an MT model (a local path made absolute)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "off")):
        return None
    text = _as_str(key, value)
    return text.lower() if text.lower() == "self" else normalize_model_path(text)


def _as_batch_size(key: str, value: Any) -> int | None:
    """An integer >= 1, or None for ``auto``/``auto:N``."""
    if isinstance(value, str) and value.strip().lower().startswith("auto"):
        return None
    size = _as_int(key, value)
    if size < 1:
        raise ModelArgsError(f"{key} must be >= 1 or 'auto', got {size}.")
    return size


def _choice(options: tuple[str, ...]) -> Callable[[str, Any], str]:
    def convert(key: str, value: Any) -> str:
        text = _as_str(key, value).lower()
        if text not in options:
            raise ModelArgsError(f"{key}={value!r} is not one of: {', '.join(options)}.")
        return text

    return convert


def _as_selection(key: str, value: Any) -> str:
    text = _as_str(key, value).lower().replace("-", "_")
    if text not in METHODS:
        raise ModelArgsError(f"{key}={value!r} is not a selection method. Choose one of: {', '.join(METHODS)}.")
    return text


#: Our own keys and how each value is read.
CORE_KEYS: dict[str, Callable[[str, Any], Any]] = {
    "pretrained": _as_str,
    "backend": _choice(BACKENDS),
    "verifier": _as_optional_str,
    "verifier_format": _choice(VERIFIER_FORMATS),
    "languages": _as_languages,
    "selection": _as_selection,
    "n": _as_int,
    "adaptive": _as_adaptive,
    "temperature": _as_float,
    "top_p": _as_float,
    "max_gen_toks": _as_int,
    "seed": _as_int,
    "store": _as_store,
    "read_stores": _as_paths,
    "batch_size": _as_batch_size,
    "verifier_batch_size": _as_batch_size,
    "dtype": _as_str,
    "device": _as_optional_str,
    "trust_remote_code": _as_bool,
    "keep_generator": _as_bool,
    "verifier_backend": _choice(VERIFIER_BACKENDS),
    "translator": _as_translator,
}
#: Options passed through to one backend only (``vllm.LLM`` or transformers' ``from_pretrained``).
PASS_THROUGH_KEYS: dict[str, tuple[tuple[str, ...], Callable[[str, Any], Any]]] = {
    "tensor_parallel_size": (("vllm",), _as_int),
    "data_parallel_size": (("vllm",), _as_int),
    "gpu_memory_utilization": (("vllm",), _as_float),
    "max_model_len": (("vllm",), _as_int),
    "max_num_seqs": (("vllm",), _as_int),
    "enforce_eager": (("vllm",), _as_bool),
    "swap_space": (("vllm",), _as_float),
    "quantization": (("vllm",), _as_str),
    "kv_cache_dtype": (("vllm",), _as_str),
    "enable_prefix_caching": (("vllm",), _as_bool),
    "attn_implementation": (("hf",), _as_str),
    "revision": (("hf", "vllm"), _as_str),
}
#: Keys lm-eval itself adds (``--max_batch_size``); accepted, and used only to cap ``batch_size=auto``.
HARNESS_KEYS = ("max_batch_size",)
VALID_KEYS = (*CORE_KEYS, *PASS_THROUGH_KEYS, *HARNESS_KEYS)


def _cap(size: int, cap: Any) -> int:
    return min(size, _as_int("max_batch_size", cap)) if cap is not None else size


def parse_model_args(
    model_args: Mapping[str, Any],
    preset: Preset | str = "bestofl",
    harness_args: Mapping[str, Any] | None = None,
) -> BestOfLConfig:
    """Validate ``--model_args`` (and lm-eval's ``batch_size``/``max_batch_size``/``device``) into a config.

    ``model_args`` wins over ``harness_args`` for the same key (lm-eval always passes ``batch_size``).
    Every problem raises a ValueError that says what to change.
    """
    preset = PRESETS[preset] if isinstance(preset, str) else preset
    harness = {k: v for k, v in (harness_args or {}).items() if v is not None}
    raw = {**harness, **dict(model_args)}

    unknown = sorted(key for key in raw if key not in VALID_KEYS)
    if unknown:
        raise ModelArgsError(
            f"Unknown --model_args key(s) for --model {preset.name}: {', '.join(unknown)}. "
            f"Valid keys: {', '.join(VALID_KEYS)}."
        )
    if raw.get("pretrained") is None:
        raise ModelArgsError(
            f"--model {preset.name} needs pretrained=<generator id or path>, "
            "e.g. --model_args pretrained=Qwen/Qwen2.5-7B-Instruct,verifier=<adapter>."
        )

    pool_file = None
    if isinstance(raw.get("languages"), str) and raw["languages"].strip().lower().startswith("auto:"):
        pool_file = _recommended_pool(raw["languages"])
        raw["languages"] = pool_file.pool  # checked against the known codes like any pool
    values = {key: CORE_KEYS[key](key, raw[key]) for key in CORE_KEYS if key in raw}
    backend = values.get("backend", "hf")
    options = {}
    for key, (backends, convert) in PASS_THROUGH_KEYS.items():
        if key in raw:
            if backend not in backends:
                raise ModelArgsError(
                    f"{key} applies to backend={'/'.join(backends)} only; "
                    f"remove it or set backend={backends[0]} (now backend={backend})."
                )
            options[key] = convert(key, raw[key])

    if "store" in raw:
        store = values["store"]
    else:
        store = default_store()
    selection = values.get("selection", preset.selection)
    languages = values.get("languages", DEFAULT_POOL)
    if preset.pool == "target" and "languages" in raw:
        logger.warning(
            "--model %s samples in the target language only; languages=%s is ignored "
            "(use --model bestofl,selection=%s to sample over a pool).",
            preset.name, ":".join(languages), selection,
        )
    auto = AUTO_BATCH_SIZE[backend]
    batch_size = values.get("batch_size") or _cap(auto, raw.get("max_batch_size"))
    verifier_batch_size = values.get("verifier_batch_size") or _cap(16, raw.get("max_batch_size"))

    verifier = _verifier_name(values.get("verifier"))
    defaulted = verifier is None and METHODS[selection].needs_verifier
    config = BestOfLConfig(
        pretrained=normalize_model_path(values["pretrained"]),
        preset=preset.name,
        backend=backend,
        verifier=SELF_JUDGE if defaulted else verifier,
        verifier_format=values.get("verifier_format", "auto"),
        verifier_defaulted=defaulted,
        languages=languages,
        pool_file=pool_file,
        pool=preset.pool,
        selection=selection,
        n=values.get("n", 8),
        adaptive=values.get("adaptive"),
        temperature=values.get("temperature", 0.7),
        top_p=values.get("top_p", 1.0),
        max_gen_toks=values.get("max_gen_toks", 512),
        seed=values.get("seed", 1234),
        store=str(Path(store).expanduser().resolve()) if store else None,
        read_stores=values.get("read_stores", ()),
        batch_size=batch_size,
        verifier_batch_size=verifier_batch_size,
        batch_size_auto=values.get("batch_size") is None,
        # verifier_batch_size=auto, or not given under batch_size=auto
        verifier_batch_size_auto=values["verifier_batch_size"] is None if "verifier_batch_size" in values
        else values.get("batch_size") is None,
        max_batch_size=_as_int("max_batch_size", raw["max_batch_size"]) if raw.get("max_batch_size") is not None
        else None,
        dtype=values.get("dtype", "auto"),
        device=values.get("device"),
        trust_remote_code=values.get("trust_remote_code", False),
        keep_generator=values.get("keep_generator", False),
        verifier_backend=values.get("verifier_backend", "auto"),
        translator=values.get("translator", "self"),
        backend_options=MappingProxyType(options),
    )
    _check(config)
    check_local_model("pretrained", config.pretrained)
    return config


def _verifier_name(value: str | None) -> str | None:
    """``self``, ``judge:ID`` (a local ID made absolute) or a classifier's id/path (likewise)."""
    if value is None or value == SELF_JUDGE:
        return value
    if value.startswith(JUDGE_PREFIX):
        model = value[len(JUDGE_PREFIX):].strip()
        if not model:
            raise ModelArgsError("verifier=judge: needs a model after the colon (verifier=judge:ID or a path); "
                                 "verifier=self judges with the generator.")
        return JUDGE_PREFIX + normalize_model_path(model)
    return normalize_model_path(value)


def _check(config: BestOfLConfig) -> None:
    if config.n < 1:
        raise ModelArgsError(f"n is the total number of samples per problem and must be >= 1, got {config.n}.")
    if config.temperature < 0:
        raise ModelArgsError(f"temperature must be >= 0 (0 = greedy), got {config.temperature}.")
    if not 0 < config.top_p <= 1:
        raise ModelArgsError(f"top_p must be in (0, 1], got {config.top_p}.")
    if config.max_gen_toks < 1:
        raise ModelArgsError(f"max_gen_toks must be >= 1, got {config.max_gen_toks}.")
    pool_size = 1 if config.pool == "target" else len(config.languages)
    if config.temperature == 0 and config.n > pool_size:
        raise ModelArgsError(
            f"temperature=0 is greedy decoding: the {math.ceil(config.n / pool_size)} samples per language that "
            f"n={config.n} over {pool_size} language(s) asks for would all be identical. "
            f"Set temperature>0 (e.g. 0.7) or n<={pool_size}."
        )
    if config.adaptive is not None and config.adaptive.needs_verifier and not config.needs_verifier:
        raise ModelArgsError(
            f"adaptive={config.adaptive} stops on the verifier's top score, but selection={config.selection} uses no "
            f"verifier: use adaptive=margin:M (vote margin), or a verifier-based selection "
            f"({', '.join(name for name, m in METHODS.items() if m.needs_verifier)}; e.g. --model bestofl).")
    if config.judge_model is not None and config.verifier_format != "auto":
        raise ModelArgsError(
            f"verifier_format={config.verifier_format} is for classifier verifiers; verifier={config.verifier} is "
            "a yes/no judge with its own fixed prompt: remove verifier_format.")
    if config.translator not in (None, "self") and config.pool == "languages":
        lacking = [lang for lang in config.languages if lang not in NLLB_CODES]
        if lacking:
            raise ModelArgsError(
                f"translator={config.translator} is an MT model, and the language table has no NLLB code for "
                f"{', '.join(lacking)} (bestofl_tasks.languages.NLLB_CODES); remove it from languages= or use "
                "translator=self.")
    if config.verifier_backend == "vllm" and config.backend != "vllm":
        raise ModelArgsError("verifier_backend=vllm needs backend=vllm (the vLLM venv); use verifier_backend=hf.")
    for key in ("tensor_parallel_size", "data_parallel_size", "max_model_len", "max_num_seqs"):
        if key in config.backend_options and config.backend_options[key] < 1:
            raise ModelArgsError(f"{key} must be >= 1, got {config.backend_options[key]}.")
    utilization = config.backend_options.get("gpu_memory_utilization")
    if utilization is not None and not 0 < utilization <= 1:
        raise ModelArgsError(f"gpu_memory_utilization must be in (0, 1], got {utilization}.")


def check_target(config: BestOfLConfig, target_lang: str | None, task: str) -> None:
    """Selections restricted to the target language need it in the pool (known only per request)."""
    if target_lang is None or not METHODS[config.selection].target_only:
        return
    if target_lang not in config.pool_for(target_lang):
        preset = next((p.name for p in PRESETS.values() if p.pool == "target" and p.selection == config.selection),
                      None)
        raise ModelArgsError(
            f"selection={config.selection} picks among the target language's samples, but task {task} "
            f"targets {target_lang!r}, which is not in languages={':'.join(config.languages)}. "
            f"Add {target_lang} to languages" + (f" or use --model {preset}." if preset else ".")
        )
