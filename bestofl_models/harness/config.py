"""The harness models' settings after ``--model_args`` are read (:class:`BestOfLConfig`), the backends and
their default batch sizes, and the default store folder. Read and checked by :mod:`.model_args`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from bestofl_tasks.languages import DEFAULT_POOL

from ..selection.adaptive import AdaptiveRule
from ..selection.methods import METHODS
from ..selection.pool import RecommendedPool
from ..verifiers.config import VerifierConfig

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
