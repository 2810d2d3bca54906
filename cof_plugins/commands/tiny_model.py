"""``cof tiny-model DIR --family F``: build a tiny offline VLM checkpoint."""

from __future__ import annotations

import argparse
import sys

from cof_plugins.core.frame import FAMILIES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tiny-model",
        help="build a tiny random-weight VLM of a supported family (offline, seconds)",
        description="Write config, random weights, a locally trained byte-level tokenizer and "
        "the processor of a tiny VLM to DIR. Loadable with transformers' Auto classes.",
    )
    p.add_argument("out_dir", metavar="DIR", help="output folder (created)")
    p.add_argument("--family", default="qwen2_5_vl", choices=sorted(FAMILIES))
    p.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    p.add_argument(
        "--size",
        choices=("tiny", "small", "medium"),
        default="tiny",
        help="tiny: fastest (tests); small: about 1M parameters, learns the CoF format on CPU",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace DIR if it holds files (the old model stays until the new one is complete)",
    )
    p.add_argument(
        "--method",
        choices=("cof", "sifthinker"),
        default="cof",
        help="tokenizer corpus and tags: cof, or sifthinker (adds <area>/<text> tags)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cof_plugins.core.atomic import OutputError, check_output, replace_dir
    from cof_plugins.testbed.tiny_model import SIZES, build_tiny_model

    try:
        out = check_output(args.out_dir, arg="DIR", overwrite=args.overwrite, folder=True)
    except OutputError as exc:
        print(f"cof tiny-model: {exc}", file=sys.stderr)
        return 2
    with replace_dir(out) as stage:  # the folder appears complete or not at all
        build_tiny_model(
            stage, args.family, seed=args.seed, size=SIZES[args.size], method=args.method
        )
    print(f"tiny {args.family} model written to {out}")
    return 0
