"""Stage 4: deduplicate, split by problem, balance correct/incorrect per language.

1. With ``balance.dedup`` (default), exact-duplicate responses (same problem, language and stripped text)
   are removed; the first (lowest generator/sample index) is kept. ``balance.dedup=false`` keeps them all.
2. Problems are shuffled (seeded) and ``balance.validation_fraction`` of them go to validation: no
   problem has responses on both sides.
3. Within each split and language the majority class is downsampled (seeded) to the size of the
   minority class (``balance.enabled=false`` keeps everything). A language with no correct (or no
   incorrect) response contributes nothing when balancing; the manifest and the log say so.

Output: ``train.jsonl``, ``validation.jsonl`` (labelled rows), ``problems.jsonl`` (``problem_id``, ``split``).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

from .common import Stage, logger, read_jsonl, write_jsonl
from .config import TrainConfig

SETTINGS = ("balance", "seed")


def stage(out_dir, config: TrainConfig) -> Stage:
    return Stage("balance", out_dir, config, settings=SETTINGS, upstream=("label",))


def deduplicate(rows: list[dict]) -> tuple[list[dict], Counter]:
    """Rows without exact duplicates, and the number removed per language."""
    seen, kept, removed = set(), [], Counter()
    for row in sorted(rows, key=lambda r: (r["problem_id"], r["lang"], r["generator"], r["sample_idx"])):
        key = (row["problem_id"], row["lang"], row["response"].strip())
        if key in seen:
            removed[row["lang"]] += 1
            continue
        seen.add(key)
        kept.append(row)
    return kept, removed


def split_problems(problem_ids: list[str], validation_fraction: float, seed: int) -> dict[str, str]:
    """problem_id -> "train" | "validation" (at least one of each when there are two or more problems)."""
    ordered = sorted(set(problem_ids))
    random.Random(seed).shuffle(ordered)
    n_val = min(max(round(len(ordered) * validation_fraction), 1), len(ordered) - 1) if len(ordered) > 1 else 0
    return {pid: ("validation" if i < n_val else "train") for i, pid in enumerate(ordered)}


def balance_language(rows: list[dict], rng: random.Random) -> list[dict]:
    """Equal numbers of correct and incorrect rows (the majority class downsampled)."""
    positives = [r for r in rows if r["label"] == 1]
    negatives = [r for r in rows if r["label"] == 0]
    size = min(len(positives), len(negatives))
    return rng.sample(positives, size) + rng.sample(negatives, size)


def run(out_dir, config: TrainConfig) -> dict:
    current = stage(out_dir, config)
    current.begin()
    rows = read_jsonl(out_dir / "label" / "labeled.jsonl")
    rows, duplicates = deduplicate(rows) if config.balance.dedup else (rows, Counter())
    split_of = split_problems([r["problem_id"] for r in rows], config.balance.validation_fraction, config.seed)

    grouped: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        grouped[(split_of[row["problem_id"]], row["lang"])].append(row)
    outputs: dict[str, list[dict]] = {"train": [], "validation": []}
    stats: dict[str, dict] = defaultdict(lambda: {"duplicates_removed": 0})
    for (split, lang), group in sorted(grouped.items()):
        rng = random.Random(f"{config.seed}-{split}-{lang}")
        kept = balance_language(group, rng) if config.balance.enabled else list(group)
        if config.balance.enabled and not kept:
            logger.warning("balance: %s/%s has %d correct and %d incorrect responses: nothing to balance",
                           split, lang, sum(r["label"] for r in group), sum(1 - r["label"] for r in group))
        outputs[split].extend(kept)
        stats[lang][split] = {
            "candidates": len(group),
            "correct": sum(r["label"] for r in group),
            "kept": len(kept),
            "kept_correct": sum(r["label"] for r in kept),
        }
    for lang, count in duplicates.items():
        stats[lang]["duplicates_removed"] = count

    for split, split_rows in outputs.items():
        random.Random(f"{config.seed}-{split}").shuffle(split_rows)
        write_jsonl(current.path(f"{split}.jsonl"), split_rows)
        logger.info("balance: %s: %d rows (%d correct)", split, len(split_rows), sum(r["label"] for r in split_rows))
    write_jsonl(current.path("problems.jsonl"),
                ({"problem_id": pid, "split": split} for pid, split in sorted(split_of.items())))
    problems = Counter(split_of.values())
    counts = {
        "train": len(outputs["train"]),
        "validation": len(outputs["validation"]),
        "train_problems": problems["train"],
        "validation_problems": problems["validation"],
        "duplicates_removed": sum(duplicates.values()),
        "per_language": dict(sorted(stats.items())),
    }
    return current.finish(counts)
