"""``bestofl-report compare``: the paired statistics, and the command on lm-eval-shaped output folders.

The folders here are written in the format lm-eval 0.4.13 writes with ``--output_path ... --log_samples`` (one
``results_<date>.json`` and one ``samples_<task>_<date>.jsonl`` per task); ``test_compare_cli.py`` runs lm-eval.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from bestofl_models.report import cli
from bestofl_models.report.lm_eval_runs import load_run, unique_labels
from bestofl_models.report.compare_render import COMPARE_CSV, PLOT_PNG, RUN_COSTS_CSV, SUMMARY_MD
from bestofl_models.report.paired import discordant, mcnemar_exact, paired_bootstrap

HF = {"model": "hf", "model_args": {"pretrained": "/models/tiny-generator"}}
BESTOFL = {"model": "bestofl", "model_args": {"pretrained": "/models/tiny-generator", "verifier": "/models/ver"},
           "bestofl": {"preset": "bestofl", "pretrained": "/models/tiny-generator", "verifier": "/models/ver",
                       "selection": "cross_orm", "pool": ["en", "de"], "n": 4, "temperature": 0.7}}
NUMERIC = [{"name": "numeric", "filter": [{"function": "custom", "filter_fn": "<function extract_answers at 0x7f01>"},
                                          {"function": "take_first"}]}]


def write_run(root: Path, config: dict, tasks: dict[str, dict[int, float]], *, stamp="2026-01-01T00-00-00.000001",
              filters=NUMERIC, metric="exact_match", doc_salt="") -> Path:
    """An lm-eval output folder: ``tasks`` maps task -> {doc_id: metric value} under every filter of ``filters``."""
    folder = root / "model"
    folder.mkdir(parents=True, exist_ok=True)
    configs = {task: {"task": task, "metric_list": [{"metric": metric, "aggregation": "mean", "higher_is_better": True}],
                      "filter_list": filters} for task in tasks}
    (folder / f"results_{stamp}.json").write_text(json.dumps({"config": {**config, "limit": None}, "configs": configs}))
    for task, values in tasks.items():
        rows = [{"doc_id": doc_id, "doc": {"lang": task[-2:], "question": f"q{doc_id}"}, "target": str(doc_id),
                 "filter": f["name"], "metrics": [metric], metric: value if i == 0 else 1 - value,
                 "doc_hash": hashlib.sha256(f"{task}{doc_id}{doc_salt}".encode()).hexdigest()}
                for doc_id, value in values.items() for i, f in enumerate(filters)]
        (folder / f"samples_{task}_{stamp}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def compare(tmp_path: Path, *paths: Path, extra: tuple[str, ...] = ()) -> list[dict]:
    out = tmp_path / "cmp"
    assert cli.main(["compare", *map(str, paths), "--out", str(out), "--bootstrap-iters", "2000", *extra]) == 0
    assert {p.name for p in out.iterdir()} == {COMPARE_CSV, RUN_COSTS_CSV, SUMMARY_MD, PLOT_PNG,
                                                 ".bestofl-report"}
    assert (out / PLOT_PNG).read_bytes().startswith(b"\x89PNG")
    with open(out / COMPARE_CSV, newline="") as f:
        return list(csv.DictReader(f))


def refusal(tmp_path: Path, capsys, *paths: Path) -> str:
    with pytest.raises(SystemExit):
        cli.main(["compare", *map(str, paths), "--out", str(tmp_path / "cmp")])
    assert not (tmp_path / "cmp").exists()
    return capsys.readouterr().err


# --------------------------------------------------------------------------------------------- statistics


@pytest.mark.parametrize(("b", "c", "p"), [(0, 0, 1.0), (1, 0, 1.0), (0, 5, 0.0625), (5, 0, 0.0625),
                                            (2, 8, 0.109375), (3, 12, 0.03515625), (10, 10, 1.0), (0, 1, 1.0)])
def test_mcnemar_exact_known_values(b, c, p):
    assert mcnemar_exact(b, c) == p


def test_mcnemar_exact_is_the_two_sided_binomial_test():
    """Same as summing every outcome no likelier than the observed one (the binomial test's own definition)."""
    for n in range(40):
        for b in range(n + 1):
            pmf = [Fraction(math.comb(n, k), 2**n) for k in range(n + 1)]
            expected = float(min(1, sum(q for q in pmf if q <= pmf[b])))
            assert mcnemar_exact(b, n - b) == pytest.approx(expected, rel=1e-12)
    assert 0 < mcnemar_exact(400, 600) < 1e-9  # big counts: exact integers, no overflow
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def test_discordant_counts():
    assert discordant(np.array([1, 1, 0, 0, 1]), np.array([1, 0, 1, 1, 0])) == (2, 2)


def test_bootstrap_interval_contains_the_estimate_and_is_seeded():
    rng = np.random.default_rng(7)
    base, run = rng.random(300) < 0.5, rng.random(300) < 0.6
    estimate = run.mean() - base.mean()
    low, high = paired_bootstrap(base, run, iters=4000, seed=1)
    assert low < estimate < high
    assert paired_bootstrap(base, run, iters=4000, seed=1) == (low, high)
    scores = rng.random(300), rng.random(300)  # continuous values: another seed moves the quantiles
    assert paired_bootstrap(*scores, seed=2) == paired_bootstrap(*scores, seed=2) != paired_bootstrap(*scores, seed=3)
    # close to the normal interval of a mean of paired differences
    diff = run.astype(float) - base
    half = 1.96 * diff.std(ddof=1) / math.sqrt(diff.size)
    assert (high - low) / 2 == pytest.approx(half, rel=0.1)


def test_bootstrap_strata_keep_each_task_size():
    """Task A always +1, task B always 0: resampling within tasks leaves the pooled mean exactly 0.5."""
    base, run = np.zeros(20), np.r_[np.ones(10), np.zeros(10)]
    strata = np.r_[np.zeros(10), np.ones(10)]
    assert paired_bootstrap(base, run, iters=500, strata=strata) == (0.5, 0.5)
    low, high = paired_bootstrap(base, run, iters=500)
    assert low < 0.5 < high


# --------------------------------------------------------------------------------------------- the command


def test_paired_numbers_per_task_and_overall(tmp_path):
    base = {"mgsm_xling_de": dict.fromkeys(range(10), 0.0), "mgsm_xling_en": dict.fromkeys(range(10), 1.0)}
    run = {"mgsm_xling_de": {i: float(i < 8) for i in range(10)},  # b=0, c=8
           "mgsm_xling_en": {i: float(i >= 2) for i in range(10)}}  # b=2, c=0
    rows = compare(tmp_path, write_run(tmp_path / "hf", HF, base), write_run(tmp_path / "bol", BESTOFL, run))
    by = {(r["task"], r["run"]): r for r in rows}
    label = "bestofl tiny-generator verifier=ver n=4 pool=en:de"
    assert {r["run"] for r in rows} == {"hf tiny-generator", label}
    de, en, overall = by["mgsm_xling_de", label], by["mgsm_xling_en", label], by["overall", label]
    assert (de["lang"], de["metric"], de["shared_docs"]) == ("de", "exact_match,numeric", "10")
    assert float(de["difference"]) == pytest.approx(0.8) and float(en["difference"]) == pytest.approx(-0.2)
    assert (de["baseline_only_correct"], de["run_only_correct"]) == ("0", "8")
    assert float(de["mcnemar_p"]) == mcnemar_exact(0, 8) == 2 / 256
    assert float(overall["difference"]) == pytest.approx(0.3)
    assert (overall["baseline_only_correct"], overall["run_only_correct"], overall["shared_docs"]) == ("2", "8", "20")
    assert float(overall["mcnemar_p"]) == pytest.approx(mcnemar_exact(2, 8))
    for row in (de, en, overall):
        assert float(row["ci_low"]) <= float(row["difference"]) <= float(row["ci_high"])
    baseline = by["mgsm_xling_de", "hf tiny-generator"]
    assert baseline["is_baseline"] == "True" and baseline["difference"] == "" and baseline["accuracy"] == "0.0"
    summary = (tmp_path / "cmp" / SUMMARY_MD).read_text()
    assert "# Paired comparison against `hf tiny-generator`" in summary and "+80.0" in summary


def test_shared_docs_only_and_the_report_says_so(tmp_path):
    base = {"mgsm_xling_de": {i: float(i % 2) for i in range(10)}}
    run = {"mgsm_xling_de": {i: 1.0 for i in range(4)}}  # a shorter --limit
    rows = compare(tmp_path, write_run(tmp_path / "a", HF, base), write_run(tmp_path / "b", BESTOFL, run))
    row = next(r for r in rows if r["is_baseline"] == "False")
    assert (row["docs"], row["shared_docs"]) == ("4", "4")
    assert float(row["baseline_accuracy"]) == 0.5 and float(row["difference"]) == 0.5  # on docs 0-3 only
    baseline = next(r for r in rows if r["is_baseline"] == "True")
    assert float(baseline["accuracy"]) == 0.5 and baseline["docs"] == "10"
    summary = (tmp_path / "cmp" / SUMMARY_MD).read_text()
    assert "scored 4 docs and the baseline 10; compared on the 4 docs both scored only" in summary


def test_the_first_filter_is_the_primary_metric(tmp_path):
    """lm-eval's mgsm_native_cot_* have two filters; the first (strict-match) is scored."""
    filters = [{"name": "strict-match", "filter": []}, {"name": "flexible-extract", "filter": []}]
    tasks = {"mgsm_native_cot_de": {0: 1.0, 1: 0.0}}
    rows = compare(tmp_path, write_run(tmp_path / "a", HF, tasks, filters=filters),
                   write_run(tmp_path / "b", BESTOFL, tasks, filters=filters))
    assert {(r["metric"], r["accuracy"]) for r in rows} == {("exact_match,strict-match", "0.5")}


def test_refuses_runs_whose_metric_or_filter_differ(tmp_path, capsys):
    tasks = {"mgsm_xling_de": {0: 1.0}}
    base = write_run(tmp_path / "a", HF, tasks)
    other = write_run(tmp_path / "b", BESTOFL, tasks, filters=[{"name": "strict-match", "filter": []}])
    err = refusal(tmp_path, capsys, base, other)
    assert "cannot compare mgsm_xling_de: its filter_list differs between 'hf tiny-generator'" in err
    err = refusal(tmp_path, capsys, base, write_run(tmp_path / "c", BESTOFL, tasks, metric="acc"))
    assert "its metric_list differs" in err


def test_filter_function_addresses_are_not_a_mismatch(tmp_path):
    moved = [{**NUMERIC[0], "filter": [{"function": "custom", "filter_fn": "<function extract_answers at 0x9e3>"},
                                       {"function": "take_first"}]}]
    tasks = {"mgsm_xling_de": {0: 1.0}}
    compare(tmp_path, write_run(tmp_path / "a", HF, tasks), write_run(tmp_path / "b", BESTOFL, tasks, filters=moved))


def test_refuses_different_docs_under_one_doc_id(tmp_path, capsys):
    tasks = {"mgsm_xling_de": {0: 1.0, 1: 0.0}}
    err = refusal(tmp_path, capsys, write_run(tmp_path / "a", HF, tasks),
                  write_run(tmp_path / "b", BESTOFL, tasks, doc_salt="other data"))
    assert "cannot compare mgsm_xling_de: doc 0 is not the same doc" in err


def test_missing_samples_say_to_log_samples(tmp_path, capsys):
    run = write_run(tmp_path / "a", HF, {"mgsm_xling_de": {0: 1.0}})
    next(run.rglob("samples_*.jsonl")).unlink()
    assert "re-run with --log_samples" in refusal(tmp_path, capsys, run)


def test_labels_come_from_model_info_and_are_unique(tmp_path):
    tasks = {"mgsm_xling_de": {0: 1.0}}
    hot = {**BESTOFL, "bestofl": {**BESTOFL["bestofl"], "temperature": 1.0}}
    sc = {"model": "self-consistency", "bestofl": {**BESTOFL["bestofl"], "preset": "self-consistency",
                                                   "verifier": None, "selection": "self_consistency",
                                                   "pool": "target", "n": 8}}
    paths = [write_run(tmp_path / name, config, tasks, stamp=stamp) for name, config, stamp in
             [("a", BESTOFL, "s1"), ("b", hot, "s2"), ("c", HF, "s3"), ("d", HF, "s4"), ("e", sc, "s5"),
              ("f", {**HF, "model_args": {"pretrained": "Qwen/Qwen2.5-7B-Instruct"}}, "s6")]]
    runs = [load_run(str(next(p.rglob("results_*.json")))) for p in paths]
    assert unique_labels(runs) == [
        "bestofl tiny-generator verifier=ver n=4 pool=en:de temperature=0.7",
        "bestofl tiny-generator verifier=ver n=4 pool=en:de temperature=1.0",
        "hf tiny-generator @s3", "hf tiny-generator @s4",  # identical model info: the results file's date
        "self-consistency tiny-generator n=8", "hf Qwen/Qwen2.5-7B-Instruct"]


def test_baseline_by_label_or_position(tmp_path, capsys):
    a = write_run(tmp_path / "a", HF, {"mgsm_xling_de": {0: 1.0, 1: 1.0}})
    b = write_run(tmp_path / "b", BESTOFL, {"mgsm_xling_de": {0: 0.0, 1: 1.0}})
    by_position = compare(tmp_path, a, b, extra=("--baseline", "2"))
    by_label = compare(tmp_path, a, b, extra=("--baseline", "bestofl tiny-generator verifier=ver n=4 pool=en:de"))
    assert by_position == by_label
    assert float(next(r for r in by_label if r["run"] == "hf tiny-generator")["difference"]) == 0.5
    with pytest.raises(SystemExit):
        cli.main(["compare", str(a), str(b), "--out", str(tmp_path / "x"), "--baseline", "3"])
    assert "1 = 'hf tiny-generator'; 2 = 'bestofl" in capsys.readouterr().err


def test_out_folder_with_other_files_is_refused_before_reading(tmp_path, capsys):
    (tmp_path / "cmp").mkdir()
    (tmp_path / "cmp" / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit):
        cli.main(["compare", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "cmp")])
    assert "not a bestofl report" in capsys.readouterr().err
    assert (tmp_path / "cmp" / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------ issue #23 item 3: the quick start's folder


def test_a_results_file_without_samples_is_skipped_when_another_has_them(tmp_path, capsys):
    """The quick start run first without --log_samples, then with it, into one --output_path: the first results
    file is skipped with a warning (and a note in summary.md), not the whole folder refused."""
    tasks = {"mgsm_xling_de": dict.fromkeys(range(5), 1.0)}
    base = write_run(tmp_path / "hf", HF, tasks)
    run = write_run(tmp_path / "bol", BESTOFL, tasks, stamp="2026-01-01T00-00-00.000001")
    write_run(tmp_path / "bol", BESTOFL, tasks, stamp="2026-01-02T00-00-00.000002")
    without = next(run.rglob("samples_*2026-01-01*.jsonl"))
    without.unlink()
    rows = compare(tmp_path, base, run)
    assert {r["run"] for r in rows} == {"hf tiny-generator", "bestofl tiny-generator verifier=ver n=4 pool=en:de"}
    err = capsys.readouterr().err
    assert "warning: skipped" in err and "results_2026-01-01T00-00-00.000001.json" in err and "--log_samples" in err
    assert err.count("results_2026-01-01T00-00-00.000001.json") == 1  # warned once, not repeated as a note
    assert "results_2026-01-01T00-00-00.000001.json: no samples" in (tmp_path / "cmp" / SUMMARY_MD).read_text()


def test_a_folder_where_no_results_file_has_samples_is_one_line(tmp_path, capsys):
    tasks = {"mgsm_xling_de": {0: 1.0}}
    run = write_run(tmp_path / "a", HF, tasks, stamp="s1")
    write_run(tmp_path / "a", HF, tasks, stamp="s2")
    for samples in run.rglob("samples_*.jsonl"):
        samples.unlink()
    err = refusal(tmp_path, capsys, write_run(tmp_path / "b", HF, tasks), run)
    message = [line for line in err.splitlines() if "error:" in line]
    assert len(message) == 1 and "none of the 2 results files under" in message[0]
    assert "re-run with --log_samples" in message[0]


def _rows_of_one_task(tmp_path):
    base = {"mgsm_xling_de": {i: float(i % 2) for i in range(5)}}
    run = {"mgsm_xling_de": dict.fromkeys(range(5), 1.0)}
    compare(tmp_path, write_run(tmp_path / "a", HF, base), write_run(tmp_path / "b", BESTOFL, run))
    with open(tmp_path / "cmp" / COMPARE_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:  # back to the types compare_runs makes
        row["is_baseline"] = row["is_baseline"] == "True"
        row["shared_docs"] = int(row["shared_docs"] or 0)
        for key in ("difference", "ci_low", "ci_high"):
            row[key] = float(row[key]) if row[key] else ""
    return rows


def test_the_plot_title_counts_the_shared_docs_of_a_single_task(tmp_path):
    """One task gives no overall row: the title said 0 docs while summary.md said 5."""
    import matplotlib.pyplot as plt

    from bestofl_models.report.compare_render import plot_figure

    rows = _rows_of_one_task(tmp_path)
    assert "| mgsm_xling_de | de | 5 |" in (tmp_path / "cmp" / SUMMARY_MD).read_text()
    fig = plot_figure(rows, "hf tiny-generator")
    try:
        assert "(5 docs shared with the baseline)" in fig.axes[0].get_title()
    finally:
        plt.close(fig)


def test_the_plot_legend_does_not_cover_the_x_axis_label(tmp_path):
    import matplotlib.pyplot as plt

    from bestofl_models.report.compare_render import plot_figure

    fig = plot_figure(_rows_of_one_task(tmp_path), "hf tiny-generator")
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        label = fig.axes[0].xaxis.label.get_window_extent(renderer)
        legend = fig.legends[0] if fig.legends else fig.axes[0].get_legend()
        box = legend.get_window_extent(renderer)
        assert not box.overlaps(label), (box, label)
        assert box.y1 <= label.y0  # below it, inside the figure
        assert box.y0 >= 0
    finally:
        plt.close(fig)


def test_runs_of_the_embedded_alias_are_labelled_by_it(tmp_path):
    """The quick start's pair: `hf smollm2-135m` and `bestofl smollm2-135m ...` (not the converted folder's name)."""
    folder = "/root/.cache/bestofl/embedded/smollm2-135m-instruct-v1"
    hf = {"model": "hf", "model_args": "pretrained=smollm2-135m"}
    ours = {"model": "bestofl", "model_args": "pretrained=smollm2-135m,n=4",
            "bestofl": {**BESTOFL["bestofl"], "pretrained": folder, "verifier": "self", "pool": QUICK_POOL, "n": 4}}
    tasks = {"mgsm_xling_de": dict.fromkeys(range(5), 0.0)}
    rows = compare(tmp_path, write_run(tmp_path / "hf", hf, tasks), write_run(tmp_path / "bol", ours, tasks))
    assert {r["run"] for r in rows} == {"hf smollm2-135m", "bestofl smollm2-135m verifier=self n=4 pool=en:de:fr:zh"}


QUICK_POOL = ["en", "de", "fr", "zh"]
