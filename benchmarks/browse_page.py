"""browse_page: ``bestofl-report browse`` on 250 problems x 11 target languages x 16 candidates, in headless Chromium.

    python -m benchmarks.browse_page [--problems 250] [--repeats 3]

Prints the page's size, the time to write it (with and without the budget curve), the time Chromium needs to open
it from disk (navigation until the page's script has drawn the list) and the time a filter click takes (the change
event until the next frame is painted), medians over ``--repeats``. The store is the report benchmark's synthetic one
(``build_synthetic_store``: 250 problems x 11 MGSM languages x 16 candidates of ~200 tokens, one verifier score
each) with every problem also asked in each of the 11 languages as target (``uses`` rows), so the page holds 2,750
problem/target pairs over 44,000 candidates. Not in ``run_all.py`` (it takes minutes and needs Chromium):
run it by hand. Needs ``pip install playwright`` and Debian's ``chromium``.

The module also follows the benchmark conventions (``NAME``, ``TARGET``, ``OP``, ``run(ctx)``): the ratio is the
filter click in seconds against the issue's "about a second".
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.common import Context, Result  # noqa: E402

NAME = "browse_page"
TARGET = 1.0
OP = "<="

#: The in-page timing of one filter change: from dispatching it to the next painted frame.
FILTER_TIMING = """async ([id, value]) => {
  const box = document.getElementById(id);
  const start = performance.now();
  box.value = value;
  box.dispatchEvent(new Event("change"));
  await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
  return [performance.now() - start, document.getElementById("count").textContent];
}"""


def build_store(directory: Path, problems: int) -> None:
    from bestofl_models.report.synthetic import build_synthetic_store
    from bestofl_models.store import Use
    from bestofl_tasks.languages import MGSM_LANGUAGES

    store = build_synthetic_store(str(directory), problems=problems, samples_per_language=16)
    for code in MGSM_LANGUAGES[1:]:  # the synthetic store's uses have the first language as target
        store.add_uses(Use(c.key, f"synthetic_{code}", c.doc_id, code, c.problem_id, c.gold)
                       for c in store.candidates())
    store.close()


def write_page(store: Path, out: Path, curve: bool) -> float:
    command = [sys.executable, "-m", "bestofl_models.report.cli", "browse", "--store", str(store), "--out", str(out)]
    start = time.perf_counter()
    done = subprocess.run(command + ([] if curve else ["--no-curve"]), capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    if done.returncode:
        raise RuntimeError(f"browse failed: {done.stderr[-2000:]}")
    return time.perf_counter() - start


def measure_in_browser(page_path: Path, repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise RuntimeError("apt-get install chromium (Debian's package) to run this benchmark")
    loads, filters, counts = [], [], {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for _ in range(repeats):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            start = time.perf_counter()
            page.goto(page_path.resolve().as_uri())
            page.wait_for_selector("body[data-ready='1']", timeout=120_000)
            loads.append(time.perf_counter() - start)
            for select, value in (("f-outcome", "wrong"), ("f-target", "th"), ("f-lang", "en"), ("f-lang", ""),
                                  ("f-outcome", "missed"), ("f-method", "self_consistency"), ("f-target", ""),
                                  ("f-outcome", "")):
                elapsed, count = page.evaluate(FILTER_TIMING, [select, value])
                filters.append(elapsed / 1000)
                counts[f"{select}={value}"] = int(count)
            page.goto(page_path.resolve().as_uri() + "#synthetic_th/3")
            page.wait_for_selector("#problem-title", timeout=60_000)
            context.close()
        browser.close()
    return {"load_s": loads, "filter_s": filters, "counts": counts}


def measure(workdir: Path, problems: int, repeats: int) -> dict:
    store, out = workdir / "store", workdir / "page"
    start = time.perf_counter()
    build_store(store, problems)
    built = time.perf_counter() - start
    without_curve = write_page(store, out, curve=False)
    with_curve = write_page(store, out, curve=True)
    page = out / "index.html"
    browser = measure_in_browser(page, repeats)
    return {"problems": problems, "store_s": built, "write_s": with_curve, "write_no_curve_s": without_curve,
            "bytes": page.stat().st_size, **browser}


def summary(numbers: dict) -> str:
    med = statistics.median
    return (f"{numbers['problems']} problems x 11 targets x 11 languages x 16 candidates: index.html "
            f"{numbers['bytes'] / 1e6:.1f} MB, written in {numbers['write_s']:.1f} s ({numbers['write_no_curve_s']:.1f} s "
            f"with --no-curve); Chromium opens it in {med(numbers['load_s']):.2f} s (median of {len(numbers['load_s'])}, "
            f"max {max(numbers['load_s']):.2f}); a filter click {1000 * med(numbers['filter_s']):.0f} ms median, "
            f"{1000 * max(numbers['filter_s']):.0f} ms max over {len(numbers['filter_s'])} clicks")


def run(ctx: Context) -> Result:
    numbers = measure(Path(ctx.workdir), ctx.pick(10, 250, 250), ctx.pick(1, 2, 3))
    return Result(NAME, max(numbers["filter_s"]), TARGET, OP, summary(numbers), numbers)


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as workdir:
        numbers = measure(Path(workdir), args.problems, args.repeats)
    print(summary(numbers))
    print("filter counts:", numbers["counts"])
    print("load_s:", [round(x, 3) for x in numbers["load_s"]], "filter_s:", [round(x, 3) for x in numbers["filter_s"]])


if __name__ == "__main__":
    main()
