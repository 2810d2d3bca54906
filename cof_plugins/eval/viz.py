"""Draw one trajectory as a PNG: the frame with each requested box, then the crops in order.

Two sources: a record of an eval run (crops are recomputed from the benchmark image with the
run's zoom settings, which is deterministic, so runs store no pixels), or one line of a verl
rollout dump (``messages`` plus ``images``: the first image is the frame, later ones are the
crops, boxes are read back from the assistant turns). Pure PIL; no matplotlib needed.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from cof_plugins.core.zoom import RESAMPLE, zoom
from cof_plugins.core.zoom_step import whole_frame
from cof_plugins.eval.frames import SampleImages
from cof_plugins.eval.images import ImageRef, decode_image_bytes
from cof_plugins.eval.loop import LoopConfig

COLOURS = (
    (230, 25, 75),
    (0, 130, 200),
    (60, 180, 75),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
)
INVALID = (128, 128, 128)
FRAME_SIDE = 720
THUMB = 220
PAD = 12
WRAP = 110


@dataclass
class Drawn:
    """What one picture shows: the frame, its boxes (None when unusable), crops, captions."""

    frame_image: Image.Image
    boxes: list[tuple[list[float] | None, bool]] = field(default_factory=list)
    crops: list[Image.Image] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def render(drawn: Drawn) -> Image.Image:
    """Compose the picture: frame with numbered boxes left, crops right, captions below."""
    frame = drawn.frame_image
    scale = FRAME_SIDE / max(frame.size)  # small frames are enlarged so boxes stay legible
    size = (max(1, round(frame.width * scale)), max(1, round(frame.height * scale)))
    shown = frame.resize(size, RESAMPLE)
    _draw_boxes(shown, drawn.boxes, scale)
    cols = 2 if len(drawn.crops) > 3 else 1
    rows = -(-len(drawn.crops) // cols) if drawn.crops else 0
    crops_w = cols * (THUMB + PAD) if drawn.crops else 0
    text = [w for line in drawn.lines for w in textwrap.wrap(line, WRAP) or [""]]
    text_h = 18 * len(text) + PAD
    width = PAD + shown.width + PAD + crops_w
    height = PAD + max(shown.height, rows * (THUMB + 24 + PAD)) + PAD + text_h
    canvas = Image.new("RGB", (width, height), "white")
    canvas.paste(shown, (PAD, PAD))
    _paste_crops(canvas, drawn.crops, PAD + shown.width + PAD, cols)
    draw = ImageDraw.Draw(canvas)
    top = PAD + max(shown.height, rows * (THUMB + 24 + PAD)) + PAD
    for i, line in enumerate(text):
        draw.text((PAD, top + 18 * i), line, fill=(20, 20, 20), font=_font(14))
    return canvas


def _draw_boxes(image: Image.Image, boxes, scale: float) -> None:
    draw = ImageDraw.Draw(image)
    width = max(2, max(image.size) // 240)
    crop_number = 0
    for i, (box, ok) in enumerate(boxes):
        if box is None:
            continue
        colour = COLOURS[crop_number % len(COLOURS)] if ok else INVALID
        x1, y1, x2, y2 = (v * scale for v in box)
        x1, x2 = sorted((max(0, x1), min(image.width - 1, x2)))
        y1, y2 = sorted((max(0, y1), min(image.height - 1, y2)))
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=width)
        label = str(crop_number + 1) if ok else f"x{i + 1}"
        top = y1 - 19 if y1 >= 19 else y2 + 1  # the tag sits outside the box, not on it
        draw.rectangle((x1, top, x1 + 10 * len(label) + 8, top + 18), fill=colour)
        draw.text((x1 + 4, top + 1), label, fill="white", font=_font(14))
        crop_number += ok


def _paste_crops(canvas: Image.Image, crops: list[Image.Image], left: int, cols: int) -> None:
    draw = ImageDraw.Draw(canvas)
    for i, crop in enumerate(crops):
        colour = COLOURS[i % len(COLOURS)]
        x = left + (i % cols) * (THUMB + PAD)
        y = PAD + (i // cols) * (THUMB + 24 + PAD)
        thumb = crop.copy()
        thumb.thumbnail((THUMB, THUMB), RESAMPLE)
        canvas.paste(thumb, (x, y + 20))
        draw.rectangle(
            (x - 2, y + 18, x + thumb.width + 1, y + 21 + thumb.height), outline=colour, width=3
        )
        caption = f"crop {i + 1}: {crop.width}x{crop.height}"
        draw.text((x, y), caption, fill=colour, font=_font(14))


# ---------------------------------------------------------------- eval records


def record_drawing(record: dict[str, Any], loop: LoopConfig) -> Drawn:
    """Rebuild what the model saw in one eval record; raises if the image is gone."""
    resolution = int(record["resolution"]) if record.get("resolution") else None
    pixels = SampleImages(ImageRef.from_dict(record["image"]), loop.frame_spec(), [resolution])
    image = pixels.source(resolution)  # what the run's zooms read
    frame = tuple(record["frame"])
    frame_image = pixels.frame(resolution)  # the frame as the loop made it
    if frame_image.size != frame:  # a run made with other settings: show what it recorded
        frame_image = image.resize(frame, RESAMPLE)
    drawn = Drawn(frame_image, lines=_caption(record))
    config = loop.zoom_config()
    source = image if config.full_resolution else frame_image
    for turn in record.get("trajectory", []):
        for call in turn["calls"]:
            ok = call.get("kind") == "crop"
            drawn.boxes.append((call.get("box"), ok or call.get("source") == "whole_frame"))
            if ok:
                drawn.crops.append(zoom(source, frame, call["box"], config).crop)
            elif call.get("source") == "whole_frame":
                drawn.crops.append(whole_frame(frame_image, config))
    return drawn


def _caption(record: dict[str, Any]) -> list[str]:
    verdict = {True: "RIGHT", False: "WRONG", None: "unscored"}[record.get("correct")]
    options = record.get("options") or []
    opts = "  ".join(f"({chr(65 + i)}) {o}" for i, o in enumerate(options))
    frame, size = record["frame"], record["input_size"]
    lines = [
        f"[{record['key']}] {record.get('category', '')}  {verdict}  "
        f"answer={record.get('answer')!r} pred={record.get('pred')!r}  stop={record.get('stop')}",
        f"Q: {record.get('question', '')}  {opts}",
        f"frame {frame[0]}x{frame[1]} of input {size[0]}x{size[1]}"
        + (f" resized to long side {record['resolution']}" if record.get("resolution") else "")
        + f"; turns={record.get('turns')} "
        f"zooms={record.get('zoom_calls')} invalid={record.get('invalid_calls')} "
        f"tokens={record.get('gen_tokens')}",
    ]
    for i, turn in enumerate(record.get("trajectory", []), start=1):
        lines.append(f"turn {i}: {' '.join(turn['text'].split())[:300]}")
        lines.extend(f"   tool: {c['message'][:200]}" for c in turn["calls"] if not c.get("ok"))
    return lines


# ---------------------------------------------------------------- rollout dumps


def rollout_drawing(row: dict[str, Any], family: str = "qwen2_5_vl", budget=None) -> Drawn:
    """Boxes from the assistant turns on the first image; later images are the crops."""
    from cof_plugins.core.coords import to_frame_pixels
    from cof_plugins.core.frame import frame_size, get_family
    from cof_plugins.core.parser import assistant_segments, parse_turn

    images = [_rollout_image(v, i) for i, v in enumerate(_rollout_images(row))]
    if not images:
        raise ValueError("the rollout row has no images (expected 'images': [...])")
    first = images[0]
    frame = frame_size(first.size, family, budget)
    frame_image = first if first.size == frame else first.resize(frame, RESAMPLE)
    drawn = Drawn(frame_image, crops=images[1:])
    texts = assistant_segments(row.get("messages") or [])
    for text in texts:
        for call in parse_turn(text).tool_calls:
            box = (
                to_frame_pixels(call.bbox, get_family(family).coords, frame) if call.bbox else None
            )
            drawn.boxes.append((list(box) if box else None, True))
    drawn.lines = [f"turn {i}: {' '.join(t.split())[:300]}" for i, t in enumerate(texts, 1)]
    return drawn


def _rollout_images(row: dict[str, Any]) -> list[Any]:
    for key in ("images", "image"):
        if row.get(key):
            value = row[key]
            return value if isinstance(value, list) else [value]
    mm = row.get("multi_modal_data") or {}
    value = mm.get("image") or []
    return value if isinstance(value, list) else [value]


def _rollout_image(value: Any, index: int) -> Image.Image:
    from cof_plugins.core.zoom import load_image

    if isinstance(value, str) and not value.startswith("data:") and len(value) < 4096:
        return load_image(value)
    if isinstance(value, dict) and value.get("path") and not value.get("bytes"):
        return load_image(value["path"])
    return load_image(decode_image_bytes(value, f"rollout image {index}"))


def read_rollout(path: str | Path, index: int) -> dict[str, Any]:
    """Line ``index`` (0-based, blank lines skipped) of a JSONL rollout dump."""
    with open(path, encoding="utf-8") as handle:
        rows = (line for line in handle if line.strip())
        for i, line in enumerate(rows):
            if i == index:
                return json.loads(line)
    raise IndexError(f"{path} has no row {index} (rows are 0-based)")
