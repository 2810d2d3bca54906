"""``cof sft migrate RELEASE.yaml --out RECIPE.yaml``: a release SFT config as a recipe here.

Reached through ``cof sft migrate ...`` (``cof sft`` hands its arguments over). The output is
never the input, an existing output is replaced only with ``--overwrite``, and the file is
written whole (temporary file, then rename), so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

USAGE = "cof sft migrate RELEASE.yaml [--dataset-info dataset_info.json] --out RECIPE.yaml"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cof sft migrate",
        description="Write the cof-plugins recipe equivalent to a Chain-of-Focus release "
        "LLaMA-Factory config (e.g. its configs/sft_lora-7b.yaml), and say what each key "
        "became: stock template -> CoF template, the fork's DeepSpeed path -> cof:zeroN, "
        "projector flag under LoRA -> additional_target, old pixel keys -> image_*_pixels, "
        "the release's dataset entry -> dataset: cof_sft + dataset_dir: cof:FILE.",
    )
    parser.add_argument("release", type=Path, help="the release's SFT YAML")
    parser.add_argument(
        "--dataset-info",
        type=Path,
        help="the release's dataset_info.json (default: the one in its dataset_dir, if any)",
    )
    parser.add_argument("--out", type=Path, required=True, help="recipe YAML to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from cof_plugins.core.atomic import check_output, write_text
    from cof_plugins.llamafactory.config import RecipeError, load_recipe
    from cof_plugins.llamafactory.release import migrated_recipe, release_changes

    try:
        config = load_recipe(args.release)
        info_path = args.dataset_info or _beside_images(config)
        info = _read_info(info_path) if info_path else None
        base = info_path.parent if info_path else args.release.parent
        changes = release_changes(config, info, base)
        inputs = [args.release, info_path]
        check_output(args.out, arg="--out", inputs=inputs, overwrite=args.overwrite)
    except (RecipeError, ValueError) as exc:
        print(f"cof sft migrate: error: {exc}", file=sys.stderr)
        return 2
    if not changes:
        print(f"{args.release}: nothing to map; use it with `cof sft` as it is")
        return 0
    write_text(args.out, migrated_recipe(config, changes, args.release.name))
    for change in changes:
        print(f"  {change.line()}")
    print(f"wrote {args.out}; check it with: cof sft {args.out} --dry-run")
    return 0


def _beside_images(config: dict) -> Path | None:
    """The release README copies dataset_info.json into the image folder (its dataset_dir)."""
    folder = config.get("dataset_dir")
    candidate = Path(str(folder)).expanduser() / "dataset_info.json" if folder else None
    return candidate if candidate is not None and candidate.is_file() else None


def _read_info(path: Path) -> dict:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"--dataset-info {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ValueError(f"--dataset-info {path} is not JSON: {exc}") from None
    if not isinstance(info, dict):
        raise ValueError(f"--dataset-info {path}: expected a JSON object of dataset entries")
    return info
