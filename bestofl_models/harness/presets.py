"""The registered harness models (``--model NAME``): one table.

``model_args.parse_model_args`` reads a preset's default selection and pool here, the start-up hook
(``bestofl_tasks._autoload``) registers ``target`` under ``name`` with lm-eval, and ``model`` defines the
classes (``bestofl_models.harness`` exports them); ``pyproject.toml``'s ``lm_eval.models`` entry points must list the same names and targets, which
``tests/test_presets.py`` checks. No imports beyond the standard library: the start-up hook reads this module
when lm-eval imports its model registry.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """What a registered model name fixes: its default selection and where its samples come from."""

    name: str
    #: A name in ``selection.METHODS``.
    selection: str
    #: ``languages``: the ``languages`` pool; ``target``: the request's target language alone.
    pool: str
    #: The class in ``bestofl_models.harness.model``.
    class_name: str

    @property
    def target(self) -> str:
        """lm-eval's lazy registry entry (``module:Class``)."""
        return f"bestofl_models.harness:{self.class_name}"


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("bestofl", "cross_orm", "languages", "BestOfL"),
    Preset("multi-orm", "multi_orm", "target", "MultiORM"),
    Preset("self-consistency", "self_consistency", "target", "SelfConsistency"),
)}
