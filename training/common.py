"""What every stage shares: its directory, JSON Lines I/O, the manifest and the "already done?" check.

A stage is finished when its ``manifest.json`` exists with the stage's current fingerprint (a hash of
the settings it depends on and of its inputs' fingerprints). The manifest is written last, so a killed
stage has none and is rerun; its own caches (MT cache, candidate store, checkpoints, score cache) make
the rerun continue where it stopped.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from bestofl_models.store.atomic import atomic_open, atomic_write

from .config import TrainConfig, fingerprint

logger = logging.getLogger("bestofl.train")

MANIFEST = "manifest.json"
_VERSIONED = ("bestofl", "torch", "transformers", "peft", "accelerate", "datasets", "lm_eval", "scikit-learn", "vllm")


class StageError(RuntimeError):
    """A stage cannot run (missing input, incompatible earlier output); the message says what to do."""


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


# --------------------------------------------------------------------------------------------------- JSONL


def read_jsonl(path: Path) -> list[dict]:
    """All complete records of ``path``; a torn last line (killed writer) is ignored."""
    if not path.is_file():
        return []
    records = []
    with open(path, encoding="utf-8", newline="\n") as handle:
        for line in handle.read().split("\n"):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                logger.warning("%s: ignoring an incomplete line (interrupted write)", path)
    return records


def write_jsonl(path: Path, records: Iterable[dict]) -> int:
    """Write ``records`` atomically; returns the count."""
    count = 0
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


class AppendLog:
    """Append-only JSON Lines cache: each ``append`` is flushed and fsynced, so a kill loses nothing written.

    A torn last line (a writer killed mid-append) is cut off in place on open, as the candidate store does:
    ``os.truncate`` back to the last newline. The complete records before it are never rewritten, so a kill
    during the repair cannot lose them.
    """

    def __init__(self, path: Path):
        self.path = path
        self.records = read_jsonl(path)
        if path.is_file():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                os.truncate(path, data.rfind(b"\n") + 1)  # the next append starts on a fresh line

    def append(self, records: list[dict]) -> None:
        if not records:
            return
        with open(self.path, "a", encoding="utf-8", newline="\n") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records.extend(records)


def batched(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------------------------------- stages


@dataclass
class Stage:
    """One stage run: where it writes, its fingerprint, and the manifest it ends with."""

    name: str
    out_dir: Path
    config: TrainConfig
    #: Fingerprint inputs: the settings this stage depends on and the upstream stages.
    settings: tuple[str, ...] = ()
    upstream: tuple[str, ...] = ()
    started: float = field(default_factory=time.time)

    @property
    def dir(self) -> Path:
        return self.out_dir / self.name

    def path(self, name: str) -> Path:
        return self.dir / name

    def upstream_manifest(self, name: str) -> dict:
        path = self.out_dir / name / MANIFEST
        if not path.is_file():
            raise StageError(
                f"stage {self.name!r} needs the output of {name!r}, which is missing or unfinished in "
                f"{self.out_dir}: run `bestofl-train {name} --output-dir {self.out_dir}` (or `run`) first"
            )
        return json.loads(path.read_text())

    @property
    def fingerprint(self) -> str:
        upstream = {name: self.upstream_manifest(name)["fingerprint"] for name in self.upstream}
        return fingerprint({"settings": self.config.section_hash(*self.settings), "upstream": upstream})

    def manifest(self) -> dict | None:
        path = self.path(MANIFEST)
        return json.loads(path.read_text()) if path.is_file() else None

    def is_done(self) -> bool:
        manifest = self.manifest()
        return manifest is not None and manifest.get("fingerprint") == self.fingerprint

    def begin(self) -> None:
        """Create the directory and drop a stale manifest (settings or inputs changed)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        stale = self.path(MANIFEST)
        if stale.is_file():
            logger.info("%s: settings or inputs changed since the last run; redoing it (caches are kept)", self.name)
            stale.unlink(missing_ok=True)

    def finish(self, counts: dict[str, Any], **extra: Any) -> dict:
        manifest = {
            "stage": self.name,
            "fingerprint": self.fingerprint,
            "counts": counts,
            "settings": {key: self.config.to_dict()[key] for key in self.settings},
            "versions": package_versions(),
            "wall_time_seconds": round(time.time() - self.started, 2),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **extra,
        }
        atomic_write(self.path(MANIFEST), json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        logger.info("%s: done in %.1fs: %s", self.name, manifest["wall_time_seconds"], json.dumps(counts))
        return manifest


def resolve_device(name: str) -> str:
    import torch

    if name != "auto":
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"
