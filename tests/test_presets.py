"""One table of registered models (bestofl_models.harness.presets): the harness classes, the start-up hook's registry
entries and pyproject's entry points agree with it, and every preset names a registered selection."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

from bestofl_models.harness.presets import PRESETS
from bestofl_models.selection.methods import METHODS
from bestofl_tasks import _autoload


def test_the_start_up_hook_and_the_entry_points_register_the_presets():
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    entry_points = pyproject["project"]["entry-points"]["lm_eval.models"]
    assert _autoload.models() == entry_points == {name: p.target for name, p in PRESETS.items()}


def test_each_preset_has_its_harness_class_and_a_selection_that_fits_its_pool():
    for name, preset in PRESETS.items():
        module, _, cls = preset.target.partition(":")
        assert getattr(importlib.import_module(module), cls).PRESET == name
        assert preset.pool in ("languages", "target")
        # A target-language pool cannot feed a method that compares languages, and vice versa.
        assert METHODS[preset.selection].target_only == (preset.pool == "target"), name
