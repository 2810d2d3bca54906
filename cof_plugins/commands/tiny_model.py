"""``cof tiny-model DIR --family F``: build a tiny offline VLM checkpoint."""

from __future__ import annotations

import argparse

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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cof_plugins.testbed.tiny_model import SIZES, build_tiny_model

    out = build_tiny_model(args.out_dir, args.family, seed=args.seed, size=SIZES[args.size])
    print(f"tiny {args.family} model written to {out}")
    return 0
