"""``bestofl-report``: reports and the raw export, from stored candidates only (never generates).

    bestofl-report --store DIR [--store DIR ...] --out OUT [--languages en:de:fr] [--pool en:de ...]
                   [--targets de:fr] [--budget N] [--max-budget N] [--seed S] [--mc-samples M]
                   [--generator G] [--settings ID] [--verifier V]
    bestofl-report export --store DIR [--out FILE] [--verifier V]
    bestofl-report compare OUTPUT_PATH [OUTPUT_PATH ...] [--out DIR] [--baseline LABEL_OR_POSITION]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import sys
import time
from collections.abc import Sequence

from ..pool import validate_pool


def _languages(value: str) -> tuple[str, ...]:
    try:
        return validate_pool([code.strip() for code in value.split(":") if code.strip()])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive integer")
    return int(value)


def report_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bestofl-report",
        description="Budget curves, pool ablations, pass@k and plots from candidate stores (no generation). "
        "`bestofl-report export --store DIR` prints the raw JSON Lines instead.",
    )
    parser.add_argument("--store", action="append", required=True, metavar="DIR", help="candidate store (repeatable)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (CSV, summary.md, PNG)")
    parser.add_argument("--languages", type=_languages, metavar="L1:L2",
                        help="the pool, in order (default: every stored language, MGSM order)")
    parser.add_argument("--pool", type=_languages, action="append", default=[], metavar="L1:L2",
                        help="an extra sub-pool to ablate (repeatable)")
    parser.add_argument("--targets", type=_languages, metavar="L1:L2",
                        help="target languages (default: every stored language and stored target language)")
    parser.add_argument("--budget", type=_positive, help="budget of the summary tables and plots "
                        "(default: the largest budget every method reaches)")
    parser.add_argument("--max-budget", type=_positive, help="cut the budget curves at this n")
    parser.add_argument("--seed", type=int, default=0, help="Monte Carlo seed (default 0)")
    parser.add_argument("--mc-samples", type=_positive, default=200,
                        help="Monte Carlo draws per problem for the votes (default 200)")
    parser.add_argument("--generator", help="generator to report on when the store holds several")
    parser.add_argument("--settings", metavar="ID", help="sampling-settings id when the store holds several")
    parser.add_argument("--verifier", help="verifier whose scores to use when the store holds several")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar (default: on for large stores)")
    return parser


def export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bestofl-report export",
                                     description="Print stored candidates as JSON Lines, one per line.")
    parser.add_argument("--store", action="append", required=True, metavar="DIR", help="candidate store (repeatable)")
    parser.add_argument("--out", metavar="FILE", help="output file (default: stdout)")
    parser.add_argument("--verifier", help="verifier whose scores to show when the store holds several")
    return parser


def _export(argv: Sequence[str]) -> int:
    from .export import export_records
    from .render import atomic_write

    parser = export_parser()
    args = parser.parse_args(argv)
    records = export_records(args.store, args.verifier)
    try:
        first = next(records, None)  # loads the stores and picks the verifier: errors surface here
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    everything = itertools.chain([first], records) if first is not None else iter(())
    lines = (json.dumps(record, ensure_ascii=False) + "\n" for record in everything)
    if args.out:
        atomic_write(args.out, "".join(lines).encode("utf-8"))
        return 0
    try:
        for line in lines:
            sys.stdout.write(line)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `bestofl-report export ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


def _report(argv: Sequence[str]) -> int:
    from .build import Options, build_report
    from .data import build_data, load_stores
    from .render import check_out_dir, write_report

    parser = report_parser()
    args = parser.parse_args(argv)
    try:
        check_out_dir(args.out)
    except ValueError as exc:
        parser.error(str(exc))
    start = time.perf_counter()
    options = Options(
        languages=args.languages, targets=args.targets, pools=tuple(args.pool), budget=args.budget,
        max_budget=args.max_budget, seed=args.seed, mc_samples=args.mc_samples,
    )
    try:
        data = build_data(load_stores(args.store), args.generator, args.settings, args.verifier)
        report = build_report(data, options, show_progress=args.progress)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    paths = write_report(report, args.out)
    print(f"bestofl-report: {len(data.problem_ids)} problems, {int(data.stored.sum())} candidates -> "
          f"{len(paths)} files in {args.out} ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if argv[:1] == ["export"]:
        return _export(argv[1:])
    if argv[:1] == ["compare"]:
        from .compare import main as compare

        return compare(argv[1:])
    return _report(argv)


if __name__ == "__main__":
    sys.exit(main())
