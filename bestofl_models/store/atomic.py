"""Atomic file writes: a reader sees the old file or the whole new one, never a part (a kill mid-write leaves
the old file and at most a ``.NAME.PID.XXXXXXXX.tmp`` beside it).

The temporary file is created with :func:`tempfile.mkstemp` in the target's folder (``O_CREAT | O_EXCL``, an
unpredictable name, mode 0600 until written): a file or symbolic link planted under any name there is never
opened, followed or truncated. The finished file gets the permissions a plain ``open`` would give it
(0666 minus the umask) before it is renamed over ``path``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO


def process_running(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (someone else's counts): the staging files and folders a killed
    writer left (named with its PID) may be removed once it is gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a fresh temporary file beside ``path`` for writing (``mode`` ``"w"`` or ``"wb"``; ``kwargs`` as for
    ``open``); on a clean exit it is fsynced and renamed over ``path``, on an error deleted."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', not {mode!r}")
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=".tmp", dir=folder)
    try:
        with open(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
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
