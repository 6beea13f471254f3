"""Atomic file writes: a reader sees the old file or the whole new one, never a part (a kill mid-write leaves
the old file and at most a ``.NAME.PID.tmp`` beside it)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import IO


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing (``mode`` ``"w"`` or ``"wb"``; ``kwargs`` as for
    ``open``); on a clean exit it is fsynced and renamed over ``path``, on an error deleted."""
    path = os.fspath(path)
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: str | os.PathLike, data: str | bytes, encoding: str = "utf-8") -> None:
    """Write ``data`` (text as ``encoding``) to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data.encode(encoding) if isinstance(data, str) else data)
