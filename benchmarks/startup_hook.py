"""startup_hook: what the start-up hook (``bestofl_autoload.pth``) adds to every Python start.

``python -X importtime -c pass`` in fresh interpreters; the cumulative import time of ``bestofl_tasks._autoload``
(which includes its parent package ``bestofl_tasks``), median over the runs, against a 5 ms budget.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from .common import Context, Result, median

NAME = "startup_hook"
TARGET = 1.0
OP = "<="
BUDGET_US = 5000.0
_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s+(\s*)(\S+)")


def hook_import_us(python: str = sys.executable) -> tuple[float, float]:
    """(cumulative µs of ``bestofl_tasks._autoload``, µs of all top-level imports) in one fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "BESTOFL_AUTOLOAD"}
    proc = subprocess.run(
        [python, "-X", "importtime", "-c", "pass"], capture_output=True, text=True, env=env, check=True
    )
    hook, total = None, 0.0
    for line in proc.stderr.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        cumulative, indent, module = float(match.group(2)), match.group(3), match.group(4)
        if module == "bestofl_tasks._autoload":
            hook = cumulative
        if indent == "":
            total += cumulative
    if hook is None:
        raise RuntimeError(
            "bestofl_tasks._autoload is not imported at start-up: is bestofl installed (pip install -e .) "
            "so that bestofl_autoload.pth is in site-packages?"
        )
    return hook, total


def run(ctx: Context) -> Result:
    runs = ctx.pick(3, 15, 31)
    samples = [hook_import_us() for _ in range(runs)]
    hook = median([h for h, _ in samples])
    total = median([t for _, t in samples])
    return Result(
        NAME, hook / BUDGET_US, TARGET, OP,
        f"bestofl_tasks._autoload import {hook / 1000:.2f} ms cumulative (median of {runs} `python -X importtime "
        f"-c pass`; all start-up imports {total / 1000:.1f} ms) vs a {BUDGET_US / 1000:.0f} ms budget",
        {"hook_us": hook, "startup_imports_us": total},
    )
