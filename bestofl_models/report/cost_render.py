"""The report's cost files: ``language_costs.csv``, ``budget_tokens.csv``, ``compute_matched.csv``, their
``summary.md`` section and ``accuracy_vs_tokens.png`` (accuracy against mean generated tokens per problem)."""

from __future__ import annotations

import numpy as np

from .build import AVERAGE, MONTE_CARLO, Report
from .costs import GREEDY_MULTIPLES
from .render_common import _MARKERS, _csv_bytes, _figure_bytes, _methods, _size_note, _table

LANGUAGE_COSTS_CSV = "language_costs.csv"
TOKEN_CURVES_CSV = "budget_tokens.csv"
COMPUTE_MATCHED_CSV = "compute_matched.csv"
TOKENS_PLOT = "accuracy_vs_tokens.png"
UNKNOWN = "unknown"


def _number(value: float | None, digits: int = 1, scale: float = 1.0) -> str:
    return UNKNOWN if value is None or np.isnan(value) else f"{scale * value:.{digits}f}"


def cost_markdown(report: Report) -> list[str]:
    """The summary's cost section: the per-language table and the compute-matched table."""
    lines = ["## What the answers cost (generated tokens)", "",
             f"- Per pool language, over every stored candidate (`{LANGUAGE_COSTS_CSV}`): accuracy is one sample's; "
             "tokens count what the generator produced (recounted from the text for stores written before bestofl "
             "recorded them); `unknown` where no count is known.", ""]
    lines += _table(["language", "candidates", "generated tokens", "tokens per candidate", "hit the cap (%)",
                     "accuracy (%)", "accuracy (%) per 1k tokens", "unknown counts"],
                    ([row["lang"], str(row["candidates"]), _number(row["gen_tokens"], 0),
                      _number(row["mean_gen_tokens"]), _number(row["hit_cap_share"], 1, 100),
                      _number(row["accuracy"], 1, 100), _number(row["accuracy_per_1k_tokens"], 2, 100),
                      str(row["unknown_tokens"])] for row in report.language_costs))
    matched = [r for r in report.compute_matched if r["target"] == AVERAGE]
    if not matched:
        return lines + ["No target language has stored candidates: no greedy cost, so no compute-matched table.", ""]
    greedy = {r["greedy_multiple"]: r["gen_tokens"] for r in matched}
    cell = {(r["method"], r["greedy_multiple"]): r for r in matched}
    lines += ["## Accuracy at equal compute (average over target languages)", "",
              "- Budgets are multiples of greedy's cost: the mean generated tokens of one target-language sample per "
              "problem. Each method's accuracy is read from its budget curve against mean generated tokens per "
              f"problem (`{TOKEN_CURVES_CSV}`), linear between stored budgets; `-`: outside the curve (not "
              f"extrapolated). Every target in `{COMPUTE_MATCHED_CSV}`.", ""]

    def text(row: dict | None) -> str:
        if row is None or row["accuracy"] is None:
            return "-" if row is None or row["gen_tokens"] is not None else UNKNOWN
        return f"{100 * row['accuracy']:.1f}" + (" (MC)" if row["estimator"] == MONTE_CARLO else "")

    return lines + _table(["method", *(f"greedy x{k} ({_number(greedy[k], 0)} tokens)" for k in GREEDY_MULTIPLES)],
                          ([m, *(text(cell.get((m, k))) for k in GREEDY_MULTIPLES)] for m in _methods(matched)))


def tokens_figure(report: Report):
    """Accuracy against mean generated tokens per problem, average over target languages, one line per method;
    greedy's multiples as dotted lines (the caller closes the figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    averaged = [r for r in report.token_curves if r["target"] == AVERAGE and not np.isnan(r["gen_tokens"])]
    fig, ax = plt.subplots(figsize=(8, 5))
    for index, method in enumerate(_methods(averaged)):
        rows = sorted((r for r in averaged if r["method"] == method), key=lambda r: r["n"])
        ax.plot([r["gen_tokens"] for r in rows], [100 * r["accuracy"] for r in rows],
                "--" if method.endswith(("random", "oracle")) else "-", label=method,
                marker=_MARKERS[index % len(_MARKERS)], markersize=4, markerfacecolor="none", alpha=0.85)
    for budget in sorted({r["gen_tokens"] for r in report.compute_matched if r["target"] == AVERAGE} - {None}):
        ax.axvline(budget, color="grey", linestyle=":", linewidth=1)
    if averaged:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "token counts unknown", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="mean generated tokens per problem (dotted: greedy x 1, 2, 4, 8)", ylabel="accuracy (%)",
           title=f"Accuracy vs generated tokens, average over target languages\n{_size_note(report)}")
    ax.grid(alpha=0.3)
    return fig


def cost_files(report: Report) -> dict[str, bytes]:
    """The cost CSVs and plot, by file name."""
    return {LANGUAGE_COSTS_CSV: _csv_bytes(report.language_costs),
            TOKEN_CURVES_CSV: _csv_bytes(report.token_curves),
            COMPUTE_MATCHED_CSV: _csv_bytes(report.compute_matched),
            TOKENS_PLOT: _figure_bytes(tokens_figure(report))}
