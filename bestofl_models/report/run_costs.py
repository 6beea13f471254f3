"""What each compared run cost, from its results' ``config.bestofl.cost`` block (issue #27); "unknown" for a run
without one (lm-eval's own models, or bestofl before the block existed)."""

from __future__ import annotations


def cost_block(results: dict) -> dict | None:
    """The results' ``config.bestofl.cost`` object, None when the run has none."""
    config = results.get("config") if isinstance(results, dict) else None
    block = (config or {}).get("bestofl") if isinstance(config, dict) else None
    cost = block.get("cost") if isinstance(block, dict) else None
    return cost if isinstance(cost, dict) else None


def run_cost(results: dict) -> dict:
    """``gen_tokens`` (the generated tokens of every candidate the answers used), ``unknown_candidates`` (of those,
    how many had no count), ``verifier_tokens`` and ``seconds`` (all stages); None where unknown."""
    cost = cost_block(results)
    if cost is None:
        return {"gen_tokens": None, "unknown_candidates": None, "verifier_tokens": None, "seconds": None}
    seconds = cost.get("seconds")
    return {"gen_tokens": (cost.get("gen_tokens") or {}).get("total"),
            "unknown_candidates": (cost.get("unknown") or {}).get("candidates"),
            "verifier_tokens": cost.get("verifier_tokens"),
            "seconds": round(sum(seconds.values()), 3) if isinstance(seconds, dict) else None}
