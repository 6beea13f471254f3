"""vLLM backend: one ``generate`` call per batch, one request per candidate with its own seed.

Each candidate is a separate request with ``SamplingParams(n=1, seed=...)``, so a candidate's text does not
depend on which batch (or which replica) it ran in; prefix caching (on by default) shares the prompt's KV cache
between the samples of one prompt. Needs the separate vLLM venv (``scripts/setup_vllm_venv.sh``) or ``pip install
vllm``.

Data parallel (``data_parallel_size=K``): K engines, each a Ray actor holding ``tensor_parallel_size`` GPUs (as
lm-eval's vllm model does, but the actors live for the whole run instead of one ``generate`` call); a batch is
dealt out round-robin and the texts are merged back in order (``bestofl_models.generation.distributed``). Several nodes: start
a Ray cluster first and point ``RAY_ADDRESS`` at it.
"""

from __future__ import annotations

import gc
import logging
from typing import Sequence

from ..distributed import merge_in_order, split_interleaved
from . import Generation, SamplingSettings, add_special_tokens, load_tokenizer

logger = logging.getLogger(__name__)

#: Keys of ``config.backend_options`` that ``vllm.LLM`` takes as they are (``data_parallel_size`` is ours: the
#: number of engines).
LLM_OPTIONS = (
    "tensor_parallel_size",
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


def llm_options(model: str, config, generator: bool = True, **extra) -> dict:
    """``vllm.LLM``'s arguments for ``model``: the config's dtype, seed and pass-through options (without the
    generator's ``revision`` and ``quantization`` when ``generator=False``, e.g. for the verifier)."""
    keys = [key for key in LLM_OPTIONS if generator or key not in GENERATOR_ONLY_OPTIONS]
    options = {key: config.backend_options[key] for key in keys if key in config.backend_options}
    options.setdefault("enable_prefix_caching", True)
    return {"model": model, "dtype": config.dtype, "seed": config.seed,
            "trust_remote_code": config.trust_remote_code, **options, **extra}


def build_llm(model: str, config, generator: bool = True, **extra):
    """``vllm.LLM`` with :func:`llm_options` (one engine: the verifier's pooling runner, for one)."""
    return import_vllm().LLM(**llm_options(model, config, generator, **extra))


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


class Engine:
    """One vLLM engine (one replica): ``vllm.LLM(**options)`` and per-candidate seeded sampling. Runs in this
    process or inside a Ray actor; takes and returns plain data only."""

    def __init__(self, options: dict):
        self.llm = import_vllm().LLM(**options)

    def generate(self, prompt_ids: Sequence[list[int]], seeds: Sequence[int], stops: Sequence[Sequence[str]],
                 settings: SamplingSettings) -> list[tuple[str, int, bool]]:
        """Per prompt: the text, the number of tokens generated and whether it stopped at ``max_tokens``."""
        if not prompt_ids:
            return []
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
        prompts = [{"prompt_token_ids": list(ids)} for ids in prompt_ids]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        return [(output.outputs[0].text, len(output.outputs[0].token_ids), output.outputs[0].finish_reason == "length")
                for output in outputs]

    def close(self) -> None:
        shutdown(self.llm)
        del self.llm


class LocalReplicas:
    """Engines in this process, run one after the other (one replica: the plain single-engine path)."""

    def __init__(self, engines: list):
        self.engines = engines

    def __len__(self) -> int:
        return len(self.engines)

    def run(self, shards: list[tuple]) -> list[list[tuple[str, int, bool]]]:
        return [engine.generate(*shard) for engine, shard in zip(self.engines, shards, strict=True)]

    def close(self) -> None:
        for engine in self.engines:
            engine.close()


class RayReplicas:
    """One :class:`Engine` per Ray actor, each reserving ``tensor_parallel_size`` GPUs (none on a CPU-only
    cluster); the shards of a batch run concurrently."""

    def __init__(self, count: int, options: dict, ray=None):
        if ray is None:
            try:
                import ray
            except ImportError as exc:
                raise ImportError("data_parallel_size > 1 runs one vLLM engine per Ray actor: pip install ray") from exc
        self.ray = ray
        if not ray.is_initialized():
            ray.init()  # RAY_ADDRESS, else the cluster `ray start` began on this machine, else a new local one
        gpus = options.get("tensor_parallel_size", 1) if ray.cluster_resources().get("GPU", 0) else 0
        actor = ray.remote(num_gpus=gpus)(Engine)
        self.actors = [actor.remote(options) for _ in range(count)]

    def __len__(self) -> int:
        return len(self.actors)

    def run(self, shards: list[tuple]) -> list[list[tuple[str, int, bool]]]:
        return self.ray.get([actor.generate.remote(*shard) for actor, shard in zip(self.actors, shards, strict=True)])

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)  # the actor's process exits and frees its GPUs


def start_replicas(config):
    """``data_parallel_size`` engines of the generator: this process's own for one, Ray actors for several."""
    options = llm_options(config.pretrained, config)
    count = config.backend_options.get("data_parallel_size", 1)
    if count == 1:
        return LocalReplicas([Engine(options)])
    logger.info("vLLM data parallel: %d engines (Ray actors), tensor_parallel_size=%d each", count,
                options.get("tensor_parallel_size", 1))
    return RayReplicas(count, options)


class VLLMBackend:
    """The generator on one or ``data_parallel_size`` vLLM engines; a batch is split round-robin over them and
    the texts come back in the batch's order."""

    def __init__(self, config, replicas=None):
        self.config = config
        self.tokenizer = load_tokenizer(config)
        self.replicas = replicas if replicas is not None else start_replicas(config)

    def generate(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        stops: Sequence[Sequence[str]],
        settings: SamplingSettings,
    ) -> list[Generation]:
        ids = [prompt["prompt_token_ids"] for prompt in token_prompts(self.tokenizer, prompts)]
        shards = split_interleaved(len(ids), len(self.replicas))
        results = self.replicas.run([([ids[i] for i in shard], [seeds[i] for i in shard], [stops[i] for i in shard],
                                      settings) for shard in shards])
        return [Generation(text, len(prompt), gen_tokens, hit_cap)
                for prompt, (text, gen_tokens, hit_cap) in zip(ids, merge_in_order(shards, results))]

    def close(self) -> None:
        self.replicas.close()
