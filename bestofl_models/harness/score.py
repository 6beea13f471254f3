"""Stage *score*: the verifier scores the candidates' texts it has not scored yet, in chunks of
:data:`SCORE_CHUNK`, each chunk one store transaction; the ranks share the texts out by length and exchange
the scores."""

from __future__ import annotations

import logging
import math

from tqdm.auto import tqdm

from ..generation.distributed import balanced_split
from ..store import Candidate, text_hash
from .plan import Slot
from .run import Run

logger = logging.getLogger(__name__)

#: Candidates whose scores are appended to the store together.
SCORE_CHUNK = 256


def score_missing(run: Run, planned: dict[str, Slot], candidates: dict[str, Candidate],
                  done: dict[str, float | None]) -> dict[str, float | None]:
    """Score the planned candidates ``done`` (the stored scores) lacks; return every planned score by key (None:
    the verifier gave no usable number)."""
    work: dict[str, tuple[Slot, str]] = {}
    for slot, text in run.group.all_gather([(slot, candidates[key].text) for key, slot in planned.items()
                                            if key not in done]):
        work.setdefault(slot.key, (slot, text))  # a key several ranks lack is scored once
    items = list(work.values())
    run.counts.update(scored=len(items), scores_reused=len(planned) - len(items))
    costs = [len(slot.question) + len(text) for slot, text in items]  # about the verifier's tokens
    mine = [items[i] for i in balanced_split(costs, run.world_size)[run.rank]]
    made: dict[str, tuple[str, float]] = {}
    if mine:
        if not run.config.keep_generator:
            run.close_generator()
        verifier = run.verifier()
        if hasattr(verifier, "largest_batch"):  # counted per call, like the run's counts
            verifier.largest_batch = 0
        from ..verifiers.classifier import score_responses

        with tqdm(total=len(mine), desc="bestofl: scoring", unit="cand", disable=not run.progress) as bar:
            for start in range(0, len(mine), SCORE_CHUNK):
                chunk = mine[start : start + SCORE_CHUNK]
                scores = score_responses(
                    verifier, [(slot.question, text, slot.lang or "en") for slot, text in chunk], progress=False)
                unusable = sum(1 for score in scores if not math.isfinite(score))
                if unusable:
                    logger.warning("verifier %s gave %d NaN/infinite score(s); those candidates rank after every "
                                   "real score.", run.config.verifier, unusable)
                new = {slot.key: (text, score) for (slot, text), score in zip(chunk, scores)}
                tokens = getattr(verifier, "last_input_tokens", None) or []
                tokens = dict(zip((slot.key for slot, _ in chunk), tokens)) if len(tokens) == len(chunk) else {}
                keep_scores(run, new, candidates, done, tokens)
                made.update(new)
                bar.update(len(chunk))
        run.counts["largest_verifier_batch"] = max(run.counts["largest_verifier_batch"],
                                                   getattr(verifier, "largest_batch", 0))
    if run.world_size > 1:
        exchanged = run.group.all_gather([(key, text_hash(text), score) for key, (text, score) in made.items()])
        keep_scores(run, {key: (candidates[key].text, score) for key, digest, score in exchanged
                          if key in planned and key not in done and candidates[key].text_hash == digest},
                    candidates, done)
    return done


def keep_scores(run: Run, new: dict[str, tuple[str, float]], candidates: dict[str, Candidate],
                done: dict[str, float | None], input_tokens: dict[str, int] | None = None) -> None:
    """Store the scores (key -> (text scored, score)) of candidates this store holds with that very text (with
    the verifier's ``input_tokens`` per key where known), and put them, as stored, into ``done`` (another writer's
    may have won). Keys another rank planned are looked up in the store (on a shared store they are there)."""
    others = run.store.get_many(key for key in new if key not in candidates)
    held = [candidates.get(key) or others.get(key) for key in new]
    keep = {key: score for (key, (text, score)), c in zip(new.items(), held) if c is not None and c.text == text}
    if keep:
        run.store.add_scores(run.verifier_id, keep, texts={key: new[key][0] for key in keep},
                             input_tokens={key: n for key, n in (input_tokens or {}).items() if key in keep})
        done.update(run.store.scores_for(run.verifier_id, keep))
