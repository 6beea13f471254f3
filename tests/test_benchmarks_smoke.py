"""benchmarks/run_all.py's machinery on tiny inputs: ratio lines, exit code, JSON. Not a timing assertion:
the ratios measured at ``--scale tiny`` mean nothing, only that every benchmark runs and reports."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import run_all  # noqa: E402
from benchmarks.common import Context, Result  # noqa: E402

LINE = re.compile(r"^(?P<name>[a-z_]+) ratio=(?P<ratio>\S+) target=(?P<op><=|>=)(?P<target>\S+)$")


def parse(stdout: str) -> dict[str, tuple[str, str, str]]:
    found = {}
    for line in stdout.splitlines():
        match = LINE.match(line)
        if match:
            found[match["name"]] = (match["ratio"], match["op"], match["target"])
    return found


def test_ratio_lines_context_lines_and_json(tmp_path, capsys):
    names = ["extraction_cost", "selection_cost", "startup_hook"]
    code = run_all.main(["--scale", "tiny", "--only", ",".join(names), "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("machine: ") and "cores" in out[0]
    lines = parse("\n".join(out))
    assert list(lines) == names
    for name in names:  # each ratio line is followed by its context line
        i = next(i for i, line in enumerate(out) if line.startswith(name + " "))
        assert out[i + 1].startswith("  ") and re.search(r"\[(met|MISSED); \d+ s\]$", out[i + 1])
    saved = json.loads((tmp_path / "r.json").read_text())
    assert [r["name"] for r in saved["results"]] == names
    assert all(math.isfinite(r["ratio"]) for r in saved["results"])
    assert code == (0 if all(r["met"] for r in saved["results"]) else 1)
    assert out[-1].startswith("all 3 benchmarks met" if code == 0 else "1 of 3")


def fake(name: str, ratio: float | None, op: str = "<=", target: float = 1.0):
    module = types.ModuleType(f"benchmarks.{name}")
    module.NAME, module.TARGET, module.OP = name, target, op

    def run(ctx):
        if ratio is None:
            raise RuntimeError("boom")
        return Result(name, ratio, target, op, "fake")

    module.run = run
    return module


def test_a_missed_target_or_a_crash_is_reported_and_the_rest_still_runs(monkeypatch, capsys):
    modules = {"fake_ok": fake("fake_ok", 0.5), "fake_crash": fake("fake_crash", None),
               "fake_missed": fake("fake_missed", 2.0, ">=", 5.0), "fake_last": fake("fake_last", 1.0)}
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, f"benchmarks.{name}", module)
    results = run_all.run_benchmarks(list(modules), Context(scale="tiny"))
    lines = parse(capsys.readouterr().out)
    assert lines == {"fake_ok": ("0.5", "<=", "1"), "fake_crash": ("nan", "<=", "1"),
                     "fake_missed": ("2", ">=", "5"), "fake_last": ("1", "<=", "1")}
    assert [r.met for r in results] == [True, False, False, True]
    assert "ERROR RuntimeError: boom" in results[1].context


def test_unknown_benchmark_name_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_all.main(["--only", "no_such_benchmark"])
    assert exit_info.value.code == 2
    assert "unknown benchmark(s) no_such_benchmark" in capsys.readouterr().err


@pytest.mark.slow
def test_every_benchmark_runs_at_tiny_scale(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run_all.py"), "--scale", "tiny",
                             "--json", str(tmp_path / "r.json")], capture_output=True, text=True, timeout=900)
    saved = json.loads((tmp_path / "r.json").read_text())
    assert [r["name"] for r in saved["results"]] == list(run_all.BENCHMARKS)
    broken = [r["context"] for r in saved["results"] if not math.isfinite(r["ratio"])]
    assert not broken, result.stderr[-3000:]
    assert list(parse(result.stdout)) == list(run_all.BENCHMARKS)
    assert result.returncode == (0 if all(r["met"] for r in saved["results"]) else 1)
