"""Stage *look up*: what the stores already hold for the planned slots, candidates and scores alike.

``read_stores=`` are read first and what they hold for the planned keys is copied into the run's store, so
the later stages only see the one store."""

from __future__ import annotations

from ..store import Candidate
from .plan import Slot
from .run import Run


def stored_candidates(run: Run, planned: dict[str, Slot]) -> dict[str, Candidate]:
    """The planned candidates the stores hold, by key (copied from ``read_stores`` first; their scores are
    looked up by :func:`stored_scores`, for every planned text)."""
    for other in run.read_stores:
        run.store.copy_from(other, planned)
    return run.store.get_many(planned)


def stored_scores(run: Run, planned: dict[str, Slot], candidates: dict[str, Candidate]) -> dict[str, float | None]:
    """The verifier's stored scores of the planned candidates, by key; a read store's score counts only when it
    scored the very text this store holds."""
    verifier_id = run.verifier_id
    done = run.store.scores_for(verifier_id, planned)
    for other in run.read_stores:  # scores of the same texts computed elsewhere
        found = other.scores_for(verifier_id, [key for key in planned if key not in done])
        theirs = other.get_many(found)
        same = {key: score for key, score in found.items() if theirs[key].text == candidates[key].text}
        if same:
            run.store.add_scores(verifier_id, same, texts={key: candidates[key].text for key in same})
            done.update(same)
    return done
