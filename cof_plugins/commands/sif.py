"""``cof sif eval`` / ``cof sif report``: evaluate SIFThinker models on depth scenes, report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cof_plugins.core.frame import PixelBudget


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sif", help="SIFThinker: evaluate on depth scenes, write the report")
    sif_sub = p.add_subparsers(dest="sif_command", metavar="SIF_COMMAND", required=True)
    _add_eval(sif_sub)
    _add_report(sif_sub)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="well-formed areas, answers, IoU and depth on `cof data sif` scenes",
        description="Ask every scene of DATA/scenes.jsonl once (RGB + depth map prompt, "
        "greedy); write RUN_DIR/predictions.jsonl and RUN_DIR/summary.json.",
    )
    p.add_argument("--model", required=True, help="checkpoint folder (or served model name)")
    p.add_argument("--data", required=True, help="a `cof data sif` folder (scenes.jsonl)")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--backend", default="transformers", choices=("transformers", "openai", "vllm"))
    p.add_argument("--max-new-tokens", type=int, default=384)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--limit", type=int, help="only the first N scenes")
    p.add_argument("--depth-image", choices=("color", "gray"), default="color")
    p.add_argument("--min-pixels", type=int, default=PixelBudget.min_pixels)
    p.add_argument("--max-pixels", type=int, default=PixelBudget.max_pixels)
    p.set_defaults(func=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    from cof_plugins.eval.backends import BackendUnavailable, make_backend
    from cof_plugins.methods.sifthinker.evaluate import evaluate

    if not (Path(args.data) / "scenes.jsonl").is_file():
        raise SystemExit(
            f"cof sif eval: {args.data} has no scenes.jsonl; make it with cof data sif"
        )
    try:
        budget = PixelBudget(args.min_pixels, args.max_pixels)
        kwargs = {"budget": budget} if args.backend == "transformers" else {}
        backend = make_backend(args.backend, model=args.model, **kwargs)
    except (BackendUnavailable, ValueError) as exc:
        raise SystemExit(f"cof sif eval: {exc}") from None
    try:
        summary = evaluate(
            backend,
            args.data,
            args.run_dir,
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
            depth_image=args.depth_image,
            limit=args.limit,
        )
    finally:
        backend.close()
    print(json.dumps({k: v for k, v in summary.items() if k != "model"}))
    return 0


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="Markdown + HTML report of `cof sif eval` runs")
    p.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR")
    p.add_argument("--data", required=True, help="the scenes the runs were evaluated on")
    p.add_argument("--summary", help="a quickstart summary.json (stages, settings) to include")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--samples", type=int, default=4, help="replies drawn per run")
    p.set_defaults(func=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from cof_plugins.methods.sifthinker.report import build_report

    runs = {}
    for item in args.runs:
        name, sep, path = item.partition("=")
        if not sep or not (Path(path) / "summary.json").is_file():
            raise SystemExit(f"cof sif report: {item!r} is not NAME=RUN_DIR of a cof sif eval run")
        runs[name] = Path(path)
    data = json.loads(Path(args.summary).read_text(encoding="utf-8")) if args.summary else {}
    settings = [(k, str(v)) for k, v in data.get("settings", {}).items()]
    html = build_report(
        runs,
        Path(args.data),
        Path(args.out),
        stages=data.get("stages"),
        settings=settings,
        rollouts=data.get("rl_rollouts"),
        samples=args.samples,
    )
    print(f"report: {html}")
    return 0
