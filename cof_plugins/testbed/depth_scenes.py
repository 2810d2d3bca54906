"""Synthetic scenes whose depth is known by construction: RGB and depth rendered together.

A scene is a far wall above a horizon and a floor that comes closer towards the bottom
edge, with two to four coloured shapes standing on the floor. Each shape is a flat cut-out
facing the camera at one depth: it stands on the floor row of that depth, and nearer
shapes are larger. Shapes are painted far to near with ONE mask per shape written into
both the RGB image and the depth array, so occlusion is consistent between the two.

Depth is stored as integer levels (0 = nearest, 255 = farthest: the wall; the floor's
bottom row is 0), so d = level / 255 survives the 8-bit gray and Spectral_r encodings of
``core.depth`` exactly and the depth reward can be checked offline without a depth model
(the release estimates depth with Depth-Anything-V2). Deterministic by seed.

Questions have one-word answers and known target boxes (fractions of width and height):
which of two shapes is closer (both boxes), the colour of the nearest shape, the shape
of a named colour, the shape of the farthest object.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cof_plugins.core.depth import encode
from cof_plugins.testbed.synth import COLOURS

SHAPES = ("square", "circle", "triangle", "diamond")
KINDS = ("closer", "nearest_colour", "shape", "farthest_shape")
SIZES = ((224, 168), (224, 224), (168, 224))
FAR = 255
MIN_GAP = 40  # levels between two shapes' depths, so "closer" is never a close call
MIN_VISIBLE = 0.6


@dataclass
class SceneObject:
    colour: str
    shape: str
    level: int  # depth level: 0 nearest .. 255 farthest
    box: list[int]  # pixel box of the whole shape (x1, y1, x2, y2), x2/y2 exclusive

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass
class DepthScene:
    id: str
    width: int
    height: int
    kind: str
    question: str
    answer: str
    targets: list[int]
    objects: list[SceneObject]
    image: str = ""
    depth_color: str = ""
    depth_gray: str = ""
    extra: dict = field(default_factory=dict)

    def gt_boxes(self) -> list[list[float]]:
        """Target boxes as fractions of the image, three decimals."""
        return [normalise(self.objects[i].box, self.width, self.height) for i in self.targets]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["gt_boxes"] = self.gt_boxes()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> DepthScene:
        data = {k: v for k, v in data.items() if k != "gt_boxes"}
        data["objects"] = [SceneObject(**o) for o in data["objects"]]
        return cls(**data)


def normalise(box: list[int], width: int, height: int) -> list[float]:
    x1, y1, x2, y2 = box
    return [
        round(x1 / width, 3),
        round(y1 / height, 3),
        round(x2 / width, 3),
        round(y2 / height, 3),
    ]


def _background(rng: np.random.Generator, width: int, height: int, horizon: int):
    """Wall (far) above the horizon, floor coming to level 0 at the bottom row."""
    rows = np.arange(height)
    floor = np.rint(FAR * (height - 1 - rows) / max(1, height - 1 - horizon)).astype(int)
    levels = np.where(rows < horizon, FAR, np.clip(floor, 0, FAR))
    depth = np.repeat(levels[:, None], width, axis=1).astype(np.int16)
    wall, ground = rng.integers(150, 200, 3), rng.integers(110, 160, 3)
    rgb = np.where((rows < horizon)[:, None, None], wall, ground).astype(np.int16)
    rgb = np.broadcast_to(rgb, (height, width, 3)) + rng.integers(-6, 7, (height, width, 1))
    return np.clip(rgb, 0, 255).astype(np.uint8), depth


def _mask(shape: str, box: list[int], width: int, height: int) -> np.ndarray:
    img = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(img)
    x1, y1, x2, y2 = box[0], box[1], box[2] - 1, box[3] - 1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    if shape == "square":
        draw.rectangle((x1, y1, x2, y2), fill=255)
    elif shape == "circle":
        draw.ellipse((x1, y1, x2, y2), fill=255)
    elif shape == "triangle":
        draw.polygon([(cx, y1), (x2, y2), (x1, y2)], fill=255)
    else:
        draw.polygon([(cx, y1), (x2, cy), (cx, y2), (x1, cy)], fill=255)
    return np.asarray(img) > 0


def _levels(rng: random.Random, n: int) -> list[int]:
    """n distinct depth levels in [8, 200], at least MIN_GAP apart."""
    while True:
        levels = sorted(rng.sample(range(8, 201), n))
        if all(b - a >= MIN_GAP for a, b in pairwise(levels)):
            return levels


def _place(rng: random.Random, level: int, width: int, height: int, horizon: int) -> list[int]:
    """A box standing on the floor row of ``level``; nearer shapes are larger."""
    side = int(min(width, height) * (0.34 - 0.2 * level / FAR))
    bottom = horizon + round((height - 1 - horizon) * (1 - level / FAR)) + 1
    bottom = min(height, max(bottom, side))
    x1 = rng.randint(0, width - side)
    return [x1, bottom - side, x1 + side, bottom]


def _layout(rng: random.Random, width: int, height: int, horizon: int) -> list[SceneObject]:
    n = rng.choice((2, 3, 3, 4))
    colours = rng.sample(sorted(COLOURS), n)
    return [
        SceneObject(
            colours[i], rng.choice(SHAPES), level, _place(rng, level, width, height, horizon)
        )
        for i, level in enumerate(_levels(rng, n))
    ]


def _paint(objects, rgb, depth) -> list[float]:
    """Paint far to near into both arrays; returns each object's visible fraction."""
    h, w = depth.shape
    owner = np.full((h, w), -1)
    masks = []
    for i in sorted(range(len(objects)), key=lambda k: -objects[k].level):
        obj = objects[i]
        mask = _mask(obj.shape, obj.box, w, h)
        rgb[mask] = COLOURS[obj.colour]
        depth[mask] = obj.level
        owner[mask] = i
        masks.append((i, mask))
    seen = dict.fromkeys(range(len(objects)), 0.0)
    for i, mask in masks:
        seen[i] = float((owner[mask] == i).sum()) / max(1, int(mask.sum()))
    return [seen[i] for i in range(len(objects))]


def _question(rng: random.Random, objects: list[SceneObject], kind: str):
    order = sorted(range(len(objects)), key=lambda k: objects[k].level)
    if kind == "closer":
        a, b = rng.sample(range(len(objects)), 2)
        near = min((a, b), key=lambda k: objects[k].level)
        q = f"Which is closer to the camera, the {objects[a].name} or the {objects[b].name}?"
        return q + " Answer with its colour.", objects[near].colour, sorted((a, b))
    if kind == "nearest_colour":
        q = "What colour is the object nearest to the camera?"
        return q, objects[order[0]].colour, [order[0]]
    if kind == "shape":
        i = rng.randrange(len(objects))
        return f"What shape is the {objects[i].colour} object?", objects[i].shape, [i]
    q = "What shape is the object farthest from the camera?"
    return q, objects[order[-1]].shape, [order[-1]]


def make_scene(index: int, seed: int = 0, kind: str | None = None):
    """(RGB image, depth array d in [0, 1], scene) for one index; deterministic."""
    rng = random.Random(f"sif:{seed}:{index}")
    nrng = np.random.default_rng([seed, index, 7])
    width, height = rng.choice(SIZES)
    horizon = int(height * rng.uniform(0.3, 0.45))
    kind = kind or KINDS[index % len(KINDS)]
    if kind not in KINDS:
        raise ValueError(f"unknown scene kind {kind!r}; choose from {', '.join(KINDS)}")
    for _ in range(100):
        objects = _layout(rng, width, height, horizon)
        rgb, depth = _background(nrng, width, height, horizon)
        if min(_paint(objects, rgb, depth)) >= MIN_VISIBLE:
            break
    else:
        raise RuntimeError(f"scene {seed}:{index}: no layout with every shape visible")
    question, answer, targets = _question(rng, objects, kind)
    scene = DepthScene(f"sif-{seed}-{index:05d}", width, height, kind, question, answer,
                       targets, objects)  # fmt: skip
    return Image.fromarray(rgb), depth.astype(np.float64) / FAR, scene


def write_scenes(out_dir: str | Path, n: int, seed: int = 0) -> list[DepthScene]:
    """Write images/, depth/ (``<id>_d.png`` colour, ``<id>_dgray.png`` gray) and
    scenes.jsonl under ``out_dir``; returns the scenes with their relative paths."""
    out = Path(out_dir)
    for sub in ("images", "depth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    scenes = []
    for i in range(n):
        rgb, depth, scene = make_scene(i, seed)
        scene.image = f"images/{scene.id}.png"
        scene.depth_color = f"depth/{scene.id}_d.png"
        scene.depth_gray = f"depth/{scene.id}_dgray.png"
        rgb.save(out / scene.image)
        encode(depth, "color").save(out / scene.depth_color)
        encode(depth, "gray").save(out / scene.depth_gray)
        scenes.append(scene)
    lines = "".join(json.dumps(s.to_dict()) + "\n" for s in scenes)
    (out / "scenes.jsonl").write_text(lines, encoding="utf-8")
    return scenes


def read_scenes(path: str | Path) -> list[DepthScene]:
    text = Path(path).read_text(encoding="utf-8")
    return [DepthScene.from_dict(json.loads(line)) for line in text.splitlines() if line.strip()]
