"""Every ``--model_args`` key: how its value is read and checked on its own (the converters), which keys are
ours (``CORE_KEYS``), which pass through to one backend (``PASS_THROUGH_KEYS``) and which lm-eval adds."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable

from bestofl_tasks.languages import LANGUAGES

from ..errors import ModelArgsError
from ..generation.model_path import normalize_model_path
from ..selection.adaptive import AdaptiveRule
from ..selection.methods import METHODS
from ..selection.pool import RecommendedPool, load_recommended_pool
from .config import BACKENDS, VERIFIER_BACKENDS, VERIFIER_FORMATS

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
