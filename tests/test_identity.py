"""What a model is: local content fingerprints and Hub commits (offline, from a cache laid out as the Hub's)."""

from __future__ import annotations

import shutil

import pytest

from bestofl_models.store import identity


def test_a_local_folder_is_its_content_not_its_path(tmp_path, tiny_generator_dir):
    here = tmp_path / "here"
    shutil.copytree(tiny_generator_dir, here)
    first = identity.fingerprint(str(here))
    assert first.startswith("sha256:")
    moved = tmp_path / "moved"
    here.rename(moved)
    assert identity.fingerprint(str(moved)) == first  # moving keeps the identity
    (moved / "README.md").write_text("notes")
    assert identity.fingerprint(str(moved)) == first  # docs are not the model
    (moved / "generation_config.json").write_text('{"temperature": 0.1}')
    assert identity.fingerprint(str(moved)) != first  # any model file's content counts


def test_every_byte_of_a_file_counts(tmp_path):
    weights = tmp_path / "model.safetensors"
    data = bytearray(8 * identity.BLOCK)
    weights.write_bytes(bytes(data))
    first = identity.fingerprint(str(tmp_path))
    data[3 * identity.BLOCK + 17] = 1  # any byte, not only sampled blocks (issue #21)
    weights.write_bytes(bytes(data))
    assert identity.fingerprint(str(tmp_path)) != first


def test_a_hub_id_is_its_commit_from_the_cache_offline(tmp_path, monkeypatch, caplog):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    refs = tmp_path / "models--org--model" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("a" * 40)
    assert identity.fingerprint("org/model") == f"hub:org/model@{'a' * 40}"
    assert identity.fingerprint("org/model", revision="b" * 40) == f"hub:org/model@{'b' * 40}"  # a pinned commit
    (refs / "main").write_text("c" * 40)  # the repository moved on
    assert identity.fingerprint("org/model") == f"hub:org/model@{'c' * 40}"
    with caplog.at_level("WARNING", logger="bestofl_models.store.identity"):
        assert identity.fingerprint("org/unknown", revision="v1") == "hub:org/unknown@v1"
    assert "its commit is unknown" in caplog.text


@pytest.mark.parametrize("change", [{"dtype": "float32"}, {"backend": "vllm"}, {"quantization": "awq"}])
def test_settings_that_change_outputs_change_the_identity(tiny_generator_dir, change):
    from bestofl_models.harness.model_args import parse_model_args

    base = {"pretrained": str(tiny_generator_dir), "n": 2}
    before = identity.identity_id(identity.generator_identity(parse_model_args(base, "self-consistency")), "g")
    options = {**base, **change}
    if "quantization" in change:
        options["backend"] = "vllm"
    after = identity.identity_id(identity.generator_identity(parse_model_args(options, "self-consistency")), "g")
    assert before != after
