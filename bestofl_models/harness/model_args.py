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
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from bestofl_tasks.languages import DEFAULT_POOL, NLLB_CODES

from ..errors import ModelArgsError
from ..generation.model_path import check_local_model, normalize_model_path
from ..selection.methods import METHODS
from ..verifiers.config import JUDGE_PREFIX, SELF_JUDGE
from .config import (  # noqa: F401 (``BACKENDS``, ``STORE_ENV``, ...: names of bestofl_models.config, kept)
    AUTO_BATCH_SIZE,
    BACKENDS,
    STORE_ENV,
    VERIFIER_BACKENDS,
    VERIFIER_FORMATS,
    BestOfLConfig,
    default_store,
)
from .model_arg_keys import CORE_KEYS, HARNESS_KEYS, PASS_THROUGH_KEYS, VALID_KEYS, _as_int, _recommended_pool  # noqa: F401
from .presets import PRESETS, Preset

logger = logging.getLogger(__name__)


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
