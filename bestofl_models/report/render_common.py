"""Helpers the report's writers share: CSV bytes, Markdown tables, PNG bytes, method order, plot markers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from .build import METHOD_ORDER, Report


def _csv_bytes(rows: Sequence[dict]) -> bytes:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _table(header: Sequence[str], body: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return lines + [""]


def _methods(rows: Sequence[dict]) -> list[str]:
    present = {r["method"] for r in rows}
    return [m for m in METHOD_ORDER if m in present]


def _figure_bytes(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


#: One marker per line, so that lines which coincide (methods often agree at small n) stay visible.
_MARKERS = "osD^v<>ph*X"


def _size_note(report: Report) -> str:
    """``(P problems, C candidates)`` of the report's data, for every title."""
    return f"({len(report.data.problem_ids)} problems, {int(report.data.stored.sum())} candidates)"
