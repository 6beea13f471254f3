"""What a model *is*, not where it sits: the identity behind candidate keys and verifier scores.

A model's name (Hub id or local path) says nothing about its weights: a folder retrained in place, or a Hub
repository that moved on, keeps its name. So the store keys candidates and scores by an identity:

* a local folder (or file): a fingerprint of its top-level files (names, sizes and the sha256 of every byte).
  Hidden files and ``*.md`` are left out; the folder's path is not part of it, so a moved folder keeps its
  identity. Each file's hash is cached (``file-hashes.json`` in bestofl's cache folder, :mod:`bestofl_models.store.cache`)
  under its path, size, modification and change times, device and inode, so a file is read again only when one of
  them changed (an in-place edit always changes its change time): a 15 GB checkpoint is read once, not per load.
  A cache that cannot be read or written is not used (every file is hashed);
* a Hub id: the commit its revision resolves to (online through the Hub API, offline from the local Hugging
  Face cache); when neither knows it, ``hub:ID@REVISION`` with a warning (the revision is then trusted).

:func:`identity_id` turns an identity record (fingerprints plus every setting that changes outputs:
dtype, backend, quantization, ...) into the short id the store uses.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)

BLOCK = 2**20
#: The file-hash cache, in bestofl's cache folder; entries of files that no longer exist are dropped on write.
HASH_CACHE = "file-hashes.json"
_HASH_CACHE_VERSION = 1
#: Files hashed and found in the cache by this process (tests and benchmarks read it).
HASH_STATS = {"hashed": 0, "cached": 0}


def _file_digest(path: str) -> str:
    """sha256 of every byte of ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(BLOCK), b""):
            digest.update(chunk)
    HASH_STATS["hashed"] += 1
    return digest.hexdigest()


def _stat_key(st: os.stat_result) -> list:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino]


def _hash_cache_path() -> str | None:
    from .cache import CacheError, usable_cache_dir

    try:
        return str(usable_cache_dir() / HASH_CACHE)
    except CacheError as exc:
        logger.debug("file hashes are not cached: %s", exc)
        return None


def _read_hash_cache(path: str | None) -> dict[str, list]:
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        files = data["files"] if data.get("version") == _HASH_CACHE_VERSION else {}
        return {k: v for k, v in files.items() if isinstance(v, list) and len(v) == 6}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        if not isinstance(exc, FileNotFoundError):
            logger.debug("file-hash cache %s is not usable (%s); hashing without it", path, exc)
        return {}


def _write_hash_cache(path: str | None, new: dict[str, list]) -> None:
    """Merge ``new`` into the cache file (re-read first: another process may have added entries)."""
    if path is None or not new:
        return
    from .atomic import atomic_write

    files = {k: v for k, v in _read_hash_cache(path).items() if os.path.exists(k)}
    files.update(new)
    try:
        atomic_write(path, json.dumps({"version": _HASH_CACHE_VERSION, "files": files}, sort_keys=True))
    except OSError as exc:
        logger.debug("file-hash cache %s not written (%s)", path, exc)


def _fingerprint_files(root: str, names: list[str]) -> str:
    cache_path = _hash_cache_path()
    cached, new, entries = _read_hash_cache(cache_path), {}, []
    for name in sorted(names):
        path = os.path.realpath(os.path.join(root, name))
        key = _stat_key(os.stat(path))
        hit = cached.get(path)
        if hit is not None and hit[:5] == key and isinstance(hit[5], str):
            digest = hit[5]
            HASH_STATS["cached"] += 1
        else:
            digest = _file_digest(path)
            if _stat_key(os.stat(path)) == key:  # not changed while it was read
                new[path] = [*key, digest]
        entries.append([name, key[0], digest])
    _write_hash_cache(cache_path, new)
    blob = json.dumps(entries, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()[:32]


@functools.lru_cache(maxsize=64)
def _local_fingerprint(path: str, stamp: tuple) -> str:
    if os.path.isfile(path):
        return _fingerprint_files(os.path.dirname(path), [os.path.basename(path)])
    names = [name for name in os.listdir(path)
             if not name.startswith(".") and not name.lower().endswith(".md") and os.path.isfile(os.path.join(path, name))]
    return _fingerprint_files(path, names)


def _stamp(path: str) -> tuple:
    """Sizes, times, devices and inodes of the top-level files: a cache key, so a process fingerprints a folder
    once until something in it changes."""
    if os.path.isfile(path):
        return ((os.path.basename(path), *_stat_key(os.stat(path))),)
    return tuple(sorted((e.name, *_stat_key(e.stat())) for e in os.scandir(path) if e.is_file()))


def hub_commit(repo_id: str, revision: str | None = None) -> str | None:
    """The commit ``revision`` of ``repo_id`` resolves to: the Hub API when online, else the local Hugging Face
    cache's ref; None if neither knows it."""
    revision = revision or "main"
    if len(revision) == 40 and all(c in "0123456789abcdef" for c in revision):
        return revision
    from huggingface_hub import constants

    if not constants.HF_HUB_OFFLINE:
        try:
            from huggingface_hub import HfApi

            return HfApi().model_info(repo_id, revision=revision).sha
        except Exception as exc:  # noqa: BLE001 - unreachable Hub, private repo, ...: try the cache
            logger.debug("Hub lookup of %s@%s failed: %s", repo_id, revision, exc)
    ref = os.path.join(constants.HF_HUB_CACHE, "models--" + repo_id.replace("/", "--"), "refs", revision)
    try:
        with open(ref, encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def fingerprint(name: str, revision: str | None = None) -> str:
    """The identity of a model named by a local path or a Hub id (see the module docstring)."""
    path = os.path.expanduser(name)
    if os.path.exists(path):
        path = os.path.realpath(path)
        return _local_fingerprint(path, _stamp(path))
    commit = hub_commit(name, revision)
    if commit is None:
        _warn_unresolved(name, revision or "main")
        return f"hub:{name}@{revision or 'main'}"
    return f"hub:{name}@{commit}"


@functools.lru_cache(maxsize=None)
def _warn_unresolved(name: str, revision: str) -> None:
    logger.warning(
        "%s@%s: its commit is unknown (offline and not in the Hugging Face cache); the store identifies it by "
        "name and revision only, so pin revision=<commit> to be safe against the repository changing.",
        name, revision,
    )


def identity_id(record: Mapping[str, Any], prefix: str) -> str:
    """A short stable id of an identity record: ``PREFIX-`` plus 20 hex digits of its canonical JSON's sha256."""
    blob = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return f"{prefix}-{hashlib.sha256(blob).hexdigest()[:20]}"


#: Generator options that change what is sampled (beside the weights, the prompt and the sampling settings).
GENERATOR_OUTPUT_OPTIONS = ("revision", "quantization", "kv_cache_dtype")


def generator_identity(config) -> dict[str, Any]:
    """What makes a generator's samples what they are: its fingerprint, backend, dtype and output-changing
    options. (The chat template and the sampling settings are in the candidate key through the rendered prompt
    and the settings.)"""
    options = {k: config.backend_options[k] for k in GENERATOR_OUTPUT_OPTIONS if k in config.backend_options}
    return {"fingerprint": fingerprint(config.pretrained, options.get("revision")), "backend": config.backend,
            "dtype": config.dtype, **options}


def verifier_identity(config, spec) -> dict[str, Any]:
    """What makes a verifier's scores what they are: its fingerprint (and its base model's, for an adapter), dtype
    and the versioned text it is given (``spec.format_version``: our verifier text, a chat reward model's chat
    format, or the judge prompt; a judge's record also says ``kind: judge``)."""
    if spec.kind == "judge":
        revision = config.generator_revision if spec.model == config.generator else None
        return {"kind": "judge", "fingerprint": fingerprint(spec.model, revision), "dtype": config.dtype,
                "format": spec.format_version}
    record = {"fingerprint": fingerprint(config.path), "dtype": config.dtype, "format": spec.format_version}
    if spec.base is not None:
        record["base"] = fingerprint(spec.base)
    return record
