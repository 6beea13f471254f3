"""``bestofl-train``: build the cross-lingual verifier stage by stage.

    bestofl-train run --config training/configs/tiny-cpu.yaml --output-dir OUT --set generator=smollm2-135m ...
    bestofl-train run ... --until balance; accelerate launch -m training.cli fit --output-dir OUT; bestofl-train run ...
    bestofl-train STAGE --output-dir OUT [--config FILE] [--set KEY=VALUE ...]    (STAGE: translate ... export)
    bestofl-train check --config FILE [--set ...]                                  (validate, print the config)

--set KEY=null removes KEY, so its default applies (e.g. --set generate.model_args=null). `check` only warns about a
package this machine lacks (vllm for generate.backend=vllm): a stage that needs it fails on it.

A stage that already finished with the same settings and inputs is skipped; an unfinished one continues
from its caches. Without ``--config`` a stage command reuses ``OUT/config.yaml`` (written by every run).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from .common import StageError, logger
from .config import STAGES, ConfigError, TrainConfig, dump_config, load_config, validate


def _stage_module(name: str):
    return importlib.import_module(f"training.{name}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bestofl-train", description="Build the Best-of-L cross-lingual verifier, stage by stage.",
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, needs_output: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--config", help="YAML config (default: OUTPUT_DIR/config.yaml from an earlier run)")
        if needs_output:
            sub.add_argument("--output-dir", required=True, help="directory for every stage's output")
        sub.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override a setting, dotted keys, YAML values (e.g. --set fit.lora.r=8; KEY=null "
                              "removes KEY: its default applies); repeatable")
        return sub

    run = add("run", "run every stage in order (finished ones are skipped)")
    run.add_argument("--until", choices=STAGES, default=STAGES[-1],
                     help="stop after this stage (e.g. balance, then fit under accelerate launch)")
    for name in STAGES:
        add(name, (_stage_module(name).__doc__ or name).strip().split("\n")[0])
    add("check", "validate a config and print it resolved, without running anything", needs_output=False)
    return parser


def _config(args) -> TrainConfig:
    path = args.config
    saved = Path(args.output_dir) / "config.yaml" if getattr(args, "output_dir", None) else None
    if path is None and saved is not None and saved.is_file():
        path = saved
    if path is None:
        raise ConfigError("no config: pass --config FILE (e.g. training/configs/tiny-cpu.yaml)")
    return load_config(path, args.overrides)


def run_stages(config: TrainConfig, out_dir: Path, stages: tuple[str, ...]) -> None:
    """Run ``stages`` in order, skipping those already finished with the same settings and inputs."""
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed and stages != ("fit",):
        raise StageError("under accelerate launch / torchrun only the fit stage runs: "
                         "`accelerate launch -m training.cli fit --output-dir DIR`")
    for name in stages:
        module = _stage_module(name)
        if module.stage(out_dir, config).is_done():
            logger.info("%s: up to date (delete %s to redo it)", name, out_dir / name)
            continue
        logger.info("%s: starting", name)
        module.run(out_dir, config)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = _config(args)
        if args.command == "run":
            stages = STAGES[: STAGES.index(args.until) + 1]
        else:
            stages = STAGES if args.command == "check" else (args.command,)
        for warning in validate(config, stages, packages="warn" if args.command == "check" else "error"):
            print(f"bestofl-train: warning: {warning}", file=sys.stderr)
        if args.command == "check":
            sys.stdout.write(dump_config(config))
            return 0
        out_dir = Path(args.output_dir).expanduser().resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        if int(os.environ.get("RANK", "0")) == 0:
            (out_dir / "config.yaml").write_text(dump_config(config), encoding="utf-8")
        run_stages(config, out_dir, stages)
    except (ConfigError, StageError) as exc:
        print(f"bestofl-train: error: {exc}", file=sys.stderr)
        return 2
    if stages[-1] == "export":
        logger.info("done: %s, %s, %s", out_dir / "adapter", out_dir / "merged", out_dir / "metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
