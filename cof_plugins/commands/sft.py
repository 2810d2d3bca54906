"""``cof sft RECIPE [key=value ...]``: supervised fine-tuning through LLaMA-Factory.

``--dry-run`` resolves and checks everything a launch would, including LLaMA-Factory's own
argument parser in the launch environment (``llamafactory.dry_run.CONFIG_CHECKS``), and
exits 1 with each problem and its fix. ``--smoke`` trains one real step on this CPU with a
tiny model, changing only the keys ``recipes/sft/overlays/smoke.yaml`` declares.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sft",
        help="fine-tune with a recipe through LLaMA-Factory (CoF templates registered)",
        description="Load RECIPE, apply key=value overrides (llamafactory-cli syntax), check the "
        "data, save config/seed/environment to output_dir, then train: in-process for one "
        "process, under torchrun (every rank registers the CoF templates) for more. "
        "NPROC_PER_NODE, NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT are read from the "
        "environment when the flags are absent. A config of the Chain-of-Focus release is "
        "refused with what each of its keys means here; `cof sft migrate RELEASE.yaml "
        "[--dataset-info dataset_info.json] --out RECIPE.yaml [--overwrite]` writes the "
        "equivalent recipe.",
    )
    p.add_argument("recipe", metavar="RECIPE", help="recipe YAML, e.g. recipes/sft/tiny_cpu.yaml")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides")
    p.add_argument("--nproc-per-node", type=int, help="processes per node (GPUs)")
    p.add_argument("--nnodes", type=int, help="number of nodes")
    p.add_argument("--node-rank", type=int, help="this node's rank")
    p.add_argument("--master-addr", help="rank 0's address (multi-node)")
    p.add_argument("--master-port", type=int, help="rendezvous port (default: a free one)")
    p.add_argument(
        "--skip-data-checks",
        action="store_true",
        help="skip the pre-flight data checks (the template is still checked)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="resolve, check the data, ask LLaMA-Factory's own parser (as the launch would) "
        "and write the run files, but do not train; exit 1 on any problem",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="one real step on this CPU: tiny model of the recipe's family, CPU device, "
        "small sizes; every other key as written (prints the keys it changed)",
    )
    p.add_argument(
        "--preview",
        type=int,
        default=0,
        metavar="N",
        help="print the first N rows as LLaMA-Factory tokenizes them, trained "
        "spans in [[...]], then stop",
    )
    # key=value items after a flag reach `run` as args.extra (cli.main's parse_known_args).
    p.set_defaults(func=run, accepts_extra=True)


def run(args: argparse.Namespace) -> int:
    from cof_plugins.llamafactory.config import RecipeError
    from cof_plugins.llamafactory.preflight import PreflightError
    from cof_plugins.llamafactory.train import Topology, run_sft

    overrides = [*args.overrides, *getattr(args, "extra", [])]
    if args.recipe == "migrate":  # `cof sft migrate ...`: its own arguments follow
        from cof_plugins.commands.sft_migrate import main

        return main(overrides)
    unknown = [item for item in overrides if item.startswith("-") or "=" not in item]
    if unknown:
        print(f"cof sft: error: unrecognized arguments: {' '.join(unknown)}", file=sys.stderr)
        return 2
    try:
        if args.smoke:
            return _smoke(args.recipe, overrides)
        topology = Topology.from_env(
            nproc_per_node=args.nproc_per_node,
            nnodes=args.nnodes,
            node_rank=args.node_rank,
            master_addr=args.master_addr,
            master_port=args.master_port,
        )
        dry = args.dry_run or args.preview > 0
        out = run_sft(
            args.recipe, overrides, topology, check=not args.skip_data_checks, dry_run=dry
        )
        if args.preview:
            _preview(out, args.preview)
        elif args.dry_run:
            return _dry_run(out)
    except (RecipeError, PreflightError, ValueError) as exc:
        print(f"cof sft: error: {exc}", file=sys.stderr)
        return 2
    print(f"cof sft: {'checked' if dry else 'trained'}; outputs in {out}")
    return 0


def _dry_run(out) -> int:
    from cof_plugins.llamafactory.config import CONFIG_FILE
    from cof_plugins.llamafactory.dry_run import run_checks

    findings = run_checks(out / CONFIG_FILE)
    for finding in findings:
        print(f"cof sft: error: {finding}", file=sys.stderr)
    if findings:
        print(f"cof sft: dry run found {len(findings)} problem(s); run files in {out}")
        return 1
    print(f"cof sft: dry run passed (data, template, LLaMA-Factory's parser); run files in {out}")
    return 0


def _smoke(recipe: str, overrides: list[str]) -> int:
    from cof_plugins.llamafactory.smoke import run_smoke

    result = run_smoke(recipe, overrides)
    print(
        f"cof sft: smoke passed: {result.recipe.name}, one step in {result.seconds:.0f} s "
        f"(train loss {result.train_loss}); outputs in {result.output}"
    )
    return 0


def _preview(out_dir, n: int) -> None:
    from cof_plugins.llamafactory.config import CONFIG_FILE, read_config
    from cof_plugins.llamafactory.preview import describe, encode_rows

    rows, tokenizer = encode_rows(read_config(out_dir / CONFIG_FILE))
    for index, row in enumerate(rows[:n]):
        print(f"--- row {index}: {len(row.input_ids)} tokens ---\n{describe(row, tokenizer)}")
