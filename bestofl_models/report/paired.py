"""Paired statistics for two runs scored on the same docs: exact McNemar test and a paired bootstrap interval.

Pure functions over numpy arrays (no scipy): ``compare.py`` feeds them one metric value per shared doc.
"""

from __future__ import annotations

import math

import numpy as np

#: Bootstrap draws per chunk are capped so that ``draws x docs`` indices stay near this many.
_CHUNK_CELLS = 2_000_000


def discordant(baseline: np.ndarray, other: np.ndarray) -> tuple[int, int]:
    """``(b, c)``: docs only the baseline got right, docs only the other run got right (0/1 values)."""
    baseline, other = np.asarray(baseline) > 0.5, np.asarray(other) > 0.5
    return int(np.sum(baseline & ~other)), int(np.sum(other & ~baseline))


def is_binary(values: np.ndarray) -> bool:
    """Whether every value is 0 or 1 (McNemar's test needs right/wrong outcomes)."""
    values = np.asarray(values, dtype=float)
    return bool(np.all((values == 0) | (values == 1)))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: the binomial(b + c, 1/2) tail at min(b, c), doubled, capped at 1."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)  # exact integers; one rounding in the division


def paired_bootstrap(baseline: np.ndarray, other: np.ndarray, *, iters: int = 10_000, seed: int = 0,
                     level: float = 0.95, strata: np.ndarray | None = None) -> tuple[float, float]:
    """Percentile interval of ``mean(other - baseline)`` over ``iters`` resamples of the paired docs.

    Docs are drawn with replacement as pairs; with ``strata`` (one label per doc) each stratum is resampled
    within itself, keeping its size (e.g. the docs of each task in an overall difference).
    """
    diff = np.asarray(other, dtype=float) - np.asarray(baseline, dtype=float)
    if diff.ndim != 1 or diff.size == 0:
        raise ValueError("paired_bootstrap needs two equally long, non-empty 1-d arrays")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    labels = np.zeros(diff.size, dtype=int) if strata is None else np.unique(np.asarray(strata), return_inverse=True)[1]
    rng = np.random.default_rng(seed)
    sums = np.zeros(iters)
    for stratum in range(labels.max() + 1):
        values = diff[labels == stratum]
        step = max(1, _CHUNK_CELLS // values.size)
        for start in range(0, iters, step):
            draws = rng.integers(0, values.size, size=(min(step, iters - start), values.size))
            sums[start:start + draws.shape[0]] += values[draws].sum(axis=1)
    low, high = np.quantile(sums / diff.size, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)
