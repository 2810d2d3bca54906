"""Synthetic grounded samples: a large textured image with a small target somewhere.

Each sample has a multiple-choice question about the target (its colour, its shape, the word
written on it, or where it sits relative to a second target), the answer, and the target's
box in original-image pixels. Deterministic by seed: the same (seed, index, size) always
gives the same pixels. Used by tests, the data engine and the quickstart.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cof_plugins.core.atomic import check_output, replace_dir, write_text

COLOURS = {
    "red": (220, 30, 30),
    "green": (20, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 210, 20),
    "purple": (140, 40, 180),
    "orange": (245, 130, 20),
}
SHAPES = ("circle", "square", "triangle", "diamond")
WORDS = ("cat", "sun", "map", "key", "box", "pen", "cup", "hat")
KINDS = ("colour", "shape", "text", "relative_position")
DEFAULT_SIZES = (224, 448, 1024, 1920, 3840)


@dataclass
class SynthSample:
    """One grounded question; ``bbox`` (x1, y1, x2, y2) is in original-image pixels."""

    id: str
    image: str
    width: int
    height: int
    kind: str
    category: str
    question: str
    options: list[str]
    answer: str
    answer_text: str
    bbox: list[int]
    extra_boxes: list[list[int]] = field(default_factory=list)
    target_colour: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Muted, low-contrast texture: coarse noise upsampled plus fine grain."""
    coarse = rng.integers(
        150, 215, size=(max(2, height // 64), max(2, width // 64), 3), dtype=np.uint8
    )
    img = Image.fromarray(coarse).resize((width, height), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.int16)
    grain = rng.integers(-5, 6, size=(height, width, 1), dtype=np.int16)
    return Image.fromarray(np.clip(arr + grain, 0, 255).astype(np.uint8))


LARGE_TARGET = (0.30, 0.40)  # share of the short side a large target spans: several tokens wide


def target_side(width: int, height: int, rng: random.Random) -> int:
    """Target size: small relative to the image (2-4% of the short side), at least 12 px."""
    return max(12, int(min(width, height) * rng.uniform(0.02, 0.04)))


def is_large(seed: int, index: int, long_side: int, share: float) -> bool:
    """Whether sample ``index`` gets a large target, for a ``share`` of samples.

    Drawn from its own stream so that ``share=0`` leaves every other pixel as it was.
    """
    return share > 0 and random.Random(f"large:{seed}:{index}:{long_side}").random() < share


def large_side(width: int, height: int, seed: int, index: int) -> int:
    """A large target's side (``LARGE_TARGET`` of the short side): several vision tokens
    wide in the tiny 224 px frame: its size, not the file's resolution, says "answer
    directly"."""
    rng = random.Random(f"large-side:{seed}:{index}")
    return max(12, int(min(width, height) * rng.uniform(*LARGE_TARGET)))


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: Sequence[int], colour) -> None:
    x1, y1, x2, y2 = box
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=colour)
    elif shape == "triangle":
        draw.polygon([((x1 + x2) / 2, y1), (x2 - 1, y2 - 1), (x1, y2 - 1)], fill=colour)
    else:
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        draw.polygon([(cx, y1), (x2 - 1, cy), (cx, y2 - 1), (x1, cy)], fill=colour)


def _draw_word(img: Image.Image, word: str, box: Sequence[int], colour) -> None:
    """A sign: coloured plate with the word in white, fitted inside ``box``."""
    draw = ImageDraw.Draw(img)
    x1, y1, x2, y2 = box
    draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=colour)
    font = ImageFont.load_default(size=max(6, int((y2 - y1) * 0.7)))
    left, top, right, bottom = draw.textbbox((0, 0), word, font=font)
    tx = x1 + (x2 - x1 - (right - left)) / 2 - left
    ty = y1 + (y2 - y1 - (bottom - top)) / 2 - top
    draw.text((tx, ty), word, fill=(255, 255, 255), font=font)


def _place(rng: random.Random, width: int, height: int, w: int, h: int, avoid=()) -> list[int]:
    """A box of w x h inside the image, away from the border and from boxes in ``avoid``."""
    margin = max(2, min(width, height) // 50)
    for _ in range(200):
        x1 = rng.randint(margin, width - w - margin)
        y1 = rng.randint(margin, height - h - margin)
        box = [x1, y1, x1 + w, y1 + h]
        if all(_apart(box, other) for other in avoid):
            return box
    raise RuntimeError(f"could not place a {w}x{h} target in a {width}x{height} image")


GRID = 3  # cells per side of the grid placement


def _place_grid(rng: random.Random, width: int, height: int, w: int, h: int, avoid=()) -> list[int]:
    """A w x h box centred on one of ``GRID`` x ``GRID`` cell centres (jittered by up to a
    tenth of a cell), in a cell no box of ``avoid`` is centred in."""
    taken = {_cell(b, width, height) for b in avoid}
    free = [(c, r) for r in range(GRID) for c in range(GRID) if (c, r) not in taken]
    col, row = rng.choice(free)
    cx = (col + 0.5 + rng.uniform(-0.1, 0.1)) * width / GRID
    cy = (row + 0.5 + rng.uniform(-0.1, 0.1)) * height / GRID
    x1 = min(max(1, round(cx - w / 2)), width - w - 1)
    y1 = min(max(1, round(cy - h / 2)), height - h - 1)
    return [x1, y1, x1 + w, y1 + h]


def _cell(box: Sequence[int], width: int, height: int) -> tuple[int, int]:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return min(GRID - 1, int(cx * GRID / width)), min(GRID - 1, int(cy * GRID / height))


def _apart(a: Sequence[int], b: Sequence[int], gap: int = 4) -> bool:
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def _options(
    rng: random.Random, pool: Sequence[str], answer: str, n: int = 4
) -> tuple[list[str], str]:
    others = rng.sample([p for p in pool if p != answer], n - 1)
    options = [*others, answer]
    rng.shuffle(options)
    return options, "ABCD"[options.index(answer)]


def image_shape(long_side: int, rng: random.Random) -> tuple[int, int]:
    """(width, height) with the given long side and a common aspect ratio."""
    ratio = rng.choice((1.0, 4 / 3, 16 / 9))
    short = max(64, round(long_side / ratio))
    return (long_side, short) if rng.random() < 0.75 else (short, long_side)


def make_sample(
    index: int,
    long_side: int,
    seed: int = 0,
    kind: str | None = None,
    large: bool = False,
    grid: bool = False,
):
    """Build one sample's image and annotation (image path left empty).

    ``large`` draws a target of ``LARGE_TARGET`` of the short side instead of a small one;
    ``grid`` makes the image 4:3 landscape and centres targets on a 3 x 3 grid of spots, so
    the boxes a model must write take few distinct values (the quickstart's scenes).
    """
    rng = random.Random(f"{seed}:{index}:{long_side}")
    nrng = np.random.default_rng([seed, index, long_side])
    width, height = image_shape(long_side, rng)
    if grid:
        width, height = long_side, round(long_side * 3 / 4)
    place = partial(_place_grid if grid else _place, rng)
    img = _background(nrng, width, height)
    kind = kind or KINDS[index % len(KINDS)]
    if kind not in KINDS:
        raise ValueError(f"unknown sample kind {kind!r}; choose from {', '.join(KINDS)}")
    colour = rng.choice(sorted(COLOURS))
    shape = rng.choice(SHAPES)
    side = target_side(width, height, rng)
    if large:
        side = large_side(width, height, seed, index)
    draw = ImageDraw.Draw(img)
    extra: list[list[int]] = []
    if kind == "text":
        word = rng.choice(WORDS)
        box = place(width, height, int(side * 2.2), side)
        _draw_word(img, word, box, COLOURS[colour])
        options, letter = _options(rng, WORDS, word)
        question, answer_text = "What word is written on the small sign?", word
    elif kind == "relative_position":
        box = place(width, height, side, side)
        other_colour = rng.choice([c for c in sorted(COLOURS) if c != colour])
        other = place(width, height, side, side, avoid=[box])
        while abs((other[0] + other[2]) - (box[0] + box[2])) < 2 * side:
            other = place(width, height, side, side, avoid=[box])
        _draw_shape(draw, shape, box, COLOURS[colour])
        _draw_shape(draw, "circle", other, COLOURS[other_colour])
        extra = [other]
        answer_text = "left" if box[0] < other[0] else "right"
        options, letter = ["left", "right"], "AB"[0 if answer_text == "left" else 1]
        question = (
            f"Is the {colour} {shape} on the left or right side of the {other_colour} circle?"
        )
    else:
        box = place(width, height, side, side)
        _draw_shape(draw, shape, box, COLOURS[colour])
        if kind == "colour":
            options, letter = _options(rng, sorted(COLOURS), colour)
            question, answer_text = f"What is the colour of the small {shape}?", colour
        else:
            options, letter = _options(rng, SHAPES, shape)
            question, answer_text = f"What shape is the small {colour} object?", shape
    category = "relative_position" if kind == "relative_position" else "direct_attributes"
    sample = SynthSample(
        id=f"synth-{seed}-{long_side}-{index:05d}", image="", width=width, height=height,
        kind=kind, category=category, question=question, options=options, answer=letter,
        answer_text=answer_text, bbox=box, extra_boxes=extra, target_colour=list(COLOURS[colour]),
    )  # fmt: skip
    return img, sample


def write_dataset(
    out_dir: str | Path,
    n: int,
    sizes: Sequence[int] = DEFAULT_SIZES,
    seed: int = 0,
    kinds: Sequence[str] | None = None,
    progress: bool = True,
    *,
    overwrite: bool = False,
    vstar: bool = False,
    large_targets: float = 0.0,
    grid: bool = False,
) -> Path:
    """Write ``n`` samples (cycling over ``sizes``) to ``out_dir``/images and annotations.jsonl.

    PNG up to 2048 px, JPEG (quality 92) above, to keep 4K-8K files small. ``vstar`` also
    writes ``test_questions.jsonl`` (``write_vstar_layout``). The folder appears complete
    or not at all (``core.atomic``); an existing one is replaced only with ``overwrite``.
    A ``large_targets`` share of samples (drawn per sample) get a large target: the tiny
    quickstart model sees a 224 px frame, where only target size tells legible from not.
    ``grid``: 4:3 images, targets on a 3 x 3 grid of spots (``make_sample``).
    """
    if not 0.0 <= large_targets <= 1.0:
        raise ValueError(f"large_targets must be a share in [0, 1], got {large_targets}")
    from tqdm import tqdm

    out = check_output(out_dir, arg="OUT", overwrite=overwrite, folder=True)
    with replace_dir(out) as stage:
        (stage / "images").mkdir()
        records = []
        for i in tqdm(range(n), desc="scenes", disable=not progress, unit="img"):
            size = sizes[i % len(sizes)]
            kind = kinds[i % len(kinds)] if kinds else None
            large = is_large(seed, i, size, large_targets)
            img, sample = make_sample(i, size, seed, kind, large, grid)
            ext = "png" if size <= 2048 else "jpg"
            sample.image = f"images/{sample.id}.{ext}"
            if ext == "jpg":
                img.save(stage / sample.image, quality=92)
            else:
                img.save(stage / sample.image)
            records.append(sample.to_dict())
        path = write_text(
            stage / "annotations.jsonl", "".join(json.dumps(r) + "\n" for r in records)
        )
        if vstar:
            write_vstar_layout(path)
    return out / "annotations.jsonl"


def read_dataset(path: str | Path) -> list[SynthSample]:
    return [SynthSample(**json.loads(line)) for line in Path(path).read_text().splitlines() if line]


def iter_sizes(spec: str) -> Iterable[int]:
    """Parse "224,1024,4K,8K" into pixel sizes."""
    named = {"1K": 1024, "2K": 2048, "4K": 3840, "8K": 7680}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        value = named.get(part.upper()) or (int(part) if part.isdigit() else None)
        if value is None or value < 64:
            raise ValueError(f"--sizes: {part!r} is not a size; use pixels (>=64) or 1K/2K/4K/8K")
        yield value


def write_vstar_layout(annotations: str | Path) -> Path:
    """Write ``test_questions.jsonl`` (V* Bench's released layout) beside ``annotations``.

    Rows carry image, text (question then "(A) ..." option lines), label and category, so
    ``cof eval`` reads the synthetic set exactly as it reads V* Bench.
    """
    path = Path(annotations)
    rows = []
    for s in read_dataset(path):
        options = "\n".join(f"({'ABCD'[i]}) {opt}" for i, opt in enumerate(s.options))
        rows.append({"question_id": s.id, "image": s.image, "text": f"{s.question}\n{options}",
                     "label": s.answer, "category": s.category})  # fmt: skip
    return write_text(
        path.with_name("test_questions.jsonl"), "".join(json.dumps(r) + "\n" for r in rows)
    )
