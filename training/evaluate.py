"""Stage 6: how good is the trained verifier, and is it biased towards some languages?

Every candidate of every validation problem (all of them, not only the balanced subset) is scored by the
harness verifier (``bestofl_models.verifier``: same loading, same ``verifier_text``, same batching as
``lm_eval --model bestofl``), with a score cache (``scores.jsonl``) so a killed run resumes.

Metrics (``metrics.json``):

* ``auc``, ``accuracy`` (probability >= ``evaluate.threshold``), overall and ``per_language``, on the
  balanced validation rows; ``pool_auc`` on all candidates of the validation problems. Candidates whose
  score is not a finite number (NaN: the verifier produced none) are left out of these and counted
  (``dropped_non_finite``, ``pool_dropped_non_finite``).
* ``best_of_n``: per validation problem, over its whole cross-lingual pool: the verifier's top-scored
  candidate (``cross_orm``, Best-of-L), a random candidate (exact expectation), the majority answer
  (``cross_self_consistency``) and the oracle (any candidate correct); per language: the verifier's
  pick within that language (``multi_orm``), its majority vote and a random candidate. Selections are the
  harness's own (``bestofl_models.selection``, same tie rule: a non-finite score is no score and ranks last).
* ``top_language_distribution``: which languages the verifier's top picks come from, beside each
  language's share of the pool and of the correct candidates (a verifier that prefers one language
  regardless of correctness shows a top share far above its correct share: the paper's bias signature).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict

from tqdm.auto import tqdm

from .common import AppendLog, Stage, batched, logger, read_jsonl
from .config import TrainConfig

SETTINGS = ("evaluate", "languages")
SCORE_CHUNK = 256


def stage(out_dir, config: TrainConfig) -> Stage:
    return Stage("evaluate", out_dir, config, settings=SETTINGS, upstream=("fit", "balance", "label"))


def auc_or_none(labels: list[int], scores: list[float]) -> float | None:
    """ROC AUC, or None when only one class is present."""
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        return None
    return round(float(roc_auc_score(labels, scores)), 4)


def is_finite(score) -> bool:
    return isinstance(score, (int, float)) and math.isfinite(score)


def classification(rows: list[dict], scores: dict[str, float], threshold: float) -> dict:
    """AUC and accuracy over the rows with a finite score; the others are counted in ``dropped_non_finite``."""
    scored = [r for r in rows if is_finite(scores[r["key"]])]
    labels = [r["label"] for r in scored]
    probs = [scores[r["key"]] for r in scored]
    correct = [int(p >= threshold) == y for p, y in zip(probs, labels)]
    return {
        "auc": auc_or_none(labels, probs),
        "accuracy": round(sum(correct) / len(correct), 4) if correct else None,
        "n": len(scored),
        "positives": sum(labels),
        "dropped_non_finite": len(rows) - len(scored),
    }


def best_of_n(pool_rows: list[dict], scores: dict[str, float], languages: list[str]) -> tuple[dict, dict]:
    """Best-of-N accuracies over the validation problems' pools, and the top-pick language distribution."""
    from bestofl_models.selection import Scored, select

    by_problem: dict[str, list[dict]] = defaultdict(list)
    for row in pool_rows:
        by_problem[row["problem_id"]].append(row)
    target = languages[0]
    totals, per_lang = Counter(), defaultdict(Counter)
    top_langs, pool_langs, correct_langs = Counter(), Counter(), Counter()
    for rows in by_problem.values():
        correct_of = {r["key"]: r["correct"] for r in rows}
        scored = [Scored(r["key"], r["lang"], r["sample_idx"], r["answer"],
                         scores[r["key"]] if is_finite(scores[r["key"]]) else math.nan) for r in rows]
        top = select("cross_orm", scored, target, languages)
        top_langs[top.lang] += 1
        pool_langs.update(r["lang"] for r in rows)
        correct_langs.update(r["lang"] for r in rows if r["correct"])
        totals["problems"] += 1
        totals["verifier"] += correct_of[top.key]
        totals["majority"] += correct_of[select("cross_self_consistency", scored, target, languages).key]
        totals["random"] += sum(correct_of.values()) / len(rows)
        totals["oracle"] += any(correct_of.values())
        for lang in {r["lang"] for r in rows}:
            own = [s for s in scored if s.lang == lang]
            per_lang[lang]["problems"] += 1
            per_lang[lang]["verifier"] += correct_of[select("multi_orm", own, lang, languages).key]
            per_lang[lang]["majority"] += correct_of[select("self_consistency", own, lang, languages).key]
            per_lang[lang]["random"] += sum(correct_of[s.key] for s in own) / len(own)

    def rates(counts: Counter) -> dict:
        n = counts["problems"]
        return {"problems": n, **{k: round(v / n, 4) for k, v in counts.items() if k != "problems"}} if n else {}

    summary = rates(totals)
    summary["mean_pool_size"] = round(len(pool_rows) / max(len(by_problem), 1), 2)
    summary["per_language"] = {lang: rates(per_lang[lang]) for lang in languages if per_lang[lang]["problems"]}
    n_top, n_pool, n_correct = sum(top_langs.values()), sum(pool_langs.values()), sum(correct_langs.values())
    distribution = {
        lang: {
            "top_count": top_langs[lang],
            "top_share": round(top_langs[lang] / n_top, 4) if n_top else None,
            "pool_share": round(pool_langs[lang] / n_pool, 4) if n_pool else None,
            "correct_share": round(correct_langs[lang] / n_correct, 4) if n_correct else None,
        }
        for lang in languages
    }
    return summary, distribution


def harness_verifier(config: TrainConfig, verifier):
    """``verifier`` (adapter or full classifier folder) loaded as ``lm_eval --model bestofl`` loads it."""
    from bestofl_models.config import parse_model_args
    from bestofl_models.verifier import load_verifier

    return load_verifier(parse_model_args({
        "pretrained": config.generators[0] if config.generators else str(verifier),
        "verifier": str(verifier),
        "selection": "cross_orm",
        "store": None,
        "verifier_batch_size": config.evaluate.batch_size,
    }))


def score_rows(out_dir, config: TrainConfig, current: Stage, rows: list[dict]) -> dict[str, float]:
    """Verifier probability per candidate key, reusing ``scores.jsonl`` entries of this adapter."""
    from bestofl_models.verifier import score_responses

    adapter = out_dir / "fit" / "adapter"
    fit_print = current.upstream_manifest("fit")["fingerprint"]
    cache = AppendLog(current.path("scores.jsonl"))
    scores = {r["key"]: r["score"] for r in cache.records if r["fit"] == fit_print}
    todo = [r for r in rows if r["key"] not in scores]
    logger.info("evaluate: %d candidates to score (%d already scored)", len(todo), len(rows) - len(todo))
    if todo:
        verifier = harness_verifier(config, adapter)
        with tqdm(total=len(todo), desc="evaluate: scoring", unit="cand") as bar:
            for chunk in batched(todo, SCORE_CHUNK):
                probs = score_responses(verifier, [(r["question"], r["response"], r["lang"]) for r in chunk],
                                        progress=False)
                records = [{"key": r["key"], "fit": fit_print, "score": p} for r, p in zip(chunk, probs)]
                cache.append(records)
                scores.update({r["key"]: r["score"] for r in records})
                bar.update(len(chunk))
        verifier.close()
    return scores


def run(out_dir, config: TrainConfig) -> dict:
    current = stage(out_dir, config)
    current.begin()
    split_of = {r["problem_id"]: r["split"] for r in read_jsonl(out_dir / "balance" / "problems.jsonl")}
    validation = read_jsonl(out_dir / "balance" / "validation.jsonl")
    pool = [r for r in read_jsonl(out_dir / "label" / "labeled.jsonl") if split_of.get(r["problem_id"]) == "validation"]
    scores = score_rows(out_dir, config, current, pool)
    non_finite = sum(not is_finite(scores[r["key"]]) for r in pool)
    if non_finite:
        logger.warning("evaluate: %d of %d scores are not finite numbers (the verifier produced none for them); "
                       "they are left out of the AUC and accuracy and rank last in Best-of-N", non_finite, len(pool))

    threshold = config.evaluate.threshold
    overall = classification(validation, scores, threshold)
    per_language = {
        lang: classification([r for r in validation if r["lang"] == lang], scores, threshold)
        for lang in config.languages
    }
    bon, distribution = best_of_n(pool, scores, config.languages)
    pool_scored = [r for r in pool if is_finite(scores[r["key"]])]
    metrics = {
        **overall,
        "per_language": per_language,
        "pool_auc": auc_or_none([r["label"] for r in pool_scored], [scores[r["key"]] for r in pool_scored]),
        "pool_candidates": len(pool),
        "pool_dropped_non_finite": len(pool) - len(pool_scored),
        "best_of_n": bon,
        "top_language_distribution": distribution,
        "threshold": threshold,
        "verifier": str(out_dir / "fit" / "adapter"),
    }
    if overall["auc"] is None:
        metrics["note"] = "AUC undefined: the validation rows with a finite score hold one class only (or none)"
    current.path("metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    logger.info("evaluate: AUC %s, accuracy %s on %d validation rows; Best-of-N: verifier %s, majority %s, "
                "random %s, oracle %s over %s problems", overall["auc"], overall["accuracy"], overall["n"],
                bon.get("verifier"), bon.get("majority"), bon.get("random"), bon.get("oracle"), bon.get("problems"))
    return current.finish({"validation_rows": len(validation), "pool_candidates": len(pool),
                           "validation_problems": bon.get("problems", 0)}, auc=overall["auc"])
