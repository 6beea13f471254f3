"""Screenshot of ``bestofl-report browse``'s page for the README (docs/browse.png), from a real run's store.

    python scripts/browse_screenshot.py --store DIR --out docs/browse.png [--route TASK/DOC_ID] [--verifier V]
                                        [--filter SELECT_ID=VALUE ...]

Writes the page with the real command, opens it from disk in headless Chromium (Debian's ``chromium`` through
Playwright, as ``tests/test_browse.py`` does), opens ``index.html#ROUTE``, checks the page logged no error and
requested nothing but itself, and saves the viewport as a 256-colour PNG (small enough to commit).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", action="append", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--route", help="TASK/DOC_ID of the problem to show (default: the first)")
    parser.add_argument("--verifier")
    parser.add_argument("--filter", action="append", default=[], metavar="SELECT_ID=VALUE",
                        help="a filter to set first, e.g. f-target=th")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=860)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright
    from PIL import Image

    from bestofl_models.report.cli import main as report_main

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("apt-get install chromium first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "page"
        argv = ["browse", *(x for s in args.store for x in ("--store", s)), "--out", str(out)]
        if args.verifier:
            argv += ["--verifier", args.verifier]
        if report_main(argv) != 0:
            return 2
        url = (out / "index.html").resolve().as_uri()
        errors, requests = [], []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']")
            for item in args.filter:
                select, _, value = item.partition("=")
                page.select_option(f"#{select}", value)
            if args.route:
                page.goto(url + "#" + args.route)
            else:
                page.click("#list a >> nth=0")
            page.wait_for_selector("#problem-title")
            raw = Path(work) / "shot.png"
            page.screenshot(path=str(raw), full_page=True)
            browser.close()
        if errors or any(not r.startswith(url) for r in requests):
            print(f"the page logged {errors} or requested {requests}", file=sys.stderr)
            return 1
        image = Image.open(raw).convert("RGB")
        image = image.crop((0, 0, image.width, min(image.height, args.height * 2)))
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
    print(f"{args.out}: {Path(args.out).stat().st_size / 1024:.0f} KiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
