"""``bestofl-report``: reports and the raw export, from stored candidates only (never generates).

    bestofl-report [--store DIR ...] --out OUT [--tasks PATTERNS] [--languages en:de:fr] [--pool en:de ...]
                   [--targets de:fr] [--budget N] [--max-budget N] [--seed S] [--mc-samples M]
                   [--generator G] [--settings ID] [--verifier V]
    (--store defaults to where runs store: $BESTOFL_STORE or ~/.cache/bestofl/store)
    bestofl-report export --store DIR [--out FILE] [--verifier V]
    bestofl-report compare OUTPUT_PATH [OUTPUT_PATH ...] [--out DIR] [--baseline LABEL_OR_POSITION]
    bestofl-report adaptive --store DIR --out OUT [--languages L1:L2] [--rule score:0.9 ...] [--budget N]
                   [--tolerance POINTS] [--orderings M] [--seed S] [--targets ...] [--generator/--settings/--verifier]
    bestofl-report recommend-pool --store DIR --out OUT --size K [--dev-fraction F] [--budget N] [--seed S]
                   [--targets ...] [--generator/--settings/--verifier]
    bestofl-report browse --store DIR [--store DIR ...] --out DIR [--generator/--settings/--verifier] [--no-curve]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence

from ..selection.pool import validate_pool


def _languages(value: str) -> tuple[str, ...]:
    try:
        return validate_pool([code.strip() for code in value.split(":") if code.strip()])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive integer")
    return int(value)


def _default_store() -> str:
    from ..harness.config import default_store

    return default_store()


_STORE_HELP = ("candidate store (repeatable; default: where runs store without store=, $BESTOFL_STORE or "
               "~/.cache/bestofl/store)")
_TASKS_HELP = ("only the candidates of these tasks, as lm-eval's --tasks names them: comma-separated names, "
               "fnmatch patterns (mgsm_xling_*) or bestofl groups (mgsm_xling); default every stored task")


def _stores(args: argparse.Namespace) -> list[str]:
    return args.store or [_default_store()]


def _store_error(exc: Exception, args: argparse.Namespace) -> str:
    """A store that is not there: say where runs store by default (and that --store picks another)."""
    message = str(exc)
    if isinstance(exc, FileNotFoundError) and "No candidate store" in message:
        default = _default_store()
        where = ("that is the default store" if any(os.path.abspath(d) == os.path.abspath(default)
                                                    for d in _stores(args)) else f"the default is {default}")
        message += (f" Runs store their candidates in store= of --model_args, else $BESTOFL_STORE, else "
                    f"~/.cache/bestofl/store ({where}); give that folder to --store.")
    return message


def report_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bestofl-report",
        description="Budget curves, pool ablations, pass@k and plots from candidate stores (no generation). "
        "Subcommands: export (raw JSON Lines), compare (lm-eval runs), adaptive (early-stopping rules), "
        "recommend-pool (choose a language pool).",
    )
    parser.add_argument("--store", action="append", metavar="DIR", help=_STORE_HELP)
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (CSV, summary.md, PNG)")
    parser.add_argument("--tasks", metavar="PATTERNS", help=_TASKS_HELP)
    parser.add_argument("--languages", type=_languages, metavar="L1:L2",
                        help="the pool, in order (default: every stored language, MGSM order)")
    parser.add_argument("--pool", type=_languages, action="append", default=[], metavar="L1:L2",
                        help="an extra sub-pool to ablate (repeatable)")
    parser.add_argument("--targets", type=_languages, metavar="L1:L2",
                        help="target languages (default: with --tasks the target languages those runs had, else every "
                        "stored language and stored target language)")
    parser.add_argument("--budget", type=_positive, help="one budget for every summary table and plot (default: "
                        "each method, pool and pass@k scope at its own largest budget, the n a run spent; each "
                        "table says which n it uses)")
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


def _rule(value: str):
    from ..selection.adaptive import AdaptiveRule

    try:
        return AdaptiveRule.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a fraction strictly between 0 and 1 (e.g. 0.5)")
    return number


def _points(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number >= 0):
        raise argparse.ArgumentTypeError(f"{value!r} is not a finite number of accuracy points >= 0 (e.g. 0.5)")
    return number


def _store_arguments(parser: argparse.ArgumentParser) -> None:
    """--store, --out and the choice of generator, settings and verifier (shared by the store subcommands)."""
    parser.add_argument("--store", action="append", metavar="DIR", help=_STORE_HELP)
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (a previous one is replaced)")
    parser.add_argument("--tasks", metavar="PATTERNS", help=_TASKS_HELP)
    parser.add_argument("--targets", type=_languages, metavar="L1:L2",
                        help="target languages (default: with --tasks the target languages those runs had, else every "
                        "stored language and stored target language)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random orderings and splits (default 0)")
    parser.add_argument("--generator", help="generator to use when the store holds several")
    parser.add_argument("--settings", metavar="ID", help="sampling-settings id when the store holds several")
    parser.add_argument("--verifier", help="verifier whose scores to use when the store holds several")


def adaptive_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bestofl-report adaptive",
        description="Accuracy vs mean samples used of adaptive stopping rules (adaptive=...), replayed on random "
        "orderings of the stored candidates; names the cheapest rule within --tolerance of the full budget.")
    _store_arguments(parser)
    parser.add_argument("--languages", type=_languages, metavar="L1:L2",
                        help="the pool, in order (default: every stored language, the runs' order)")
    parser.add_argument("--rule", type=_rule, action="append", default=[], metavar="RULE",
                        help="a rule to replay, e.g. score:0.9, margin:3, score:0.9+margin:3 (repeatable; "
                        "default: a grid of each)")
    parser.add_argument("--budget", type=_positive, help="the budget n (default: all every problem has stored)")
    parser.add_argument("--tolerance", type=_points, default=0.5, metavar="POINTS",
                        help="accuracy points below the full budget a rule may lose (default 0.5)")
    parser.add_argument("--orderings", type=_positive, default=200,
                        help="random orderings of the stored candidates (default 200)")
    return parser


def recommend_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bestofl-report recommend-pool",
        description="Choose a pool of --size languages for the store's generator and verifier on a dev split of "
        "the problems, check it on the held-out rest, and write recommended_pool.json for languages=auto:FILE.")
    _store_arguments(parser)
    parser.add_argument("--size", type=_positive, required=True, metavar="K", help="languages in the pool")
    parser.add_argument("--dev-fraction", type=_fraction, default=0.5, metavar="F",
                        help="share of the problems the search sees (default 0.5); the rest is held out")
    parser.add_argument("--budget", type=_positive,
                        help="samples per problem (default: K times the fewest any language has on a problem)")
    return parser


def _load(parser: argparse.ArgumentParser, args: argparse.Namespace):
    from .data import build_data, load_stores
    from .render import check_out_dir

    try:
        check_out_dir(args.out)
        return build_data(load_stores(_stores(args), args.tasks), args.generator, args.settings, args.verifier)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(_store_error(exc, args))


def _adaptive(argv: Sequence[str]) -> int:
    from .adaptive_budget import files, simulate
    from .build import Options, ReportContext, default_targets
    from .render import write_folder

    parser = adaptive_parser()
    args = parser.parse_args(argv)
    data = _load(parser, args)
    try:
        ctx = ReportContext(data, Options(seed=args.seed, mc_samples=args.orderings))
        pool = args.languages or data.languages
        report = simulate(ctx, pool, args.targets or default_targets(data), args.budget, args.rule, args.tolerance)
    except ValueError as exc:
        parser.error(str(exc))
    write_folder(files(report), args.out)
    best = report.best
    print(f"bestofl-report adaptive: {report.problems} problems, budget {report.budget}, full-budget accuracy "
          f"{100 * report.full_accuracy:.1f}%; " + (
              f"cheapest rule within {args.tolerance} points: adaptive={best['rule']} ({100 * best['accuracy']:.1f}%, "
              f"{100 * best['samples_fraction']:.0f}% of the samples)" if best else "no rule within the tolerance")
          + f" -> {args.out}", file=sys.stderr)
    return 0


def _recommend(argv: Sequence[str]) -> int:
    from .recommend import files, recommend_pool
    from .render import write_folder

    parser = recommend_parser()
    args = parser.parse_args(argv)
    data = _load(parser, args)
    try:
        result = recommend_pool(data, args.size, args.dev_fraction, args.seed, args.budget, args.targets)
    except ValueError as exc:
        parser.error(str(exc))
    paths = write_folder(files(result), args.out)
    if result.warning:
        logging.getLogger("bestofl_models.report").warning("%s", result.warning)
    print(f"bestofl-report recommend-pool: {':'.join(result.pool)} ({result.search} search) -> {paths[0]}",
          file=sys.stderr)
    return 0


def export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bestofl-report export",
                                     description="Print stored candidates as JSON Lines, one per line.")
    parser.add_argument("--store", action="append", required=True, metavar="DIR", help="candidate store (repeatable)")
    parser.add_argument("--out", metavar="FILE", help="output file (default: stdout)")
    parser.add_argument("--verifier", help="verifier whose scores to show when the store holds several")
    return parser


def _export(argv: Sequence[str]) -> int:
    from ..store.atomic import atomic_write
    from .export import check_export_target, export_records

    parser = export_parser()
    args = parser.parse_args(argv)
    records = export_records(args.store, args.verifier)
    try:
        if args.out:
            check_export_target(args.out, args.store)
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
        data = build_data(load_stores(_stores(args), args.tasks), args.generator, args.settings, args.verifier,
                          recount=True)
        report = build_report(data, options, show_progress=args.progress)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(_store_error(exc, args))
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
    if argv[:1] == ["adaptive"]:
        return _adaptive(argv[1:])
    if argv[:1] == ["recommend-pool"]:
        return _recommend(argv[1:])
    if argv[:1] == ["browse"]:
        from .browse import main as browse

        return browse(argv[1:])
    return _report(argv)


if __name__ == "__main__":
    sys.exit(main())
