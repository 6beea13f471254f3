"""Stage 3: label every sampled response by final-answer correctness.

``answer`` is ``bestofl_tasks.answers.extract_answer(response, lang)``; ``correct`` is
``answers_equal(answer, gold)``. Rule for unparsable responses (no number at all):
``label.unparsable=incorrect`` (default) keeps them as incorrect (label 0) and counts them as
``unparsable``; ``drop`` leaves them out. Either way the count is in the manifest.

Output: ``labeled.jsonl``: the generate rows plus ``answer``, ``parsable``, ``correct``, ``label`` (0/1).
"""

from __future__ import annotations

from collections import Counter

from bestofl_tasks.answers import answers_equal, extract_answer

from .common import Stage, logger, read_jsonl, write_jsonl
from .config import TrainConfig

SETTINGS = ("label",)


def stage(out_dir, config: TrainConfig) -> Stage:
    return Stage("label", out_dir, config, settings=SETTINGS, upstream=("generate",))


def label_rows(rows: list[dict], unparsable: str) -> tuple[list[dict], dict[str, Counter]]:
    """Labelled rows and per-language counts (``total``, ``correct``, ``incorrect``, ``unparsable``, ``dropped``)."""
    labeled, stats = [], {}
    for row in rows:
        counts = stats.setdefault(row["lang"], Counter())
        counts["total"] += 1
        answer = extract_answer(row["response"], row["lang"])
        correct = answers_equal(answer, row["gold"])
        if answer is None:
            counts["unparsable"] += 1
            if unparsable == "drop":
                counts["dropped"] += 1
                continue
        counts["correct" if correct else "incorrect"] += 1
        labeled.append({**row, "answer": answer, "parsable": answer is not None, "correct": correct,
                        "label": int(correct)})
    return labeled, stats


def run(out_dir, config: TrainConfig) -> dict:
    current = stage(out_dir, config)
    current.begin()
    rows = read_jsonl(out_dir / "generate" / "candidates.jsonl")
    labeled, stats = label_rows(rows, config.label.unparsable)
    write_jsonl(current.path("labeled.jsonl"), labeled)
    per_language = {}
    for lang, counts in sorted(stats.items()):
        per_language[lang] = {**counts, "accuracy": round(counts["correct"] / max(counts["total"], 1), 4)}
        logger.info("label: %s: %d responses, %d correct, %d unparsable", lang, counts["total"],
                    counts["correct"], counts["unparsable"])
    totals = sum(stats.values(), Counter())
    return current.finish({"rows": len(labeled), **totals, "per_language": per_language},
                          unparsable_rule=config.label.unparsable)
