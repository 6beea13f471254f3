"""bestofl's own cache folder: ``$BESTOFL_CACHE``, default ``$XDG_CACHE_HOME/bestofl`` (``~/.cache/bestofl``).

It holds the embedded generator's conversion (``embedded/``, :mod:`bestofl_models.generation.embedded`) and the full content
hashes of model files (``file-hashes.json``, :mod:`bestofl_models.store.identity`). A cache that cannot be used is a
:class:`CacheError` naming the variable where something must be written (the embedded conversion), and is simply
not used where it only saves time (the file hashes).
"""

from __future__ import annotations

import os
from pathlib import Path

VARIABLE = "BESTOFL_CACHE"


class CacheError(OSError):
    """bestofl's cache folder cannot be created or written; the message names ``BESTOFL_CACHE``."""


def cache_dir() -> Path:
    """The cache folder (not created)."""
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get(VARIABLE) or user_cache / "bestofl").expanduser()


def usable_cache_dir(sub: str = "") -> Path:
    """``cache_dir() / sub``, created; CacheError naming ``BESTOFL_CACHE`` when it cannot be created or written."""
    path = cache_dir() / sub if sub else cache_dir()
    setting = f"{VARIABLE}={os.environ[VARIABLE]}" if os.environ.get(VARIABLE) else f"the default cache {cache_dir()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe.{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise CacheError(exc.errno, f"bestofl's cache is not usable: {setting} ({path}: {exc.strerror or exc}); "
                         f"set {VARIABLE} to a writable folder") from None
    return path
