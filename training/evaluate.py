"""Stage 6: how good is the trained verifier, and is it biased towards some languages?

Every candidate of every validation problem (all of them, not only the balanced subset) is scored by the
harness verifier (``bestofl_models.verifiers.spec``: same loading, same ``verifier_text``, same batching as
``lm_eval --model bestofl``) into the generate stage's candidate store (``generate/store``), keyed by the
verifier's identity as the harness keys it (fingerprints of the adapter and its base, dtype, text format). A
killed run resumes from the store, a rerun of the same adapter scores nothing, and ``bestofl-report --store
OUT/generate/store`` reads these scores. (Earlier versions cached scores in ``evaluate/scores.jsonl``; that
file is no longer read: the first rerun scores into the store again.)

Metrics (``metrics.json``):

* ``auc``, ``accuracy`` (probability >= ``evaluate.threshold``), overall and ``per_language``, on the
  balanced validation rows; ``pool_auc`` on all candidates of the validation problems. Candidates whose
  score is not a finite number (the verifier produced none) are left out of these and counted
  (``dropped_non_finite``, ``pool_dropped_non_finite``).
* ``best_of_n``: the report builder's numbers (``bestofl_models.report``, the estimators of ``bestofl-report``)
  at the full budget, i.e. over all candidates of the validation problems that have every language (target:
  the first language). ``methods``: every selection of ``selection.METHODS`` over the pool and the baselines;
  the named fields are ``verifier`` (``cross_orm``, Best-of-L), ``majority`` (``cross_self_consistency``),
  ``random`` (``cross_random``, exact expectation) and ``oracle`` (``cross_oracle``). ``per_language``: the
  target-only methods over that language's candidates (``verifier``: ``multi_orm``, ``majority``:
  ``self_consistency``, ``random``). Ties and missing scores follow ``selection.py``'s rule. With several
  generators the numbers are per generator (``by_generator``), and the top-level ones their mean.
* ``top_language_distribution``: which languages the verifier's top picks come from, beside each
  language's share of the pool and of the correct candidates (a verifier that prefers one language
  regardless of correctness shows a top share far above its correct share: the paper's bias signature).
"""

from __future__ import annotations

import dataclasses
import json
import math

from tqdm.auto import tqdm

from .common import Stage, StageError, batched, logger, read_jsonl
from .config import TrainConfig

SETTINGS = ("evaluate", "languages")
SCORE_CHUNK = 256
#: metrics.json names of the report's methods: over the pool, and within one language.
POOL_NAMES = {"verifier": "cross_orm", "majority": "cross_self_consistency", "random": "cross_random",
              "oracle": "cross_oracle"}
LANGUAGE_NAMES = {"verifier": "multi_orm", "majority": "self_consistency", "random": "random"}


def stage(out_dir, config: TrainConfig) -> Stage:
    return Stage("evaluate", out_dir, config, settings=SETTINGS, upstream=("fit", "balance", "label"))


def store_dir(out_dir):
    """The generate stage's candidate store (the scores go there too)."""
    return out_dir / "generate" / "store"


def verifier_config(config: TrainConfig, path):
    """The verifier at ``path`` (our adapter, or its merged classifier) as the harness runs it, on our verifier text,
    at evaluate's batch size."""
    from bestofl_models.verifiers.config import VerifierConfig

    return VerifierConfig(str(path), format="bestofl", batch_size=config.evaluate.batch_size)


def auc_or_none(labels: list[int], scores: list[float]) -> float | None:
    """ROC AUC, or None when only one class is present."""
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        return None
    return round(float(roc_auc_score(labels, scores)), 4)


def is_finite(score) -> bool:
    return isinstance(score, (int, float)) and math.isfinite(score)


def classification(rows: list[dict], scores: dict[str, float | None], threshold: float) -> dict:
    """AUC and accuracy over the rows with a finite score; the others are counted in ``dropped_non_finite``."""
    scored = [r for r in rows if is_finite(scores.get(r["key"]))]
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


def score_rows(out_dir, config: TrainConfig, store, rows: list[dict]) -> str:
    """Score the rows the store holds no score of the fit stage's adapter for; return the verifier's id."""
    from bestofl_models.store.identity import identity_id, verifier_identity
    from bestofl_models.verifiers.spec import load_scorer, resolve_verifier

    verifier = verifier_config(config, out_dir / "fit" / "adapter")
    spec = resolve_verifier(verifier)
    identity = verifier_identity(verifier, spec)
    verifier_id = identity_id(identity, "verifier")
    store.register_model(verifier_id, "verifier", spec.name, identity)
    done = store.scores_for(verifier_id, [r["key"] for r in rows])
    todo = list({r["key"]: r for r in rows if r["key"] not in done}.values())
    logger.info("evaluate: %d candidates to score (%d already in the store)", len(todo), len(done))
    if todo:
        scorer = load_scorer(verifier, spec)
        try:
            with tqdm(total=len(todo), desc="evaluate: scoring", unit="cand") as bar:
                for chunk in batched(todo, SCORE_CHUNK):
                    probs = scorer.score_items([(r["question"], r["response"], r["lang"]) for r in chunk],
                                               progress=False)
                    store.add_scores(verifier_id, {r["key"]: p for r, p in zip(chunk, probs)},
                                     texts={r["key"]: r["response"] for r in chunk})
                    bar.update(len(chunk))
        finally:
            scorer.close()
    return verifier_id


def _at_full_budget(curves: dict, target: str) -> dict[str, float]:
    return {method: round(float(per_target[target][0][-1]), 4) for method, per_target in curves.items()}


def report_best_of_n(data, languages: list[str]) -> tuple[dict, dict]:
    """Best-of-N at the full budget and the top-pick language distribution of one generator's ``ReportData``."""
    from bestofl_models.report.build import CROSS_METHODS, TARGET_METHODS, Options, ReportContext, reported

    ctx = ReportContext(data, Options(mc_samples=1))  # at the full budget every draw holds every candidate: exact
    pool = [lang for lang in languages if lang in data.languages]
    main = ctx.view(pool, None)
    if main.max_budget < 1:
        raise StageError(f"evaluate: no validation problem has candidates in every language of {':'.join(pool)} "
                         "(translations dropped by translate.number_check?); raise limit or balance.validation_fraction")
    curves, shares = ctx.curves(main, [pool[0]], reported(CROSS_METHODS, True), average=False)
    methods = _at_full_budget(curves, pool[0])
    summary = {"problems": len(main.rows), **{name: methods[m] for name, m in POOL_NAMES.items()}, "methods": methods}
    per_language = {}
    for lang in pool:
        view = ctx.view((lang,), None)
        own = _at_full_budget(ctx.curves(view, (lang,), reported(TARGET_METHODS, True), average=False)[0], lang)
        per_language[lang] = {"problems": len(view.rows), **{name: own[m] for name, m in LANGUAGE_NAMES.items()},
                              "methods": own}
    summary["per_language"] = per_language
    top = shares[pool[0]][-1] * len(main.rows)
    candidates = data.stored[main.rows][:, main.index].sum(axis=0)
    correct = ctx.right[main.rows][:, main.index].sum(axis=0)
    distribution = {
        lang: {
            "top_count": int(round(top[i])),
            "top_share": round(float(top[i] / len(main.rows)), 4) if len(main.rows) else None,
            "pool_share": round(float(candidates[i] / candidates.sum()), 4) if candidates.sum() else None,
            "correct_share": round(float(correct[i] / correct.sum()), 4) if correct.sum() else None,
        }
        for i, lang in enumerate(pool)
    }
    return summary, distribution


def best_of_n(out_dir, verifier_id: str, pool_rows: list[dict], languages: list[str]) -> tuple[dict, dict]:
    """Best-of-N over the validation problems' candidates (``pool_rows``) from the store, per generator."""
    from bestofl_models.report.data import build_data, load_stores

    loaded = load_stores([str(store_dir(out_dir))])
    keys = {r["key"] for r in pool_rows}
    problems = {r["problem_id"] for r in pool_rows}
    mine = [c for c in loaded.candidates if c.key in keys and c.problem_id in problems]
    results = {}
    for generator in sorted({c.generator_id for c in mine}):
        subset = dataclasses.replace(loaded, candidates=[c for c in mine if c.generator_id == generator])
        results[loaded.label(generator)] = report_best_of_n(build_data(subset, verifier=verifier_id), languages)
    if len(results) == 1:
        summary, distribution = next(iter(results.values()))
    else:
        summary, distribution = _mean(results)
    summary["mean_pool_size"] = round(len(pool_rows) / max(len(problems), 1), 2)
    return summary, distribution


def _mean(results: dict[str, tuple[dict, dict]]) -> tuple[dict, dict]:
    """The per-generator Best-of-N numbers and their mean (``by_generator`` keeps each)."""
    first, distribution = next(iter(results.values()))

    def mean(path: tuple[str, ...]):
        values = []
        for summary, _ in results.values():
            for key in path:
                summary = summary.get(key, {}) if isinstance(summary, dict) else None
            values.append(summary)
        return round(sum(values) / len(values), 4) if all(isinstance(v, (int, float)) for v in values) else None

    summary = {name: mean((name,)) for name in (*POOL_NAMES, "problems")}
    summary["methods"] = {m: mean(("methods", m)) for m in first["methods"]}
    summary["per_language"] = {lang: {name: mean(("per_language", lang, name)) for name in (*LANGUAGE_NAMES, "problems")}
                               for lang in first["per_language"]}
    summary["by_generator"] = {name: s for name, (s, _) in results.items()}
    distributions = [d for _, d in results.values()]

    def share(lang: str, key: str):
        values = [d[lang][key] for d in distributions]
        return None if None in values else round(sum(values) / len(values), 4)

    distribution = {lang: {"top_count": sum(d[lang]["top_count"] for d in distributions),
                           **{key: share(lang, key) for key in ("top_share", "pool_share", "correct_share")}}
                    for lang in distribution}
    return summary, distribution


def run(out_dir, config: TrainConfig) -> dict:
    from bestofl_models.store import CandidateStore

    current = stage(out_dir, config)
    current.begin()
    split_of = {r["problem_id"]: r["split"] for r in read_jsonl(out_dir / "balance" / "problems.jsonl")}
    validation = read_jsonl(out_dir / "balance" / "validation.jsonl")
    pool = [r for r in read_jsonl(out_dir / "label" / "labeled.jsonl") if split_of.get(r["problem_id"]) == "validation"]
    store = CandidateStore(store_dir(out_dir))
    try:
        verifier_id = score_rows(out_dir, config, store, pool)
        scores = store.scores_for(verifier_id, [r["key"] for r in pool])
    finally:
        store.close()
    non_finite = sum(not is_finite(scores.get(r["key"])) for r in pool)
    if non_finite:
        logger.warning("evaluate: %d of %d scores are not finite numbers (the verifier produced none for them); "
                       "they are left out of the AUC and accuracy and rank last in Best-of-N", non_finite, len(pool))

    threshold = config.evaluate.threshold
    overall = classification(validation, scores, threshold)
    per_language = {
        lang: classification([r for r in validation if r["lang"] == lang], scores, threshold)
        for lang in config.languages
    }
    bon, distribution = best_of_n(out_dir, verifier_id, pool, config.languages)
    pool_scored = [r for r in pool if is_finite(scores.get(r["key"]))]
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
        "verifier_id": verifier_id,
    }
    if overall["auc"] is None:
        metrics["note"] = "AUC undefined: the validation rows with a finite score hold one class only (or none)"
    current.path("metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    logger.info("evaluate: AUC %s, accuracy %s on %d validation rows; Best-of-N: verifier %s, majority %s, "
                "random %s, oracle %s over %s problems", overall["auc"], overall["accuracy"], overall["n"],
                bon.get("verifier"), bon.get("majority"), bon.get("random"), bon.get("oracle"), bon.get("problems"))
    return current.finish({"validation_rows": len(validation), "pool_candidates": len(pool),
                           "validation_problems": bon.get("problems", 0)}, auc=overall["auc"])
