"""How to load and run a verifier, on its own: what the harness, ``bestofl-train`` (evaluate, export) and scripts
hand to :func:`bestofl_models.verifiers.spec.resolve_verifier` / ``load_scorer``. No harness config is needed;
the harness builds one from its ``--model_args`` (``BestOfLConfig.verifier_config``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

#: ``verifier=self``: the generator judges; ``verifier=judge:ID``: model ID judges (``bestofl_models.verifiers.judge``).
SELF_JUDGE = "self"
JUDGE_PREFIX = "judge:"


@dataclass(frozen=True)
class VerifierConfig:
    #: A one-logit classifier or LoRA adapter (local path or Hub id), ``self`` or ``judge:ID``.
    path: str
    #: ``auto``, ``bestofl`` (our verifier text) or ``chat`` (a reward model's chat template); classifiers only.
    format: str = "auto"
    dtype: str = "auto"
    #: None: CUDA when available, else the CPU.
    device: str | None = None
    batch_size: int = 16
    #: ``verifier_batch_size=auto``: on a GPU, batches sized to the free memory (at most ``max_batch_size``).
    batch_size_auto: bool = False
    max_batch_size: int | None = None
    #: ``auto`` (vLLM for a full classifier or a judge when the generator runs on vLLM), ``hf`` or ``vllm``.
    backend: str = "auto"
    trust_remote_code: bool = False
    #: The generator: ``self`` judges with it (at its ``revision`` in ``backend_options``).
    generator: str | None = None
    #: The generator's backend (what ``backend=auto`` follows).
    generator_backend: str = "hf"
    #: vLLM engine options (``tensor_parallel_size``, ``gpu_memory_utilization``, ...), as the harness passes them.
    backend_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    seed: int = 1234

    @property
    def judge_model(self) -> str | None:
        """The judge's model for ``self`` / ``judge:ID``; None for a classifier."""
        if self.path == SELF_JUDGE:
            return self.generator
        if self.path.startswith(JUDGE_PREFIX):
            return self.path[len(JUDGE_PREFIX):]
        return None

    def uses_vllm(self, is_adapter: bool = False) -> bool:
        """Whether this verifier runs on vLLM (``auto``: when the generator does, and it is no LoRA adapter)."""
        if self.backend == "auto":
            return self.generator_backend == "vllm" and not is_adapter
        return self.backend == "vllm"

    @property
    def generator_revision(self) -> str | None:
        return self.backend_options.get("revision")
