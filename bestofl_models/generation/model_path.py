"""What a model name points at: a local folder, a Hub id (``org/name``) or the embedded alias (``smollm2-135m``).

The harness's ``--model_args``, the verifiers and ``bestofl-train`` all name models this way.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelArgsError
from . import embedded


def looks_like_local_path(name: str) -> bool:
    """A filesystem path rather than a Hub id (``org/name``): absolute, relative to ``.``/``~``, deeper than
    ``org/name``, or an existing file or directory."""
    return (os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1
            or os.path.exists(os.path.expanduser(name)))


def check_local_model(key: str, name: str) -> None:
    """A value that can only be a path (absolute, ``./``, ``~``, deeper than ``org/name``) must exist: otherwise
    transformers would try it as a Hub id ("Repo id must be in the form ..."), which names nothing to fix."""
    if looks_like_local_path(name) and name not in embedded.ALIASES and not os.path.exists(os.path.expanduser(name)):
        raise ModelArgsError(f"{key}={name}: no such folder; give a local model folder (config.json and weights), "
                             "a Hub id (org/name) or smollm2-135m.")


def normalize_model_path(name: str) -> str:
    """Local paths become absolute (the store names generators/verifiers by them, an adapter_config its base
    model); an embedded alias (``smollm2-135m``) becomes its converted folder; Hub ids stay."""
    if not os.path.exists(os.path.expanduser(name)):
        name = embedded.resolve_pretrained(name)
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name
