"""vLLM backend: one ``generate`` call per batch, one request per candidate with its own seed.

Each candidate is a separate request with ``SamplingParams(n=1, seed=...)``, so a candidate's text does not
depend on which batch it ran in; prefix caching (on by default) shares the prompt's KV cache between the
samples of one prompt. Needs the separate vLLM venv (``scripts/setup_vllm_venv.sh``).
"""

from __future__ import annotations

import gc
import logging
from typing import Sequence

from . import SamplingSettings, add_special_tokens, load_tokenizer

logger = logging.getLogger(__name__)

#: Keys of ``config.backend_options`` that ``vllm.LLM`` takes as they are.
LLM_OPTIONS = (
    "tensor_parallel_size",
    "data_parallel_size",
    "gpu_memory_utilization",
    "max_model_len",
    "max_num_seqs",
    "enforce_eager",
    "swap_space",
    "quantization",
    "kv_cache_dtype",
    "enable_prefix_caching",
    "revision",
)
#: Of those, the ones that describe the generator checkpoint only (not passed when loading the verifier).
GENERATOR_ONLY_OPTIONS = ("revision", "quantization")


def import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(
            "backend=vllm needs vLLM in this environment: `pip install vllm` (GPU), or on CPU create the "
            "separate venv with `bash scripts/setup_vllm_venv.sh` and run lm_eval from it."
        ) from exc
    return vllm


def build_llm(model: str, config, generator: bool = True, **extra):
    """``vllm.LLM`` for ``model`` with the config's dtype, seed and pass-through options (without the
    generator's ``revision`` and ``quantization`` when ``generator=False``, e.g. for the verifier)."""
    vllm = import_vllm()
    keys = [key for key in LLM_OPTIONS if generator or key not in GENERATOR_ONLY_OPTIONS]
    options = {key: config.backend_options[key] for key in keys if key in config.backend_options}
    options.setdefault("enable_prefix_caching", True)
    return vllm.LLM(
        model=model,
        dtype=config.dtype,
        seed=config.seed,
        trust_remote_code=config.trust_remote_code,
        **options,
        **extra,
    )


def token_prompts(tokenizer, texts: Sequence[str]) -> list[dict]:
    """Tokenize ourselves so vLLM and transformers see the same ids (no second BOS after a chat template)."""
    special = add_special_tokens(tokenizer)
    return [{"prompt_token_ids": tokenizer.encode(text, add_special_tokens=special)} for text in texts]


def shutdown(llm) -> None:
    """Stop vLLM's engine processes and free the model."""
    engine = getattr(llm, "llm_engine", None)
    core = getattr(engine, "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


class VLLMBackend:
    def __init__(self, config):
        self.config = config
        self.tokenizer = load_tokenizer(config)
        self.llm = build_llm(config.pretrained, config)

    def generate(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        stops: Sequence[Sequence[str]],
        settings: SamplingSettings,
    ) -> list[str]:
        from vllm import SamplingParams

        sampling = settings.temperature > 0
        params = [
            SamplingParams(
                n=1,
                temperature=settings.temperature,
                top_p=settings.top_p if sampling else 1.0,
                max_tokens=settings.max_gen_toks,
                seed=seed,
                stop=list(stop) or None,
                skip_special_tokens=True,
            )
            for seed, stop in zip(seeds, stops)
        ]
        outputs = self.llm.generate(token_prompts(self.tokenizer, prompts), params, use_tqdm=False)
        return [output.outputs[0].text for output in outputs]

    def close(self) -> None:
        shutdown(self.llm)
        del self.llm
