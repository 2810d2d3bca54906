"""The ``cof`` command: one entry point for every process this package starts.

Each sub-command lives in ``cof_plugins.commands.<name>`` and exposes
``add_parser(subparsers)``; heavy imports (torch, trainers) happen inside the command's
``run`` function, so ``cof --help`` stays fast.
"""

from __future__ import annotations

import argparse
import errno
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
    "sif",
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
    try:
        return int(args.func(args) or 0)
    except OSError as exc:
        if exc.errno not in _FILE_ERRNOS or not exc.filename:
            raise
        print(f"cof {args.command}: {_file_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ncof {args.command}: interrupted", file=sys.stderr)
        return 130


# File-system failures a user can fix (a path, permissions, space); others stay tracebacks.
_FILE_ERRNO_NAMES = "EACCES EPERM ENOENT ENOTDIR EISDIR EROFS ENOSPC EDQUOT EEXIST ENAMETOOLONG"
_FILE_ERRNOS = frozenset(getattr(errno, n) for n in _FILE_ERRNO_NAMES.split() if hasattr(errno, n))


def _file_error(exc: OSError) -> str:
    """A last resort for commands that did not check a path first: name it and the fix."""
    where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 else "")
    hint = {
        errno.ENOSPC: "free some space or write elsewhere",
        errno.ENOENT: "check the path (a folder on the way is missing)",
    }.get(exc.errno, "check the path and that you may write there")
    return f"{exc.strerror}: {where}; {hint}"


if __name__ == "__main__":
    sys.exit(main())
