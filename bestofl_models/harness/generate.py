"""Stage *generate*: sample the candidates the stores lack and store each finished batch.

Every rank sends what it lacks to all, duplicates are dropped, the batches (longest prompt first, a prompt's
candidates together) are shared out by cost with ``distributed.balanced_split``, and the ranks exchange what they
made, so each holds exactly what a single process would have."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from tqdm.auto import tqdm

from bestofl_tasks.answers import extract_answer

from ..generation.backends import Generation, prompt_batches
from ..generation.distributed import balanced_split
from ..store import Candidate, Use, prompt_hash
from .plan import Slot, use_of
from .problems import Problem
from .run import Run

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToGenerate:
    """A candidate to generate, as one rank hands it to all: its prompt's length in tokens (the global order is
    longest first), its slot, and the use to record with it."""

    length: int
    slot: Slot
    use: Use


def candidate_seed(key: str) -> int:
    """The sampling seed of a candidate (its key already covers the run's ``seed``)."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:15], 16)


def generate_missing(run: Run, problems: list[Problem], slots: list[list[Slot]], planned: dict[str, Slot],
                     stored: dict[str, Candidate]) -> dict[str, Candidate]:
    """Generate what ``stored`` lacks (this rank's share of what any rank lacks); return every planned candidate
    as stored, by key."""
    missing = {key: slot for key, slot in planned.items() if key not in stored}
    total = sum(len(s) for s in slots)
    run.counts.update(planned=len(planned), reused=len(planned) - len(missing))
    logger.info(
        "bestofl: %d requests, %d planned samples, %d distinct, %d to generate (the rest are in the store)",
        len(slots), total, len(planned), len(missing),
    )
    backend = run.generator() if missing else None
    lengths: dict[str, int] = {}  # per distinct prompt: its n candidates share it
    for slot in missing.values():
        if slot.prompt not in lengths:
            lengths[slot.prompt] = len(backend.tokenizer.encode(slot.prompt))
    ours = [ToGenerate(lengths[slot.prompt], slot, use_of(problems[slot.request], slot)) for slot in missing.values()]
    work: dict[str, ToGenerate] = {}
    for item in run.group.all_gather(ours):
        work.setdefault(item.slot.key, item)  # a key several ranks miss is generated once
    run.counts.update(generated=len(work))
    # longest prompt first; a prompt's candidates stay together (one batch even at --batch_size 1)
    order = sorted(work.values(), key=lambda item: (-item.length, item.slot.prompt, item.slot.key))
    batches = prompt_batches(order, generation_batch_size(run, backend, order), key=lambda item: item.slot.prompt)
    run.counts["largest_batch"] = max([run.counts["largest_batch"], *map(len, batches)])
    # a batch costs about its rows times (longest prompt + new tokens); each rank gets whole batches, so every
    # batch is the one a single process would run
    costs = [len(batch) * (batch[0].length + run.config.max_gen_toks) for batch in batches]
    mine = [batches[i] for i in balanced_split(costs, run.world_size)[run.rank]]
    made: list[Candidate] = []
    if mine:
        backend = backend or run.generator()
        from ..generation.backends import SamplingSettings

        settings = SamplingSettings(run.config.temperature, run.config.top_p, run.config.max_gen_toks)
        with tqdm(total=sum(map(len, mine)), desc="bestofl: sampling", unit="cand", disable=not run.progress) as bar:
            for batch in mine:
                generations = backend.generate(
                    [item.slot.prompt for item in batch],
                    [candidate_seed(item.slot.key) for item in batch],
                    [item.slot.stop for item in batch],
                    settings,
                )
                batch_made = [new_candidate(run, item.use, item.slot, made) for item, made in zip(batch, generations)]
                keep(run, batch_made, stored)
                run.cost.add_generated(batch_made)
                made += batch_made
                bar.update(len(batch))
    if run.world_size > 1:
        logger.info("bestofl: rank %d/%d generated %d of the %d candidates missing on any rank",
                    run.rank, run.world_size, len(made), len(order))
        as_stored = [stored[c.key] for c in made]
        theirs = [c for c in run.group.all_gather(as_stored) if c.key in planned and c.key not in stored]
        keep(run, theirs, stored)  # a no-op on a shared store; fills a rank's own store otherwise
    return {key: stored[key] for key in planned}


def generation_batch_size(run: Run, backend, order: list[ToGenerate]) -> int:
    """``batch_size``; with ``batch_size=auto`` on one GPU, the largest batch that fits its free memory for the
    longest prompt of ``order`` (``HFBackend.auto_batch_size``; the CPU, vLLM and several ranks, which must
    all form the same batches, keep ``batch_size``)."""
    config = run.config
    sized = getattr(backend, "auto_batch_size", None)
    if not (config.batch_size_auto and order and sized and run.world_size == 1):
        return config.batch_size
    return sized(order[0].length, config.max_gen_toks, cap=config.max_batch_size) or config.batch_size


def keep(run: Run, made: list[Candidate], stored: dict[str, Candidate]) -> None:
    """Store candidates and put them, as stored, into ``stored``."""
    if not made:
        return
    written = run.store.add_candidates(made)
    stored.update((c.key, c) for c in written)
    if len(written) < len(made):  # another process stored some of these keys first: theirs count
        stored.update(run.store.get_many(c.key for c in made if c.key not in stored))


def new_candidate(run: Run, use: Use, slot: Slot, generation: Generation) -> Candidate:
    return Candidate(
        key=slot.key,
        problem_id=use.problem_id,
        task=use.task,
        doc_id=use.doc_id,
        target_lang=use.target_lang,
        lang=slot.lang,
        sample_idx=slot.sample_idx,
        generator=run.config.pretrained,
        generator_id=run.generator_id,
        prompt_hash=prompt_hash(slot.prompt),
        settings={**run.config.sampling_settings(), "stop": list(slot.stop)},
        text=generation.text,
        answer=extract_answer(generation.text, slot.lang),
        gold=use.gold,
        prompt_tokens=generation.prompt_tokens,
        gen_tokens=generation.gen_tokens,
        hit_cap=generation.hit_cap,
    )


def record_uses(run: Run, problems: list[Problem], slots: list[list[Slot]]) -> None:
    """Every (task, doc, target) that used a candidate, so reports group it under each problem it served."""
    run.store.add_uses(use_of(problems[slot.request], slot) for request_slots in slots for slot in request_slots)
