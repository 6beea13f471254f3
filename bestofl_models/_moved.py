"""Module paths from before the stage packages (issue #24), kept for one release: each old name is the new module.

``import bestofl_models.config`` returns ``bestofl_models.harness.model_args`` itself (not a copy), so reading,
``mock.patch`` and ``monkeypatch.setattr`` through an old path reach the code that runs. ``bestofl_models/embedded.py`` is the one
old path kept as a file (``python -m bestofl_models.embedded`` runs it). New code imports the new paths.
"""

from __future__ import annotations

import importlib
import sys
from importlib.machinery import ModuleSpec

#: old module -> new module
MOVED = {
    "bestofl_models.adaptive": "bestofl_models.selection.adaptive",
    "bestofl_models.adaptive_run": "bestofl_models.harness.adaptive_run",
    "bestofl_models.atomic": "bestofl_models.store.atomic",
    "bestofl_models.backends": "bestofl_models.generation.backends",
    "bestofl_models.backends.hf": "bestofl_models.generation.backends.hf",
    "bestofl_models.backends.sizing": "bestofl_models.generation.backends.sizing",
    "bestofl_models.backends.vllm": "bestofl_models.generation.backends.vllm",
    "bestofl_models.cache": "bestofl_models.store.cache",
    "bestofl_models.config": "bestofl_models.harness.model_args",
    "bestofl_models.distributed": "bestofl_models.generation.distributed",
    "bestofl_models.identity": "bestofl_models.store.identity",
    "bestofl_models.judge": "bestofl_models.verifiers.judge",
    "bestofl_models.lm_eval_options": "bestofl_models.harness.lm_eval_options",
    "bestofl_models.lm_eval_tasks": "bestofl_models.harness.lm_eval_tasks",
    "bestofl_models.pool": "bestofl_models.selection.pool",
    "bestofl_models.presets": "bestofl_models.harness.presets",
    "bestofl_models.problems": "bestofl_models.harness.problems",
    "bestofl_models.results_info": "bestofl_models.harness.results_info",
    "bestofl_models.run_log": "bestofl_models.harness.run_log",
    "bestofl_models.translation": "bestofl_models.generation.translation",
    "bestofl_models.verifier": "bestofl_models.verifiers.classifier",
    "bestofl_models.verifier_config": "bestofl_models.verifiers.config",
    "bestofl_models.verifier_spec": "bestofl_models.verifiers.spec",
}


class _Alias:
    """Finder and loader of the old names: the module is the new one, already run."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name not in MOVED:
            return None
        return ModuleSpec(name, cls, is_package=name + ".hf" in MOVED)

    @staticmethod
    def create_module(spec):
        module = importlib.import_module(MOVED[spec.name])
        spec.loader_state = module.__spec__  # the import system sets ``__spec__`` to this spec next
        return module

    @staticmethod
    def exec_module(module):
        """The new module ran when it was imported; it keeps its own spec."""
        module.__spec__ = module.__spec__.loader_state


def install() -> None:
    if _Alias not in sys.meta_path:
        sys.meta_path.insert(0, _Alias)
