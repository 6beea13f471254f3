"""Which candidate answers: the selection methods, how ``n`` samples spread over a language pool, adaptive rules.

Owns ``methods`` (``METHODS``, ``select``, the tie rule), ``pool`` (``plan_samples``, the recommended-pool file)
and ``adaptive`` (``adaptive=`` rules: rounds and the stop test). Pure functions over plain values: imports no
other ``bestofl_models`` package. The names below keep ``from bestofl_models.selection import select`` working.
"""

from .methods import (
    METHODS,
    TALLIES,
    TOP_K,
    Method,
    Scored,
    canonical_order,
    eligible,
    is_valid_score,
    method,
    rank_order,
    select,
    vote_counts,
    vote_weights,
)
