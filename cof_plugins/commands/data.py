"""``cof data ...``: synthetic data, trajectories, validation, conversion, preparation, export.

Every command that writes a folder or file also writes a provenance record beside it
(``data.provenance``); every bad row is reported by its 0-based index.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from cof_plugins.core.frame import FAMILIES, PixelBudget
from cof_plugins.data.thinking import WORDINGS

COORDS = ("abs", "rel1000", "rel1")
PROTOCOL_HELP = "protocol preset name (cof ls) or your own YAML file (core.protocol)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from cof_plugins.commands.data_cos import add_chain_of_spot

    p = sub.add_parser("data", help="make, check and convert CoF datasets")
    data_sub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    for add in (
        _add_scenes,
        _add_synthesize,
        _add_validate,
        _add_convert,
        _add_prepare,
        _add_to_parquet,
        _add_sif,
        add_chain_of_spot,
    ):
        add(data_sub)


def _family_budget(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", default="qwen2_5_vl", choices=sorted(FAMILIES))
    p.add_argument(
        "--min-pixels",
        type=int,
        default=PixelBudget.min_pixels,
        help="frame pixel budget: least pixels (the recipe's value)",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=PixelBudget.max_pixels,
        help="frame pixel budget: most pixels (the recipe's value)",
    )


def _overwrite(p: argparse.ArgumentParser, what: str = "the output") -> None:
    p.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace {what} if it exists (the old one stays until the new one is complete)",
    )


def _budget(args: argparse.Namespace) -> PixelBudget:
    try:
        return PixelBudget(args.min_pixels, args.max_pixels)
    except ValueError as exc:
        raise SystemExit(f"--min-pixels/--max-pixels: {exc}") from None


def _add_scenes(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scenes",
        help="synthetic grounded scenes (textured image, small target, question, box)",
        description="Write OUT/images/* and OUT/annotations.jsonl; deterministic by --seed.",
    )
    p.add_argument("out_dir", metavar="OUT")
    p.add_argument("-n", "--num", type=int, default=40, help="number of samples")
    p.add_argument(
        "--sizes",
        default="224,448,1024,1920,4K",
        help="long sides to cycle through: pixels or 1K/2K/4K/8K",
    )
    p.add_argument("--kinds", default="", help="comma list of colour,shape,text,relative_position")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--large-targets",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of samples (0-1) whose target spans 30-40%% of the short side instead of "
        "2-4%%: legible even in a small frame (default: %(default)s)",
    )
    p.add_argument(
        "--grid",
        action="store_true",
        help="4:3 images with targets centred on a 3x3 grid of spots (the quickstart's scenes)",
    )
    p.add_argument(
        "--vstar",
        action="store_true",
        help="also write OUT/test_questions.jsonl in V* Bench's layout (for cof eval)",
    )
    _overwrite(p, "OUT")
    p.set_defaults(func=_run_scenes)


def _run_scenes(args: argparse.Namespace) -> int:
    from cof_plugins.testbed.synth import KINDS, iter_sizes, write_dataset

    kinds = [k for k in args.kinds.split(",") if k]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise SystemExit(f"--kinds: unknown {bad}; choose from {', '.join(KINDS)}")
    if not 0.0 <= args.large_targets <= 1.0:
        raise SystemExit(f"--large-targets: {args.large_targets} is not a share in [0, 1]")
    try:
        sizes = list(iter_sizes(args.sizes))
        path = write_dataset(
            args.out_dir, args.num, sizes, args.seed, kinds,
            overwrite=args.overwrite, vstar=args.vstar,
            large_targets=args.large_targets, grid=args.grid,
        )  # fmt: skip
    except ValueError as exc:
        raise SystemExit(f"cof data scenes: {exc}") from None
    print(f"wrote {args.num} samples to {path}")
    if args.vstar:
        print(f"V* layout: {path.with_name('test_questions.jsonl')}")
    return 0


def _add_synthesize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synthesize",
        help="adaptive CoF trajectories (direct / one / two zooms) from grounded annotations",
        description="Read annotations (question, options, answer, bbox in original pixels, "
        "image); write OUT/train.json, OUT/images/, OUT/mix.{json,txt}. Exits 1 when any "
        "annotation could not be used (each is reported by row).",
    )
    p.add_argument("--from", dest="src", required=True, help="annotations JSONL or JSON list")
    p.add_argument("--out", required=True, help="output folder")
    _family_budget(p)
    p.add_argument("--layout", default="next-user", choices=["next-user", "in-turn"])
    p.add_argument("--protocol", default="unified", help=PROTOCOL_HELP)
    p.add_argument("--seed", type=int, default=0, help="varies thinking text and zoom context")
    p.add_argument(
        "--legible-side",
        type=float,
        default=28.0,
        help="a target whose short side reaches this many FRAME pixels is answered directly",
    )
    p.add_argument("--max-zooms", type=int, default=2, choices=[0, 1, 2, 3])
    p.add_argument(
        "--box-grid",
        type=int,
        default=0,
        metavar="PX",
        help="snap zoom boxes outwards to multiples of PX frame pixels (0: whole pixels)",
    )
    p.add_argument(
        "--thinking",
        default="varied",
        choices=WORDINGS,
        help="varied phrasings (default) or one short sentence per step, no pixel counts",
    )
    p.add_argument("--limit", type=int, help="only the first N annotations")
    _overwrite(p, "--out")
    p.set_defaults(func=_run_synthesize)


def _run_synthesize(args: argparse.Namespace) -> int:
    from cof_plugins.data.policy import PolicyConfig
    from cof_plugins.data.provenance import write_provenance
    from cof_plugins.data.synthesize import SynthConfig, SynthesizeError, synthesize

    try:
        policy = PolicyConfig(
            legible_side=args.legible_side, max_zooms=args.max_zooms, box_grid=args.box_grid
        )
        cfg = SynthConfig(
            args.family,
            _budget(args),
            args.layout,
            args.protocol,
            args.seed,
            policy,
            thinking=args.thinking,
        )
        result = synthesize(
            args.src, args.out, cfg, progress=True, limit=args.limit, overwrite=args.overwrite
        )
    except SynthesizeError as exc:
        _report(exc.problems, "problem(s); nothing written")
        return 1
    except (KeyError, ValueError) as exc:
        raise SystemExit(f"cof data synthesize: {exc}") from None
    write_provenance(args.out, inputs=[args.src], seed=args.seed)
    print(result.mix.table())
    _report(result.errors, "annotation(s) skipped")
    print(f"wrote {len(result.rows)} trajectories to {result.path}")
    return 1 if result.errors else 0


def _report(problems: list[str], what: str, limit: int = 50) -> None:
    for line in problems[:limit]:
        print(line)
    if len(problems) > limit:
        print(f"... and {len(problems) - limit} more")
    if problems:
        print(f"{len(problems)} {what}")


def _add_validate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check a canonical data file before training (exit 1 on any error)",
        description="Image counts vs <image>, missing/unreadable images, turn order, tool calls, "
        "boxes vs the frame, token length. Every finding names its 0-based row.",
    )
    p.add_argument("file", help="canonical JSON list or JSONL")
    p.add_argument("--image-dir", help="folder image paths are relative to (default: FILE's)")
    _family_budget(p)
    p.add_argument("--cutoff-len", type=int, help="report rows estimated above this many tokens")
    p.add_argument("--tokenizer", help="tokenizer folder for exact text token counts")
    p.add_argument("--decode", action="store_true", help="decode every image fully (slower)")
    p.add_argument("--strict", action="store_true", help="warnings also give exit status 1")
    p.add_argument("--show", type=int, default=20, help="findings printed per check (all: -1)")
    p.add_argument("--report", help="write every finding to this JSON file")
    _overwrite(p, "--report")
    p.set_defaults(func=_run_validate)


def _run_validate(args: argparse.Namespace) -> int:
    from cof_plugins.commands.data_validate import run_validate

    return run_validate(args, _budget(args))


def _add_convert(sub: argparse._SubParsersAction) -> None:
    from cof_plugins.data.styles import STYLES

    p = sub.add_parser(
        "convert",
        help="other trajectory formats -> canonical, or rewrite box conventions",
        description="Styles: function-call (sharegpt function_call/observation), deepeyes "
        "(tool turns, absolute boxes), mini-o3 (relative boxes, crops of crops), canonical "
        "(only --coords-from/--coords-to). Input formats: see cof_plugins.data.styles.",
    )
    p.add_argument("--from", dest="src", required=True, help="input JSON list or JSONL")
    p.add_argument("--style", required=True, choices=STYLES.names())
    p.add_argument("--out", required=True, help="output file (.json or .jsonl)")
    p.add_argument("--image-dir", help="folder image paths are relative to (default: input's)")
    _family_budget(p)
    p.add_argument("--to-family", choices=sorted(FAMILIES), help="swap base model (frame too)")
    p.add_argument("--coords-from", choices=COORDS, help="default: the style's convention")
    p.add_argument("--coords-to", choices=COORDS, help="default: the (target) family's")
    p.add_argument("--protocol", default="unified", help=PROTOCOL_HELP)
    p.add_argument(
        "--to",
        default="canonical",
        choices=["canonical", "function-call"],
        help="write canonical rows, or canonical back to function-call style",
    )
    _overwrite(p, "--out")
    p.set_defaults(func=_run_convert)


def _rebase(rows: list[dict], image_dir: Path, out_dir: Path) -> None:
    """Keep relative image paths valid when the output lives in another folder."""
    if image_dir.resolve() == out_dir.resolve():
        return
    for row in rows:
        row["images"] = [
            p if os.path.isabs(p) else os.path.relpath(image_dir / p, out_dir)
            for p in row.get("images", [])
        ]


def _run_convert(args: argparse.Namespace) -> int:
    from cof_plugins.core.atomic import check_output
    from cof_plugins.data.convert import ConvertConfig, convert_rows
    from cof_plugins.data.provenance import write_provenance
    from cof_plugins.data.rows import DataFileError, default_image_dir, read_rows, write_rows
    from cof_plugins.data.styles.function_call import to_function_call

    try:
        check_output(args.out, arg="--out", inputs=[args.src], overwrite=args.overwrite)
        cfg = ConvertConfig(
            args.style,
            args.family,
            args.to_family,
            _budget(args),
            args.coords_from,
            args.coords_to,
            args.protocol,
        )
        rows = read_rows(args.src)
    except (KeyError, ValueError, DataFileError) as exc:
        raise SystemExit(f"cof data convert: {exc}") from None
    image_dir = default_image_dir(args.src, args.image_dir)
    good, bad = convert_rows(rows, cfg, image_dir, progress=len(rows) > 500)
    if args.to == "function-call":
        good = [to_function_call(r) for r in good]
    _rebase(good, image_dir, Path(args.out).resolve().parent)
    write_rows(args.out, good)
    write_provenance(args.out, inputs=[args.src])
    _report(bad, "row(s) not converted")
    print(f"wrote {len(good)} rows to {args.out}")
    return 1 if bad else 0


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    from cof_plugins.data.sources import dataset_names, help_text

    p = sub.add_parser(
        "prepare",
        help="local snapshots of released datasets -> this project's layout",
        description=help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", choices=dataset_names())
    p.add_argument("--from", dest="src", required=True, help="the downloaded snapshot folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--image-dir", help="image folder when not beside the data file")
    p.add_argument("--layout", choices=["next-user", "in-turn"], help="cof-sft: normalise crops")
    p.add_argument("--copy-images", action="store_true", help="copy instead of symlinking")
    p.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="write the good rows, list the bad ones, exit 0 (default: a benchmark with a bad "
        "row is not written; a training set is written without them, exit status 1)",
    )
    _overwrite(p, "--out")
    p.set_defaults(func=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    from cof_plugins.data.prepare import prepare
    from cof_plugins.data.provenance import write_provenance
    from cof_plugins.data.snapshot import SnapshotError

    try:
        result = prepare(
            args.dataset,
            args.src,
            args.out,
            image_dir=args.image_dir,
            layout=args.layout,
            copy=args.copy_images,
            skip_bad_rows=args.skip_bad_rows,
            overwrite=args.overwrite,
        )
    except (SnapshotError, ValueError) as exc:
        raise SystemExit(f"cof data prepare {args.dataset}: {exc}") from None
    write_provenance(args.out, inputs=result.inputs, extra={"dataset": args.dataset})
    _report(result.problems, "problem row(s)" + (" skipped" if args.skip_bad_rows else ""))
    print(f"wrote {result.n_rows} rows to {result.output}")
    return 1 if result.problems and not args.skip_bad_rows else 0


def _add_to_parquet(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "to-parquet",
        help="canonical rows or annotations -> verl RLHFDataset parquet",
        description="Columns data_source, prompt (system + first user turn), images (the "
        "frame), reward_model, extra_info (tools_kwargs for image_zoom_in_tool), agent_name.",
    )
    p.add_argument("--from", dest="src", required=True, help="canonical rows or annotations")
    p.add_argument("--out", required=True, help="output .parquet file")
    p.add_argument("--image-dir", help="folder image paths are relative to (default: input's)")
    _family_budget(p)
    p.add_argument("--protocol", default="unified", help=PROTOCOL_HELP)
    p.add_argument("--agent-name", default="tool_agent")
    p.add_argument(
        "--images",
        default="embed",
        choices=["embed", "path"],
        help="embed frame PNG bytes, or reference the original by path",
    )
    p.add_argument("--data-source", default="cof", help="for rows that do not name one")
    p.add_argument(
        "--drop-invalid",
        action="store_true",
        help="write the good rows and report the bad ones (default: write nothing)",
    )
    _overwrite(p, "--out")
    p.set_defaults(func=_run_to_parquet)


def _run_to_parquet(args: argparse.Namespace) -> int:
    from cof_plugins.core.atomic import check_output
    from cof_plugins.data.parquet import ParquetConfig, ParquetInputError, write_parquet
    from cof_plugins.data.provenance import write_provenance
    from cof_plugins.data.rows import DataFileError, default_image_dir, read_rows

    try:
        check_output(args.out, arg="--out", inputs=[args.src], overwrite=args.overwrite)
        cfg = ParquetConfig(
            args.family,
            _budget(args),
            args.protocol,
            args.agent_name,
            args.images,
            args.data_source,
        )
        rows = read_rows(args.src)
        n, problems = write_parquet(
            rows,
            args.out,
            default_image_dir(args.src, args.image_dir),
            cfg,
            drop_invalid=args.drop_invalid,
            progress=True,
            overwrite=args.overwrite,
        )
    except ParquetInputError as exc:
        _report(exc.problems, "problem(s); nothing written (fix them or pass --drop-invalid)")
        return 1
    except (KeyError, ValueError, DataFileError) as exc:
        raise SystemExit(f"cof data to-parquet: {exc}") from None
    write_provenance(args.out, inputs=[args.src])
    _report(problems, "row(s) dropped")
    print(f"wrote {n} rows to {args.out}")
    return 0


def _add_sif(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sif",
        help="SIFThinker data: depth scenes -> SFT rows (areas with depth) + verl RL rows",
        description="Write OUT/train.json (LLaMA-Factory sharegpt rows: RGB + depth map, "
        "reverse-expansion replies with template text), OUT/rl.parquet (single-turn verl "
        "rows: extra_info carries gt_boxes, depth_map, answer, key) and OUT/mix.json. "
        "Without --from: N synthetic scenes whose depth is known by construction.",
    )
    p.add_argument("out_dir", metavar="OUT")
    p.add_argument("-n", "--num", type=int, default=200, help="synthetic scenes to render")
    p.add_argument("--from", dest="src", help="annotations JSONL/JSON instead of scenes")
    p.add_argument("--image-dir", help="folder --from paths are relative to (default: its)")
    p.add_argument("--seed", type=int, default=0, help="scenes, distractors (deterministic)")
    p.add_argument(
        "--depth-image",
        choices=("color", "gray"),
        default="color",
        help="depth map shown in SFT prompts: Spectral_r colour or gray (same depths)",
    )
    p.add_argument(
        "--rl-depth-image",
        action="store_true",
        help="show the depth map in RL prompts too (the release's RL prompt is RGB only)",
    )
    p.add_argument("--distractor-rate", type=float, default=0.5)
    p.add_argument(
        "--decimals",
        type=int,
        default=3,
        choices=(1, 2, 3),
        help="decimals of boxes and depths in the replies (3: the format's maximum)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    _family_budget(p)
    p.set_defaults(func=_run_sif)


def _run_sif(args: argparse.Namespace) -> int:
    from cof_plugins.data.provenance import write_provenance
    from cof_plugins.data.rows import DataFileError, default_image_dir, read_rows
    from cof_plugins.data.sif import SifDataConfig
    from cof_plugins.data.sif_chain import ChainConfig
    from cof_plugins.data.sif_write import OutputExists, write_from_rows, write_synthetic

    try:
        cfg = SifDataConfig(
            ChainConfig(distractor_rate=args.distractor_rate, decimals=args.decimals),
            args.rl_depth_image,
            _budget(args),
            args.seed,
        )
        if args.src:
            rows = read_rows(args.src)
            root = default_image_dir(args.src, args.image_dir)
            result = write_from_rows(rows, args.out_dir, root, cfg, overwrite=args.overwrite)
        else:
            result = write_synthetic(
                args.out_dir, args.num, cfg, depth_image=args.depth_image, overwrite=args.overwrite
            )
    except (OutputExists, ValueError, DataFileError) as exc:
        raise SystemExit(f"cof data sif: {exc}") from None
    write_provenance(result.out, inputs=[args.src] if args.src else [], seed=args.seed)
    _report(result.problems, "row(s) skipped")
    print(json.dumps(result.mix))
    print(
        f"wrote {result.rows} SFT rows to {result.out / 'train.json'} and RL rows to "
        f"{result.out / 'rl.parquet'}"
    )
    return 1 if result.problems else 0
