"""``cof data chain-of-spot``: two-turn Chain-of-Spot SFT rows from grounded annotations."""

from __future__ import annotations

import argparse
from pathlib import Path

from cof_plugins.core.frame import FAMILIES, PixelBudget


def add_chain_of_spot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chain-of-spot",
        help="Chain-of-Spot rows (ROI box, then the answer on its crop) from grounded annotations",
        description="Read annotations (question, options, answer, bbox in original pixels, "
        "image; `cof data scenes` writes them) and write OUT/train.json (LLaMA-Factory "
        "sharegpt rows with two images, both replies trained), OUT/crops/, OUT/rois.jsonl, "
        "OUT/summary.json. The ROI is the target box grown into a square (--margin, "
        "--min-side), or the box an attention miner finds (--roi-source attention). See "
        "cof_plugins/data/cos.py for every decision.",
    )
    p.add_argument("--from", dest="src", required=True, help="annotations JSONL or JSON list")
    p.add_argument("--out", required=True, help="output folder (must not exist: --overwrite)")
    p.add_argument("--image-dir", help="folder image paths are relative to (default: input's)")
    p.add_argument(
        "--protocol",
        default="chain-of-spot",
        help="chain-of-spot (padded-square boxes, the "
        "release's), chain-of-spot-native (the family's convention) or your YAML file",
    )
    p.add_argument("--family", default="qwen2_5_vl", choices=sorted(FAMILIES))
    p.add_argument(
        "--min-pixels",
        type=int,
        default=PixelBudget.min_pixels,
        help="frame budget (native boxes are written in the frame)",
    )
    p.add_argument("--max-pixels", type=int, default=PixelBudget.max_pixels)
    p.add_argument(
        "--margin",
        type=float,
        default=0.5,
        help="ROI: added on every side, times the box's longer side",
    )
    p.add_argument(
        "--min-side",
        type=float,
        default=0.25,
        help="ROI: least side, as a fraction of the padded square's side",
    )
    p.add_argument("--seed", type=int, default=0, help="draws each image's Chain-of-Spot question")
    p.add_argument(
        "--missing-box",
        default="whole",
        choices=("whole", "error"),
        help="a question without a box: whole image as ROI (the release) or error",
    )
    p.add_argument("--limit", type=int, help="only the first N annotations")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    miner = p.add_argument_group("ROI from attention (--roi-source attention)")
    miner.add_argument("--roi-source", default="box", choices=("box", "attention"))
    miner.add_argument("--model", help="checkpoint whose attention picks the ROI")
    miner.add_argument("--layers", help="language-model layers, e.g. -2,-1 (default: all)")
    miner.add_argument("--head-aggregate", default="mean", choices=("mean", "max"))
    miner.add_argument("--layer-aggregate", default="mean", choices=("mean", "max"))
    miner.add_argument("--query-tokens", type=int, default=1, help="last N prompt tokens")
    miner.add_argument("--threshold", type=float, default=0.5, help="keep >= this x the peak")
    miner.add_argument(
        "--fit",
        default="peak",
        choices=("peak", "all"),
        help="box around the kept cells joined to the peak, or around all",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cof_plugins.core.cos import RoiShape
    from cof_plugins.core.protocol import ProtocolError
    from cof_plugins.data.cos import CosDataConfig, write
    from cof_plugins.data.rows import DataFileError

    try:
        cfg = CosDataConfig(
            protocol=args.protocol,
            family=args.family,
            budget=PixelBudget(args.min_pixels, args.max_pixels),
            shape=RoiShape(args.margin, args.min_side),
            seed=args.seed,
            missing_box=args.missing_box,
        )
        mined = _mine(args, cfg) if args.roi_source == "attention" else None
        data = write(
            args.src,
            args.out,
            cfg,
            image_dir=args.image_dir,
            mined=mined,
            overwrite=args.overwrite,
            limit=args.limit,
        )
    except (DataFileError, ProtocolError, ValueError, OSError) as exc:  # OutputError too
        raise SystemExit(f"cof data chain-of-spot: {exc}") from None
    for line in data.problems[:50]:
        print(line)
    if data.problems:
        print(f"{len(data.problems)} annotation(s) or image(s) not used")
    sources = ", ".join(f"{k} {data.counts[k]}" for k in ("annotation", "attention", "whole"))
    print(f"wrote {len(data.rows)} rows to {Path(args.out) / 'train.json'} (ROI from: {sources})")
    return 1 if data.problems else 0


def _mine(args: argparse.Namespace, cfg) -> dict:
    """id -> box from the model's attention, for every annotation of the input."""
    from cof_plugins.data.annotations import normalize_all
    from cof_plugins.data.rows import read_rows, resolve
    from cof_plugins.methods.cos_attention import AttentionMiner, MinerConfig

    if not args.model:
        raise ValueError("--roi-source attention needs --model (the checkpoint to mine with)")
    layers = tuple(int(v) for v in args.layers.split(",")) if args.layers else None
    miner_cfg = MinerConfig(
        layers,
        args.head_aggregate,
        args.layer_aggregate,
        args.query_tokens,
        args.threshold,
        args.fit,
    )
    miner = AttentionMiner(
        args.model, miner_cfg, family=cfg.family, budget=cfg.budget, protocol=cfg.protocol
    )
    records = read_rows(args.src)[: args.limit] if args.limit else read_rows(args.src)
    good, _ = normalize_all(records)  # bad rows are reported by the conversion itself
    folder = Path(args.image_dir) if args.image_dir else Path(args.src).resolve().parent
    from PIL import Image

    mined = {}
    for ann in good:
        with Image.open(resolve(folder, ann.image)) as handle:
            mined[ann.id] = miner.mine(handle.convert("RGB"), ann.question).box
    return mined
