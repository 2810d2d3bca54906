"""``cof export``: merge a CoF LoRA adapter into a loadable Hugging Face checkpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="merge a LoRA adapter into its base model (CoF chat template and pixel budget)",
        description="Merge through LLaMA-Factory's export, then write the CoF chat template "
        "and the recipe's pixel budget into the tokenizer/processor. Base, template and "
        "budget default to the recipe, then to the adapter's cof_sft_config.yaml.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--recipe", help="the SFT recipe (adapter = its output_dir)")
    src.add_argument("--adapter", help="adapter folder (or a full fine-tune's output folder)")
    src.add_argument(
        "--rl-checkpoint",
        help="a verl checkpoint (run folder, global_step_N or its actor folder): merged "
        "through verl's model merger",
    )
    p.add_argument(
        "--backend",
        default="fsdp",
        choices=("fsdp", "megatron"),
        help="verl checkpoint format (with --rl-checkpoint)",
    )
    p.add_argument("--base", help="base model path or hub id (default: from the recipe/adapter)")
    p.add_argument("--out", required=True, help="output folder of the merged model")
    p.add_argument("--template", help="CoF template (default: from the recipe or the base model)")
    p.add_argument("--min-pixels", type=int, help="image processor min_pixels")
    p.add_argument("--max-pixels", type=int, help="image processor max_pixels")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out if it holds files (the old model stays until the new one is complete)",
    )
    p.set_defaults(func=run)


def _check_out(args: argparse.Namespace, *more: str | None) -> None:
    """--out may be neither an input (adapter, base, checkpoint) nor silently replaced."""
    from cof_plugins.core.atomic import check_output

    inputs = [p for p in (args.adapter, args.rl_checkpoint, args.base, *more) if p]
    local = [p for p in inputs if Path(p).exists()]  # a hub id is not a folder here
    check_output(args.out, arg="--out", inputs=local, overwrite=args.overwrite, folder=True)


def run(args: argparse.Namespace) -> int:
    from cof_plugins.core.frame import PixelBudget
    from cof_plugins.llamafactory.config import RecipeError
    from cof_plugins.llamafactory.export import export, plan_export

    try:
        _check_out(args)
        budget = None
        if args.min_pixels or args.max_pixels:
            default = PixelBudget()
            budget = PixelBudget(
                args.min_pixels or default.min_pixels, args.max_pixels or default.max_pixels
            )
        if args.rl_checkpoint:
            return _export_rl(args, budget)
        plan = plan_export(
            args.out,
            adapter=args.adapter,
            base=args.base,
            recipe=args.recipe,
            overrides=tuple(args.overrides),
            template=args.template,
            budget=budget,
        )
        _check_out(args, plan.adapter, plan.base)
    except (RecipeError, ValueError) as exc:
        print(f"cof export: error: {exc}", file=sys.stderr)
        return 2
    out = export(plan)
    print(f"cof export: merged model written to {out}")
    return 0


def _export_rl(args: argparse.Namespace, budget) -> int:
    from cof_plugins.verl.export import export_rl_checkpoint

    if budget is None or not (args.min_pixels and args.max_pixels):
        print(
            "cof export: --rl-checkpoint needs --min-pixels and --max-pixels (the RL recipe's "
            "budget), so the exported processor makes the frames the policy was trained on",
            file=sys.stderr,
        )
        return 2
    try:
        out = export_rl_checkpoint(args.rl_checkpoint, args.out, budget, args.backend)
    except FileNotFoundError as exc:
        print(f"cof export: error: {exc}", file=sys.stderr)
        return 2
    print(f"cof export: RL checkpoint merged into {out}")
    return 0
