"""The ``cof`` command: one entry point for every process this package starts.

Each sub-command lives in ``cof_plugins.commands.<name>`` and exposes
``add_parser(subparsers)``; heavy imports (torch, trainers) happen inside the command's
``run`` function, so ``cof --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Order is the order shown by `cof --help`.
COMMAND_MODULES = (
    "quickstart",
    "ls",
    "doctor",
    "tiny_model",
    "data",
    "zoom",
    "judge",
    "eval",
    "rl",
    "cluster",
    "sft",
    "smoke",
    "export",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cof",
        description="Adaptive Chain-of-Focus plugins for LLaMA-Factory and verl.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"cof_plugins.commands.{name}")
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "accepts_extra", False):
        args.extra = extra
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
