"""Where a store may live: store files are never followed through symlinks, and a directory on a network file
system (``network_filesystem``, read from this process's mount table) is refused for writing; the error for a
file SQLite cannot read."""

from __future__ import annotations

import os
import re
import sqlite3

from .records import StoreError


def uri_path(path: str) -> str:
    from urllib.parse import quote

    return quote(os.path.abspath(path))


#: File system types on which SQLite's WAL journal (shared memory, POSIX locks) is not safe: network and
#: cluster file systems, and FUSE mounts of remote storage.
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "sshfs", "fuse.sshfs", "ceph", "fuse.ceph",
    "fuse.ceph-fuse", "glusterfs", "fuse.glusterfs", "lustre", "gpfs", "beegfs", "ocfs2", "gfs2", "fuse.s3fs",
    "fuse.gcsfuse", "fuse.rclone", "fuse.juicefs", "fuse.davfs", "davfs", "fuse.mfs", "pvfs2", "orangefs",
})


def _unescape_mount_path(field_: str) -> str:
    """A path field of ``/proc/self/mountinfo`` (space, tab, newline and backslash are octal escapes)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field_)


def mount_type(mountinfo: str, path: str) -> str | None:
    """The file system type of the mount holding the absolute ``path``, from the text of
    ``/proc/self/mountinfo`` (or of ``/proc/mounts``); the innermost mount point wins, the later line on a tie."""
    best, best_len = None, -1
    for line in mountinfo.splitlines():
        fields_ = line.split()
        if " - " in line:  # mountinfo: ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - TYPE SOURCE ...
            head, _, tail = line.partition(" - ")
            head_fields, tail_fields = head.split(), tail.split()
            if len(head_fields) < 5 or not tail_fields:
                continue
            point, fstype = _unescape_mount_path(head_fields[4]), tail_fields[0]
        elif len(fields_) >= 3:  # /proc/mounts: SOURCE MOUNT_POINT TYPE OPTIONS 0 0
            point, fstype = _unescape_mount_path(fields_[1]), fields_[2]
        else:
            continue
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best_len:
            best, best_len = fstype, len(point)
    return best


def network_filesystem(mountinfo: str, path: str) -> str | None:
    """The network file system type ``path`` is on (``nfs4``, ``cifs``, ``fuse.sshfs``, ...), or None when local."""
    fstype = mount_type(mountinfo, path)
    return fstype if fstype in NETWORK_FILESYSTEMS else None


def _read_mountinfo() -> str:
    """This process's mount table (empty where there is none to read, e.g. outside Linux: nothing is refused)."""
    for source in ("/proc/self/mountinfo", "/proc/mounts"):
        try:
            with open(source, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            continue
    return ""


def refuse_network_filesystem(directory: str) -> None:
    """StoreError when ``directory`` is on a network file system: SQLite's WAL needs one machine's local disk."""
    mountinfo = _read_mountinfo()
    fstype = network_filesystem(mountinfo, os.path.realpath(directory)) if mountinfo else None
    if fstype is not None:
        raise StoreError(
            f"store directory {directory} is on a network file system ({fstype}); SQLite's WAL journal does not work "
            "there (writers on several machines can damage the store). Give each machine a store on its own local "
            "disk (store=/local/dir) and merge them: read_stores=A:B in --model_args, or bestofl-report --store A "
            "--store B.")


def damaged_store_error(path: str, exc: sqlite3.DatabaseError) -> StoreError:
    """The one-line error for a store file SQLite cannot read (random bytes, truncated, zeroed pages)."""
    return StoreError(f"candidate store {path} is damaged or not a bestofl store ({exc}); restore it from a copy, "
                      f"or salvage what is readable with `sqlite3 {path} .recover`.")


def refuse_symlinks(path: str) -> None:
    """Store files are never followed through symlinks (writes would land, and repairs act, elsewhere)."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.islink(path + suffix):
            raise StoreError(f"{path + suffix} is a symbolic link; bestofl never follows store files through links. "
                             "Point store= at the real directory (or remove the link).")
