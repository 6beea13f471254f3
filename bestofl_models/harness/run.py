"""What the stages of one ``generate_until`` call share: the settings, the stores, the process group, the counts
and how to load (or free) the generator and the verifier. Built by the model for each call."""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any, Callable

from ..generation.distributed import ProcessGroup
from ..store import CandidateStore
from .config import BestOfLConfig
from .cost import CostLedger


@dataclass
class Run:
    config: BestOfLConfig
    store: CandidateStore
    #: ``read_stores=``: other stores whose candidates and scores are copied into ``store`` when used.
    read_stores: list[CandidateStore]
    group: ProcessGroup
    rank: int
    world_size: int
    generator_id: str
    verifier_id: str | None
    #: The results' counts for this ``evaluate`` call (``results_info``).
    counts: collections.Counter
    #: The generator backend, loaded on first call (the verifier freed first).
    generator: Callable[[], Any]
    #: The verifier (or judge), loaded on first call.
    verifier: Callable[[], Any]
    close_generator: Callable[[], None]
    #: Seconds and tokens of this ``simple_evaluate`` call (``cost.py``).
    cost: CostLedger
    progress: bool = True
