"""The paper's recipe at CPU scale, one command: train a verifier on a small model's samples, then compare
greedy decoding, self-consistency, Multi-ORM and Best-of-L on held-out problems.

    python -m experiments.small_scale.run --quick --out DIR      # under 15 minutes on 2 CPU cores
    python -m experiments.small_scale.run --full --out DIR

Stages (each skipped when its output exists, so a rerun continues where a killed one stopped):

1. ``train``: ``bestofl-train run`` with ``training/configs/small-scale.yaml`` on ``arith_train`` (the generator
   samples ``k`` answers per problem and language, labels, balance, LoRA fit on ``verifier_base``, evaluate on
   held-out train-split problems, export). bestofl-train skips its own finished stages.
2. ``bestofl``, ``multi-orm``, ``self-consistency``: ``lm_eval`` on the ``arith_xling_{lang}`` test tasks, same
   ``n``, one candidate store (Multi-ORM and self-consistency reuse Best-of-L's target-language samples).
3. ``greedy``: ``lm_eval --model hf`` (greedy, the chat template).
4. ``report``: ``bestofl-report`` on the store (budget curves 1..n, pool ablation, selected languages).
5. ``table``: ``results.md`` and ``results.json`` from the outputs above.

Every subprocess logs to ``DIR/logs/STAGE.log``; ``DIR/commands.sh`` lists the commands run.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "training" / "configs" / "small-scale.yaml"
PRESETS = ("bestofl", "multi-orm", "self-consistency")
METHODS = ("greedy", "self-consistency", "multi-orm", "bestofl")


@dataclasses.dataclass(frozen=True)
class Size:
    languages: tuple[str, ...]
    train_problems: int
    k: int
    fit_steps: int
    test_problems: int
    n: int
    max_gen_toks: int
    temperature: float = 0.7
    #: bestofl-train settings of this size (before --train-set).
    train_sets: tuple[str, ...] = ()


SIZES = {
    # A smoke run: so few samples hold a handful of correct answers at most (balancing could leave no row to
    # train on), and a fit step costs about 5 s per row on one core, so the verifier barely trains.
    "quick": Size(("en", "fr", "ru", "zh"), train_problems=5, k=2, fit_steps=2, test_problems=3, n=4,
                  max_gen_toks=64, train_sets=("balance.enabled=false", "fit.per_device_train_batch_size=4")),
    "full": Size(("en", "fr", "ru", "zh"), train_problems=20, k=2, fit_steps=12, test_problems=8, n=4,
                 max_gen_toks=96),
}
#: Candidates per generation batch (a CPU generates more tokens per second in large batches).
BATCH = 128


def _environment(threads: int) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env.setdefault(name, "1")  # every model is a local folder; the tasks are generated
    return env


class Experiment:
    def __init__(self, out: Path, size: Size, generator: str, verifier_base: str, threads: int,
                 train_overrides: list[str]):
        self.out, self.size, self.threads = out, size, threads
        self.generator, self.verifier_base, self.train_overrides = generator, verifier_base, train_overrides
        self.env = _environment(threads)
        self.store = out / "store"
        self.adapter = out / "train" / "adapter"
        self.timings_path = out / "timings.json"

    # ------------------------------------------------------------------------------------------- plumbing

    @property
    def settings(self) -> dict:
        return {**dataclasses.asdict(self.size), "generator": self.generator, "verifier_base": self.verifier_base,
                "train_overrides": self.train_overrides}

    def check_out_dir(self) -> None:
        """Refuse to mix two sizes in one directory (finished stages would be reused)."""
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "experiment.json"
        settings = json.loads(json.dumps(self.settings))
        if path.is_file() and json.loads(path.read_text()) != settings:
            raise SystemExit(f"{self.out} holds an experiment with other settings ({path}); use another --out")
        path.write_text(json.dumps(settings, indent=2) + "\n")

    def _run(self, stage: str, command: list[str]) -> None:
        logs = self.out / "logs"
        logs.mkdir(exist_ok=True)
        with open(self.out / "commands.sh", "a", encoding="utf-8") as record:
            record.write(" ".join(shlex.quote(part) for part in command) + "\n")
        print(f"[small_scale] {stage}: running (log: {logs / f'{stage}.log'})", file=sys.stderr, flush=True)
        started = time.time()
        with open(logs / f"{stage}.log", "w", encoding="utf-8") as log:
            done = subprocess.run(command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            tail = (logs / f"{stage}.log").read_text(encoding="utf-8", errors="replace")[-3000:]
            raise SystemExit(f"[small_scale] {stage} failed (exit {done.returncode}):\n{tail}")
        timings = json.loads(self.timings_path.read_text()) if self.timings_path.is_file() else {}
        timings[stage] = round(time.time() - started, 1)
        self.timings_path.write_text(json.dumps(timings, indent=2) + "\n")

    def _skip(self, stage: str, done: bool) -> bool:
        if done:
            print(f"[small_scale] {stage}: done already, skipped", file=sys.stderr, flush=True)
        return done

    @property
    def tasks(self) -> str:
        return ",".join(f"arith_xling_{lang}" for lang in self.size.languages)

    def results_file(self, method: str) -> Path | None:
        found = sorted((self.out / "eval" / method).rglob("results_*.json"))
        return found[-1] if found else None

    # --------------------------------------------------------------------------------------------- stages

    def train(self) -> None:
        if self._skip("train", (self.out / "train" / "metrics.json").is_file()):
            return
        size = self.size
        sets = [f"generator={self.generator}", f"verifier_base={self.verifier_base}",
                f"languages={':'.join(size.languages)}", f"limit={size.train_problems}", f"generate.k={size.k}",
                f"generate.temperature={size.temperature}", f"generate.max_gen_toks={size.max_gen_toks}",
                f"generate.batch_size={BATCH}",
                f"fit.max_steps={size.fit_steps}", *size.train_sets, *self.train_overrides]
        self._run("train", [sys.executable, "-m", "training.cli", "run", "--config", str(CONFIG),
                            "--output-dir", str(self.out / "train"), *(x for s in sets for x in ("--set", s))])

    def evaluate(self, method: str) -> None:
        if self._skip(method, self.results_file(method) is not None):
            return
        size = self.size
        common = ["--tasks", self.tasks, "--limit", str(size.test_problems), "--output_path",
                  str(self.out / "eval" / method), "--log_samples"]
        if method == "greedy":
            args = ["--model", "hf", "--model_args", f"pretrained={self.generator}", "--apply_chat_template",
                    "--gen_kwargs", f"max_gen_toks={size.max_gen_toks}", "--batch_size", str(BATCH)]
        else:
            model_args = {"pretrained": self.generator, "n": size.n, "temperature": size.temperature,
                          "top_p": 1.0, "max_gen_toks": size.max_gen_toks, "store": self.store, "batch_size": BATCH}
            if method != "self-consistency":
                model_args["verifier"] = self.adapter
            if method == "bestofl":
                model_args["languages"] = ":".join(size.languages)
            args = ["--model", method, "--model_args", ",".join(f"{k}={v}" for k, v in model_args.items())]
        self._run(method, [sys.executable, "-m", "lm_eval", *args, *common])

    def report(self) -> None:
        report = [sys.executable, "-m", "bestofl_models.report.cli"]
        if not self._skip("report", (self.out / "report" / "summary.md").is_file()):
            self._run("report", [*report, "--store", str(self.store), "--out", str(self.out / "report"),
                                 "--languages", ":".join(self.size.languages), "--max-budget", str(self.size.n),
                                 "--verifier", str(self.adapter), "--no-progress"])
        if not self._skip("export", (self.out / "report" / "candidates.jsonl").is_file()):
            self._run("export", [*report, "export", "--store", str(self.store), "--verifier", str(self.adapter),
                                 "--out", str(self.out / "report" / "candidates.jsonl")])

    def run(self) -> dict:
        self.check_out_dir()
        self.train()
        for method in (*PRESETS, "greedy"):
            self.evaluate(method)
        self.report()
        return write_table(self)


# ------------------------------------------------------------------------------------------------- the table


def _mean(values: list) -> float | None:
    numbers = [v for v in values if isinstance(v, (int, float))]
    return round(sum(numbers) / len(numbers), 4) if len(numbers) == len(values) and numbers else None


def _test_auc(candidates: Path, languages: tuple[str, ...]) -> dict[str, float | None]:
    """Verifier AUC per sampled language and over all of them (``all``) on the test candidates (held-out
    problems), from the store's export."""
    from training.evaluate import auc_or_none

    rows = [json.loads(line) for line in candidates.read_text(encoding="utf-8").splitlines() if line.strip()]
    scored = {}
    for row in rows:
        if row.get("score") is not None and row.get("correct") is not None:
            scored.setdefault(row["key"], row)  # a candidate used by several problems counts once
    groups = {lang: [r for r in scored.values() if r["lang"] == lang] for lang in languages}
    groups["all"] = list(scored.values())
    return {name: auc_or_none([int(r["correct"]) for r in group], [r["score"] for r in group])
            for name, group in groups.items()}


def _greedy_tokens(exp: Experiment) -> tuple[int, int]:
    """(problems, generated tokens) of the greedy ``hf`` run, recounted from its logged outputs with the
    generator's tokenizer (lm-eval's ``hf`` records no token counts)."""
    from transformers import AutoTokenizer

    from bestofl_models.generation.embedded import resolve_pretrained

    tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained(exp.generator))
    rows = [json.loads(line) for path in sorted((exp.out / "eval" / "greedy").rglob("samples_*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [row["resps"][0][0] for row in rows]
    return len(rows), sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])


def method_costs(exp: Experiment) -> dict[str, dict]:
    """Per method, over every test problem and target language: mean accuracy, generated and verifier tokens per
    answer (our models' results ``cost`` block, ``*_per_answer``: a pool sample shared by every target language
    counts in each answer; greedy recounted) and accuracy per 1k generated tokens."""
    costs = {}
    for method in METHODS:
        record = json.loads(exp.results_file(method).read_text())
        accuracy = _mean([r["exact_match,numeric"] for name, r in record["results"].items()
                          if name.startswith("arith_xling_")])
        if method == "greedy":
            problems, generated = _greedy_tokens(exp)
            per_problem, verifier = generated / problems if problems else None, None
        else:
            bestofl = record["config"]["bestofl"]
            problems, cost = bestofl["samples_used"]["requests"], bestofl["cost"]
            per_problem, verifier = cost["gen_tokens_per_answer"], cost["verifier_tokens_per_answer"]
        costs[method] = {
            "accuracy": accuracy, "problems": problems,
            "gen_tokens_per_problem": round(per_problem, 1) if per_problem is not None else None,
            "verifier_tokens_per_problem": round(verifier, 1) if verifier is not None else None,
            "accuracy_per_1k_gen_tokens": round(1000 * accuracy / per_problem, 4) if accuracy is not None
            and per_problem else None,
        }
    return costs


def collect(exp: Experiment) -> dict:
    """Every number of the table, per language, from the stages' own outputs."""
    size, languages = exp.size, exp.size.languages
    with open(exp.out / "report" / "budget_curves.csv", encoding="utf-8") as handle:
        curves = {(r["target"], r["method"], int(r["n"])): round(float(r["accuracy"]), 4) for r in csv.DictReader(handle)}
    with open(exp.out / "report" / "selected_language.csv", encoding="utf-8") as handle:
        picks = {}
        for r in csv.DictReader(handle):
            if int(r["n"]) == size.n:
                picks.setdefault(r["lang"], []).append(float(r["share"]))
    metrics = json.loads((exp.out / "train" / "metrics.json").read_text())
    test_auc = _test_auc(exp.out / "report" / "candidates.jsonl", languages)
    accuracy = {}
    for method in METHODS:
        results = json.loads(exp.results_file(method).read_text())["results"]
        accuracy[method] = {lang: round(results[f"arith_xling_{lang}"]["exact_match,numeric"], 4) for lang in languages}
    rows = {
        "single-sample accuracy": {lang: curves.get((lang, "random", 1)) for lang in languages},
        f"oracle pass@{size.n}, target language": {lang: curves.get((lang, "oracle", size.n)) for lang in languages},
        f"oracle pass@{size.n}, pool": {lang: curves.get((lang, "cross_oracle", size.n)) for lang in languages},
        "verifier AUC, validation (held-out train problems)": {
            lang: metrics["per_language"].get(lang, {}).get("auc") for lang in languages},
        "verifier AUC, test candidates": {lang: test_auc[lang] for lang in languages},
        **{f"accuracy: {method}": accuracy[method] for method in METHODS},
        f"share of Best-of-L picks from this language (n={size.n})": {
            lang: round(sum(picks.get(lang, [])) / len(picks[lang]), 4) if picks.get(lang) else None
            for lang in languages},
    }
    # macro means over the pool's languages (none for the shares, which sum to 1)
    table = {name: {**values, "mean": None if name.startswith("share") else _mean(list(values.values()))}
             for name, values in rows.items()}
    timings = json.loads(exp.timings_path.read_text()) if exp.timings_path.is_file() else {}
    return {
        "table": table,
        "costs": method_costs(exp),
        "settings": exp.settings,
        "auc_all_languages": {"validation": metrics.get("auc"), "validation_rows": metrics.get("n"),
                              "validation_positives": metrics.get("positives"),
                              "validation_pool": metrics.get("pool_auc"), "test_candidates": test_auc["all"]},
        "stage_seconds": timings,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": exp.threads},
    }


def _cell(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}" if not isinstance(value, str) else value


def markdown(result: dict) -> str:
    settings = result["settings"]
    languages = settings["languages"]
    lines = [
        "# Small-scale Best-of-L run (arith_xling, a pipeline check)", "",
        f"Generator `{settings['generator']}`, verifier base `{settings['verifier_base']}`; pool "
        f"{':'.join(languages)}; train: {settings['train_problems']} problems x {settings['k']} samples per "
        f"language, {settings['fit_steps']} fit steps; test: {settings['test_problems']} problems per language, "
        f"n={settings['n']}, temperature {settings['temperature']}, max_gen_toks {settings['max_gen_toks']}. "
        "Percentages; AUC x 100; – where undefined (one class only).", "",
        "| | " + " | ".join(languages) + " | mean |",
        "|---|" + "---|" * (len(languages) + 1),
    ]
    for name, values in result["table"].items():
        lines.append(f"| {name} | " + " | ".join(_cell(values[k]) for k in [*languages, "mean"]) + " |")
    lines += ["", "What each method's answers cost, per answer over every test problem and target language "
              "(greedy's tokens recounted from its outputs; the others from the results' `cost` block, where a pool "
              "sample that serves several target languages counts in each answer):", "",
              "| method | accuracy (mean) | generated tokens / answer | verifier tokens / answer | "
              "accuracy points per 1k generated tokens |", "|---|---|---|---|---|"]
    for method, cost in result["costs"].items():
        lines.append(f"| {method} | {_cell(cost['accuracy'])} | {cost['gen_tokens_per_problem'] or '–'} | "
                     f"{cost['verifier_tokens_per_problem'] or '–'} | {_cell(cost['accuracy_per_1k_gen_tokens'])} |")
    auc = result["auc_all_languages"]
    lines += ["", f"Verifier AUC over all languages: validation {_cell(auc['validation'])} ({auc['validation_rows']} "
              f"rows, {auc['validation_positives']} correct), all candidates of the validation problems "
              f"{_cell(auc['validation_pool'])}, test candidates {_cell(auc['test_candidates'])}."]
    seconds = result["stage_seconds"]
    lines += ["", "Wall time per stage (s, last run of each): "
              + ", ".join(f"{stage} {value}" for stage, value in seconds.items())
              + f"; total {round(sum(seconds.values()), 1)}.",
              f"Machine: {result['machine']['platform']}, {result['machine']['cpus']} CPUs, "
              f"{result['machine']['threads']} torch thread(s) per process.", ""]
    return "\n".join(lines)


def write_table(exp: Experiment) -> dict:
    result = collect(exp)
    (exp.out / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (exp.out / "results.md").write_text(markdown(result), encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.small_scale.run", description=__doc__.split("\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--quick", action="store_const", dest="size", const="quick", help=f"{SIZES['quick']}")
    size.add_argument("--full", action="store_const", dest="size", const="full", help=f"{SIZES['full']}")
    parser.add_argument("--out", required=True, type=Path, help="output directory (reuse it to resume)")
    parser.add_argument("--generator", help="generator folder (default: SmolLM2-135M-Instruct, built by "
                                            "bestofl_models.testing.smollm2_hf)")
    parser.add_argument("--verifier-base", help="verifier backbone (default: the generator)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    for name in ("train_problems", "k", "fit_steps", "test_problems", "n", "max_gen_toks"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, help="override the size's value")
    parser.add_argument("--languages", help="override the pool, e.g. en:zh")
    parser.add_argument("--train-set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra bestofl-train --set (repeatable), e.g. balance.enabled=false")
    args = parser.parse_args(argv)

    numbers = ("train_problems", "k", "fit_steps", "test_problems", "n", "max_gen_toks")
    overrides = {name: getattr(args, name) for name in numbers if getattr(args, name) is not None}
    if args.languages:
        overrides["languages"] = tuple(args.languages.split(":"))
    chosen = dataclasses.replace(SIZES[args.size], **overrides)
    generator = args.generator
    if generator is None:
        from bestofl_models.testing import smollm2_hf

        generator = str(smollm2_hf())
    generator = str(Path(generator).resolve())
    verifier_base = str(Path(args.verifier_base).resolve()) if args.verifier_base else generator
    experiment = Experiment(args.out.resolve(), chosen, generator, verifier_base, args.threads, args.train_set)
    started = time.time()
    result = experiment.run()
    print(markdown(result))
    print(f"[small_scale] done in {time.time() - started:.0f}s: {experiment.out / 'results.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
