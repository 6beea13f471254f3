"""Offline: a task whose data cannot be reached fails at task build, at once and in one line (issue #23 item 5)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import datasets
import huggingface_hub.constants
import pytest

from bestofl_tasks import data

LM_EVAL = str(Path(sys.executable).parent / "lm_eval")


@pytest.fixture
def hub_unreachable(monkeypatch):
    """Offline mode off, and the Hub's endpoint a local port where nothing listens (refused at once)."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    data._hub_unreachable.cache_clear()
    yield
    data._hub_unreachable.cache_clear()


def test_an_unreachable_hub_is_asked_once_and_the_load_goes_offline(hub_unreachable, monkeypatch):
    modes = []

    def load_dataset(path, *args, **kwargs):
        modes.append((path, huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE))
        raise ConnectionError(f"Couldn't reach '{path}' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    for _ in range(2):
        with pytest.raises(data.DataUnavailableError) as raised:
            data.load_docs("gsm8k_test", "de")
    message = str(raised.value)
    assert "127.0.0.1 cannot be reached" in message and "no cached copy" in message
    assert "BESTOFL_DATA_DIR=DIR" in message and raised.value.__cause__ is None  # one message, no chained traceback
    assert modes == [("openai/gsm8k", True, True)] * 2  # the Hub client never tried the network (no retries)
    assert data._hub_unreachable.cache_info().misses == 1  # the probe ran once
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False  # offline mode only for the load


def test_an_unreachable_hub_still_serves_the_datasets_cache(hub_unreachable, monkeypatch):
    class Cached:
        def to_list(self):
            return [{"question": "Q?", "answer": "... #### 1,250"}]

    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: Cached())
    [doc] = data.load_docs("gsm8k_test", "en")
    assert doc["answer"] == "1250"


def test_a_reachable_hub_is_not_put_offline(monkeypatch):
    """The probe's answer decides: a host that accepts the connection leaves the Hub client as it is."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    data._hub_unreachable.cache_clear()
    try:
        assert data._hub_unreachable() is None
    finally:
        server.close()
        data._hub_unreachable.cache_clear()


@pytest.mark.slow
def test_the_cli_says_in_one_line_that_task_data_cannot_be_reached(tmp_path):
    """Our task with the Hub unreachable (no retries), and lm-eval's own task offline: exit 2, one line each."""
    base = {key: value for key, value in os.environ.items()
            if key not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "BESTOFL_DATA_DIR")}
    runs = {
        "gsm8k_xling_de": {**base, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf")},
        "mgsm_native_cot_de": {**base, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
    }
    for task, env in runs.items():
        result = subprocess.run([LM_EVAL, "--model", "dummy", "--tasks", task, "--limit", "1"], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 2, result.stderr[-2000:]
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("lm_eval: error: "), result.stderr[-2000:]
        assert "Traceback" not in result.stderr and "Retrying" not in result.stderr
        if task == "gsm8k_xling_de":
            assert "127.0.0.1 cannot be reached" in last and "BESTOFL_DATA_DIR=DIR" in last
        else:
            assert "juletxara/mgsm" in last and "HF_HUB_OFFLINE=1 reads the cache" in last
