"""--model_args parsing: CLI strings and typed values, defaults, and errors that say what to change."""

from __future__ import annotations

import pytest
from lm_eval.utils import simple_parse_args_string

from bestofl_models.harness.config import AUTO_BATCH_SIZE, default_store
from bestofl_models.harness.model_args import check_target, parse_model_args
from bestofl_models.harness.presets import PRESETS
from bestofl_models.generation.model_path import looks_like_local_path
from bestofl_tasks.languages import DEFAULT_POOL


def cli(text: str, preset: str = "bestofl", harness=None):
    return parse_model_args(simple_parse_args_string(text), preset, harness)


def test_cli_strings_become_typed_values(tmp_path):
    config = cli(
        f"pretrained=some/model,verifier=some/adapter,languages=en:de:fr,n=6,temperature=0.5,top_p=0.9,"
        f"max_gen_toks=64,seed=7,store={tmp_path},batch_size=4,verifier_batch_size=2,dtype=float32"
    )
    assert config.languages == ("en", "de", "fr")
    assert (config.n, config.temperature, config.top_p, config.max_gen_toks, config.seed) == (6, 0.5, 0.9, 64, 7)
    assert config.store == str(tmp_path)
    assert (config.batch_size, config.verifier_batch_size, config.dtype) == (4, 2, "float32")
    assert (config.selection, config.pool, config.backend) == ("cross_orm", "languages", "hf")


def test_typed_values_from_simple_evaluate(tmp_path):
    config = parse_model_args(
        {"pretrained": "m", "verifier": "v", "languages": ["en", "zh"], "n": 2, "temperature": 1,
         "store": tmp_path, "keep_generator": True},
        "bestofl",
    )
    assert config.languages == ("en", "zh")
    assert config.temperature == 1.0 and isinstance(config.temperature, float)
    assert config.keep_generator is True


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("BESTOFL_STORE", str(tmp_path / "s"))
    config = cli("pretrained=m,verifier=v")
    assert config.languages == DEFAULT_POOL
    assert (config.n, config.temperature, config.top_p, config.max_gen_toks) == (8, 0.7, 1.0, 512)
    assert config.store == str(tmp_path / "s") == default_store()
    assert config.batch_size == AUTO_BATCH_SIZE["hf"]


def test_store_none_keeps_memory_only():
    assert cli("pretrained=m,verifier=v,store=none").store is None


def test_presets_fix_selection_and_pool():
    assert cli("pretrained=m,verifier=v", "multi-orm").selection == "multi_orm"
    sc = cli("pretrained=m", "self-consistency")
    assert (sc.selection, sc.pool, sc.verifier) == ("self_consistency", "target", None)
    assert sc.pool_for("de") == ("de",)
    assert cli("pretrained=m,verifier=v,languages=en:de").pool_for("fr") == ("en", "de")
    assert cli("pretrained=m,selection=weighted_vote,verifier=v", "self-consistency").selection == "weighted_vote"
    assert set(PRESETS) == {"bestofl", "multi-orm", "self-consistency"}


def test_model_args_batch_size_wins_over_the_harness_default():
    assert cli("pretrained=m,verifier=v,batch_size=8", harness={"batch_size": 1}).batch_size == 8
    assert cli("pretrained=m,verifier=v", harness={"batch_size": "3", "device": None}).batch_size == 3
    assert cli("pretrained=m,verifier=v", harness={"batch_size": "auto", "max_batch_size": 5}).batch_size == 5


def test_backend_options_pass_through():
    config = cli("pretrained=m,verifier=v,backend=vllm,tensor_parallel_size=2,gpu_memory_utilization=0.5,"
                 "enforce_eager=true,max_model_len=2048")
    assert dict(config.backend_options) == {
        "tensor_parallel_size": 2, "gpu_memory_utilization": 0.5, "enforce_eager": True, "max_model_len": 2048,
    }


@pytest.mark.parametrize(
    "args, message",
    [
        ("pretrained=m,verifier=v,languages=en:xx", "Supported: en"),
        ("pretrained=m,verifier=v,languages=en:en", "listed twice"),
        ("pretrained=m,verifier=v,n=0", "n is the total number of samples"),
        ("pretrained=m,verifier=v,temperature=-1", "temperature must be >= 0"),
        ("pretrained=m,verifier=v,languages=en:de,n=4,temperature=0", "would all be identical"),
        ("pretrained=m,verifier=v,top_p=0", "top_p must be in"),
        ("pretrained=m,verifier=v,colour=red", "Valid keys: pretrained"),
        ("pretrained=m,verifier=v,verifier_format=xml", "not one of: auto, bestofl, chat"),
        ("pretrained=m,verifier=self,verifier_format=chat", "verifier_format=chat is for classifier verifiers"),
        ("pretrained=m,verifier=judge:", "needs a model after the colon"),
        ("pretrained=m,verifier=v,selection=best", "Choose one of"),
        ("pretrained=m,verifier=v,backend=tgi", "not one of: hf, vllm"),
        ("pretrained=m,verifier=v,tensor_parallel_size=2", "applies to backend=vllm only"),
        ("verifier=v", "needs pretrained="),
        ("pretrained=m,verifier=v,n=two", "n must be an integer"),
        ("pretrained=m,verifier=v,batch_size=0", "batch_size must be >= 1"),
        ("pretrained=m,verifier=v,store=", "store= is empty; give a directory"),  # store=$UNSET
        ("pretrained=m,verifier=v,read_stores=/no/such/store", "read_stores: no store directory at /no/such/store"),
    ],
)
def test_errors_say_what_to_change(args, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("=", "=")):
        cli(args)


def test_no_verifier_means_the_generator_judges_when_the_selection_needs_one(tmp_path):
    for preset, selection in (("bestofl", ""), ("multi-orm", ""), ("self-consistency", ",selection=weighted_vote")):
        config = cli(f"pretrained=m{selection}", preset)
        assert (config.verifier, config.verifier_defaulted, config.judge_model) == ("self", True, "m")
    sc = cli("pretrained=m", "self-consistency")
    assert (sc.verifier, sc.verifier_defaulted, sc.needs_verifier) == (None, False, False)
    given = cli("pretrained=m,verifier=self")
    assert (given.verifier, given.verifier_defaulted, given.judge_model) == ("self", False, "m")
    (tmp_path / "judge").mkdir()
    judge = cli(f"pretrained=m,verifier=judge:{tmp_path / 'judge'}")
    assert judge.judge_model == str(tmp_path / "judge") and judge.verifier == f"judge:{tmp_path / 'judge'}"
    assert cli("pretrained=m,verifier=org/rm").judge_model is None
    assert cli("pretrained=m,verifier=org/rm,verifier_format=chat").summary()["verifier_format"] == "chat"


def test_store_none_is_the_explicit_in_memory_choice(tmp_path):
    assert cli("pretrained=m,verifier=v,store=none").store is None
    config = cli(f"pretrained=m,verifier=v,store={tmp_path},read_stores={tmp_path}:{tmp_path}")
    assert config.store == str(tmp_path) and config.read_stores == (str(tmp_path), str(tmp_path))


def test_greedy_is_fine_with_one_sample_per_language():
    assert cli("pretrained=m,verifier=v,languages=en:de,n=2,temperature=0").temperature == 0
    with pytest.raises(ValueError, match="identical"):
        cli("pretrained=m,n=2,temperature=0", "self-consistency")


def test_target_restricted_selection_needs_the_target_in_the_pool():
    config = cli("pretrained=m,verifier=v,languages=en:de,selection=multi_orm")
    check_target(config, "de", "mgsm_xling_de")
    with pytest.raises(ValueError, match="not in languages=en:de"):
        check_target(config, "fr", "mgsm_xling_fr")
    check_target(cli("pretrained=m,verifier=v,languages=en:de"), "fr", "mgsm_xling_fr")  # cross_orm: fine


def test_local_paths_and_hub_ids_are_told_apart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-verifier").mkdir()
    assert not looks_like_local_path("Qwen/Qwen2.5-3B-Instruct")  # org/name: a Hub id
    assert not looks_like_local_path("gpt2")  # no such folder here
    for local in ("/abs/model", "./model", "../model", "~/model", ".cache/model", "runs/v1/adapter", "my-verifier"):
        assert looks_like_local_path(local), local


def test_adaptive_rules_are_read_canonically_and_recorded():
    from bestofl_models.selection.adaptive import AdaptiveRule

    config = cli("pretrained=m,verifier=v,adaptive=margin:2+score:0.9")
    assert config.adaptive == AdaptiveRule(score=0.9, margin=2)
    assert config.summary()["adaptive"] == "score:0.9+margin:2"
    assert cli("pretrained=m,verifier=v").adaptive is None and cli("pretrained=m,adaptive=none").adaptive is None
    assert cli("pretrained=m,adaptive=margin:3", "self-consistency").adaptive == AdaptiveRule(margin=3)


@pytest.mark.parametrize("text, preset, message", [
    ("adaptive=votes:3", "bestofl", "cannot read 'votes:3'"),
    ("adaptive=score:2", "bestofl", "not a probability threshold"),
    ("adaptive=score:0.9", "self-consistency", "adaptive=margin:M"),
    ("adaptive=score:0.9,selection=cross_self_consistency", "bestofl", "selection=cross_self_consistency uses no"),
])
def test_bad_adaptive_rules_fail_at_parse_time_saying_what_to_write(text, preset, message):
    with pytest.raises(ValueError, match=message):
        cli(f"pretrained=m,{text}", preset)


def test_languages_auto_reads_a_recommend_pool_file_or_its_folder(tmp_path):
    import json

    from bestofl_models.selection.pool import RECOMMENDED_POOL_FILE, RECOMMENDED_POOL_FORMAT

    file = tmp_path / RECOMMENDED_POOL_FILE
    file.write_text(json.dumps({"format": RECOMMENDED_POOL_FORMAT, "version": 1, "pool": ["fr", "de", "ja"],
                                "generator_id": "g", "verifier_id": "v"}), encoding="utf-8")
    for where in (tmp_path, file):
        config = cli(f"pretrained=m,languages=auto:{where}")
        assert config.languages == ("fr", "de", "ja")
        assert config.summary()["languages_file"] == str(file) == config.pool_file.file
        assert (config.pool_file.generator_id, config.pool_file.verifier_id) == ("g", "v")
    with pytest.raises(ValueError, match="no file .*recommend-pool --store"):
        cli(f"pretrained=m,languages=auto:{tmp_path / 'missing.json'}")
    with pytest.raises(ValueError, match="needs a file after the colon"):
        cli("pretrained=m,languages=auto:")
    file.write_text(json.dumps({"format": RECOMMENDED_POOL_FORMAT, "version": 1, "pool": ["fr", "xx"]}))
    with pytest.raises(ValueError, match="unknown language code"):
        cli(f"pretrained=m,languages=auto:{file}")
