"""``cof rl`` and ``cof validate``: GRPO with verl from a recipe, and a dry check of one.

``cof rl RECIPE [OVERRIDES...]`` composes the recipe over verl's own config once, checks it as
``cof validate`` does, and starts verl's trainer in this process on the device the composed
config names (``trainer.device: cpu`` selects cof-plugins' CPU platform). ``RECIPE`` is a
YAML path or the name of a shipped recipe (``paper_qwen2_5_vl_7b_grpo``, ``tiny_cpu``, ...);
OVERRIDES are Hydra overrides (``data.train_batch_size=32``, ``+key=value`` for new keys).
``--smoke`` runs one real step of the recipe on this CPU with a tiny model, changing only the
keys ``recipes/rl/overlays/smoke.yaml`` declares (it prints them). Options go before RECIPE.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    rl = subparsers.add_parser(
        "rl",
        help="GRPO with verl from a recipe (registers CoF in every process)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(rl)
    rl.add_argument(
        "--ignore-errors", action="store_true", help="start even if the checks report errors"
    )
    rl.add_argument(
        "--smoke",
        action="store_true",
        help="one real GRPO step on this CPU: tiny model of the recipe's family, CPU device, "
        "small sizes; every other key as written (prints the keys it changed)",
    )
    rl.set_defaults(func=run)
    validate = subparsers.add_parser(
        "validate",
        help="compose and check an RL recipe without starting anything",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(validate)
    validate.add_argument(
        "--show-config", action="store_true", help="print the whole resolved config"
    )
    validate.set_defaults(func=run_validate)
    return rl


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML path or shipped recipe name")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. trainer.nnodes=2")


def _prepare(args: argparse.Namespace):
    from cof_plugins.verl.launcher import prepare
    from cof_plugins.verl.recipe import RecipeError

    try:
        return prepare(args.recipe, args.overrides)
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _report(prepared, settings: bool) -> None:
    from cof_plugins.verl.checks import key_settings

    print(f"recipe: {prepared.recipe}")
    if settings:
        width = max(len(k) for k, _ in key_settings(prepared.config))
        for key, value in key_settings(prepared.config):
            print(f"  {key:<{width}}  {value}")
    for warning in prepared.findings.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for error in prepared.findings.errors:
        print(f"error: {error}", file=sys.stderr)


def run_validate(args: argparse.Namespace) -> int:
    prepared = _prepare(args)
    if prepared is None:
        return 1
    _report(prepared, settings=True)
    if args.show_config:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(prepared.config))
    ok = prepared.findings.ok
    print("valid" if ok else f"{len(prepared.findings.errors)} error(s)")
    return 0 if ok else 1


def run(args: argparse.Namespace) -> int:
    if args.smoke:
        return _smoke(args)
    prepared = _prepare(args)
    if prepared is None:
        return 1
    _report(prepared, settings=True)
    if not prepared.findings.ok and not args.ignore_errors:
        print("not starting: fix the errors above (or pass --ignore-errors)", file=sys.stderr)
        return 1
    from cof_plugins.verl.launcher import train

    train(prepared.config)
    return 0


def _smoke(args: argparse.Namespace) -> int:
    from cof_plugins.verl.recipe import RecipeError
    from cof_plugins.verl.smoke import run_smoke

    try:
        result = run_smoke(args.recipe, args.overrides)
    except (RecipeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    where = result.checkpoint or "no checkpoint written"
    print(f"smoke passed: {result.recipe.name}, one step in {result.seconds:.0f} s ({where})")
    return 0
