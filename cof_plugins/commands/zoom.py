"""``cof zoom``: run one zoom-in tool call by hand and see exactly what the model would get.

Useful for checking a box from a transcript: it prints the frame the model saw, the box as
validated, the enlarged region and the crop size, writes the crop, and writes a preview of
the frame with the box (red) and the enlarged region (blue) drawn on it. The call goes
through ``core.zoom_step``, the code the RL tool and the evaluation loop run, under the
chosen ``--profile`` (``paper``: the release exactly) and ``--stage`` (crop cap and, under
``paper``, what a failed call returns).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cof_plugins.core.coords import CONVENTIONS
from cof_plugins.core.frame import FAMILIES, PixelBudget
from cof_plugins.core.profiles import PROFILES

if TYPE_CHECKING:
    from PIL import Image

    from cof_plugins.core.zoom_step import CallOutcome

BOX_COLOUR = (255, 0, 0)
ENLARGED_COLOUR = (0, 90, 255)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "zoom",
        help="crop one bbox as the zoom-in tool does, with a preview",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("image", type=Path, help="the original image file")
    parser.add_argument(
        "--bbox",
        required=True,
        help="x1,y1,x2,y2 on the frame, in --coords (write --bbox=-5,... if it starts with -)",
    )
    parser.add_argument("--family", default="qwen2_5_vl", choices=sorted(FAMILIES))
    parser.add_argument(
        "--coords", choices=CONVENTIONS, help="box convention (default: the family's own)"
    )
    budget = parser.add_argument_group("pixel budgets")
    budget.add_argument(
        "--min-pixels", type=int, default=PixelBudget.min_pixels, help="frame: least pixels"
    )
    budget.add_argument(
        "--max-pixels", type=int, default=PixelBudget.max_pixels, help="frame: most pixels"
    )
    budget.add_argument(
        "--crop-max-pixels",
        type=int,
        help="crop: most pixels (default: 5120*28*28 for --stage rl, --max-pixels for eval)",
    )
    parser.add_argument(
        "--profile",
        default="default",
        choices=tuple(PROFILES.names()),
        help="paper: the release exactly (crop of the frame, int() edges, LANCZOS)",
    )
    parser.add_argument(
        "--paper",
        action="store_const",
        const="paper",
        dest="profile",
        help="same as --profile paper",
    )
    parser.add_argument(
        "--stage", default="rl", choices=("rl", "eval"), help="whose zoom step to run (default rl)"
    )
    parser.add_argument("--clamp", action="store_true", help="clip out-of-range boxes")
    parser.add_argument("-o", "--output", type=Path, help="crop path (default <stem>_zoom.png)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing crop and preview"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from cof_plugins.core.atomic import OutputError, check_output
    from cof_plugins.core.parser import ZOOM_TOOL, call_from_arguments
    from cof_plugins.core.zoom import ImageLoadError, load_image
    from cof_plugins.core.zoom_step import StepConfig, make_frame, run_call

    zoom: dict[str, object] = {"clamp": args.clamp}
    if args.stage == "eval":
        zoom.update(min_pixels=args.min_pixels, max_pixels=args.max_pixels)
    if args.crop_max_pixels is not None:
        zoom["max_pixels"] = args.crop_max_pixels
    try:
        budget = PixelBudget(args.min_pixels, args.max_pixels)
        step = StepConfig.for_stage(
            args.profile, args.stage, family=args.family, suffix="", coords=args.coords, zoom=zoom
        )
        output, preview = _outputs(args, check_output)
        image = load_image(args.image)
        frame = make_frame(image, args.family, budget, args.profile)
    except OutputError as exc:
        print(f"cof zoom: {exc}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as exc:  # unreadable image, bad budget, > 200:1 image
        print(f"cof zoom: {args.image}: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, ImageLoadError) else 2
    call = call_from_arguments(ZOOM_TOOL, {"bbox_2d": _box_values(args.bbox)})
    outcome = run_call(call, frame, image, step)
    if outcome.image is None:
        print(outcome.message)
        return 2
    _save(outcome.image, output)
    _save(_preview(frame, outcome), preview)
    _report(args, image.size, frame.size, step.zoom.factor, outcome, output, preview)
    return 0


def _outputs(args: argparse.Namespace, check_output) -> tuple[Path, Path]:
    """The crop and preview paths, checked: never the image itself, never silently replaced."""
    output = args.output or Path(f"{args.image.stem}_zoom.png")
    preview = output.with_name(f"{output.stem}_preview.png")
    for path, arg in ((output, "-o/--output"), (preview, "-o/--output (its preview)")):
        check_output(path, arg=arg, inputs=[args.image], overwrite=args.overwrite)
    return output, preview


def _save(image: Image.Image, path: Path) -> None:
    """Write a PNG atomically (the format from the suffix, PNG when it names none)."""
    from PIL import Image as PILImage

    from cof_plugins.core.atomic import replace_file

    ext = path.suffix.lower()
    fmt = PILImage.registered_extensions().get(ext, "PNG")
    with replace_file(path) as temp:
        image.save(temp, format=fmt)


def _box_values(text: str) -> list[object]:
    """Parse "x1,y1,x2,y2" as the model would write it; anything odd goes to validation.

    Tokens that are not numbers are passed through as strings, so the parser and the zoom
    word the error exactly as the model would read it.
    """
    tokens = [t for t in text.strip().strip("[]()").replace(",", " ").split() if t]
    values: list[object] = []
    for token in tokens:
        try:
            values.append(float(token))
        except ValueError:
            values.append(token)
    return values


def _preview(frame: Image.Image, outcome: CallOutcome) -> Image.Image:
    """The frame as the model saw it, with the requested and the cropped regions outlined."""
    from PIL import ImageDraw

    shown = frame.copy()
    result = outcome.result
    if result is None or result.box is None:  # the whole frame came back
        return shown
    draw = ImageDraw.Draw(shown)
    width = max(2, max(frame.size) // 400)
    draw.rectangle(result.enlarged_box, outline=ENLARGED_COLOUR, width=width)
    draw.rectangle(result.box, outline=BOX_COLOUR, width=width)
    return shown


def _report(
    args: argparse.Namespace,
    size: tuple[int, int],
    frame: tuple[int, int],
    factor: int,
    outcome: CallOutcome,
    output: Path,
    preview: Path,
) -> None:
    def fmt(box: object) -> str:
        return "[" + ", ".join(f"{v:g}" for v in box) + "]"

    crop = outcome.image
    lines = [
        f"image     {args.image}  {size[0]}x{size[1]}",
        f"frame     {frame[0]}x{frame[1]}  ({args.family}, factor {factor}, "
        f"pixels in [{args.min_pixels}, {args.max_pixels}]; profile {args.profile}, "
        f"{args.stage})",
    ]
    result = outcome.result
    if outcome.kind == "valid" and result is not None:
        mode = "original (full resolution)" if result.from_original else "frame"
        lines += [
            f"box       {fmt(result.box)}  frame px",
            f"enlarged  {fmt(result.enlarged_box)}  frame px",
            f"source    {fmt(round(v, 1) for v in result.source_box)}  image px, from the {mode}",
        ]
    else:
        lines.append(f"failed    the model gets the whole frame instead ({outcome.source})")
    lines += [f"crop      {crop.width}x{crop.height}  -> {output}", f"preview   {preview}"]
    if outcome.message:
        lines.append(f"message   {outcome.message}")
    print("\n".join(lines))
