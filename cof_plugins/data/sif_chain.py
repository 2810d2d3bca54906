"""SIFThinker's reverse-expansion chains: from a target box back out to the full image.

The release builds each training reply backwards from the ground-truth box and then reads
it forwards. What is kept here (its data_generation/produce.py and bbox_adjust.py, as
summarised in this project's notes, re-implemented):

1. **expansions**: every target box is enlarged about its centre (``expand`` per step,
   clipped to the image); overlapping boxes are merged into their bounding box; repeated
   until one box covers the whole image. The steps are recorded; the FIRST expansion is the
   chain's "wider" area;
2. **distractor** (with probability 1/2): the target's bounding box enlarged 1.2x, scaled by
   a factor in [0.7, 1.3], moved to a random place where its IoU with every target box is
   below 0.001; skipped when no such place is found;
3. **the chain**, read forwards: full image -> (distractor) -> wider -> targets. Every box
   carries its mean depth (``core.depth.BoxMeans``), three decimals.

``decimals`` (3, the format's maximum, by default) rounds every box outwards (x1, y1 down,
x2, y2 up, so a box never shrinks off its target or collapses) and every depth to fewer
decimals: the tiny quickstart model learns two-decimal numbers far faster.

The release's reasoning text came from an external MLLM given the image, the chain and
the ground-truth answer; here each step gets a TEMPLATE sentence (``step_text``), so the
data teaches the format and the geometry, not rich descriptions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from cof_plugins.core.depth import BoxMeans
from cof_plugins.core.sif import format_area, format_reply, number
from cof_plugins.rewards.geometry import FULL_IMAGE, iou

Box = tuple[float, float, float, float]
ROLES = ("full", "distractor", "wider", "target")


@dataclass(frozen=True)
class ChainConfig:
    expand: float = 1.6
    distractor_rate: float = 0.5
    distractor_expand: float = 1.2
    distractor_scale: tuple[float, float] = (0.7, 1.3)
    distractor_max_iou: float = 0.001
    max_steps: int = 50
    decimals: int = 3

    def __post_init__(self) -> None:
        if self.decimals not in (1, 2, 3):
            raise ValueError(f"decimals must be 1, 2 or 3 (at most 3), got {self.decimals}")
        if not self.expand > 1:
            raise ValueError(f"expand must be > 1, got {self.expand}")
        if not 0 <= self.distractor_rate <= 1:
            raise ValueError(f"distractor_rate must be in [0, 1], got {self.distractor_rate}")


@dataclass(frozen=True)
class Step:
    role: str
    boxes: tuple[Box, ...]
    depths: tuple[float, ...]


def expand(box: Sequence[float], factor: float) -> Box:
    """``box`` scaled by ``factor`` about its centre, clipped to [0, 1]."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hw, hh = (box[2] - box[0]) * factor / 2, (box[3] - box[1]) * factor / 2
    return (max(0.0, cx - hw), max(0.0, cy - hh), min(1.0, cx + hw), min(1.0, cy + hh))


def _overlap(a: Box, b: Box) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def merge_overlaps(boxes: Sequence[Box]) -> list[Box]:
    """Merge overlapping boxes into their bounding box until no two overlap."""
    out = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                if _overlap(out[i], out[j]):
                    a, b = out[i], out.pop(j)
                    out[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    merged = True
                    break
            if merged:
                break
    return out


def _is_full(boxes: Sequence[Box]) -> bool:
    return len(boxes) == 1 and tuple(boxes[0]) == FULL_IMAGE


def expansions(targets: Sequence[Box], cfg: ChainConfig) -> list[list[Box]]:
    """Every expansion step from the targets to the full image (the last step)."""
    steps: list[list[Box]] = []
    current = [tuple(map(float, b)) for b in targets]
    for _ in range(cfg.max_steps):
        current = merge_overlaps([_snap(expand(b, cfg.expand), cfg.decimals) for b in current])
        steps.append(current)
        if _is_full(current):
            return steps
    steps.append([FULL_IMAGE])
    return steps


def _snap(box: Sequence[float], decimals: int = 3) -> Box:
    """Round outwards to ``decimals`` (the reply's numbers), clipped to [0, 1]."""
    scale = 10**decimals
    down = [max(0.0, math.floor(v * scale + 1e-6) / scale) for v in box[:2]]
    up = [min(1.0, math.ceil(v * scale - 1e-6) / scale) for v in box[2:]]
    return tuple(number(v) for v in (*down, *up))  # type: ignore[return-value]


def distractor(targets: Sequence[Box], rng: random.Random, cfg: ChainConfig) -> Box | None:
    """A box the size of the (enlarged) target set that overlaps none of the targets."""
    x1 = min(b[0] for b in targets)
    y1 = min(b[1] for b in targets)
    x2 = max(b[2] for b in targets)
    y2 = max(b[3] for b in targets)
    base = expand((x1, y1, x2, y2), cfg.distractor_expand)
    scale = rng.uniform(*cfg.distractor_scale)
    w = min(1.0, (base[2] - base[0]) * scale)
    h = min(1.0, (base[3] - base[1]) * scale)
    for _ in range(100):
        left, top = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
        box = _snap((left, top, left + w, top + h), cfg.decimals)
        usable = box[2] > box[0] and box[3] > box[1]
        if usable and all(iou(box, t) < cfg.distractor_max_iou for t in targets):
            return box
    return None


def build_chain(
    targets: Sequence[Box], means: BoxMeans, rng: random.Random, cfg: ChainConfig = ChainConfig()
) -> tuple[list[Step], list[list[Box]]]:
    """The forward chain (full -> distractor? -> wider -> targets) and all expansion steps."""
    targets = [_snap(tuple(map(float, b)), cfg.decimals) for b in targets]
    steps = expansions(targets, cfg)
    roles: list[tuple[str, list[Box]]] = [("full", [FULL_IMAGE])]
    if rng.random() < cfg.distractor_rate and (extra := distractor(targets, rng, cfg)):
        roles.append(("distractor", [extra]))
    if not _is_full(steps[0]):
        roles.append(("wider", steps[0]))
    roles.append(("target", targets))
    chain = [
        Step(role, tuple(boxes), tuple(round(means.mean(b), cfg.decimals) + 0.0 for b in boxes))
        for role, boxes in roles
    ]
    return chain, steps


def _depths(depths: Sequence[float]) -> str:
    return " and ".join(str(d) for d in depths)


def step_text(step: Step, subject: str, answer: str) -> str:
    """The template sentence of one step (the release had an MLLM write these)."""
    d = _depths(step.depths)
    if step.role == "full":
        return f"The whole image, depth {d}: I look for {subject}."
    if step.role == "distractor":
        return f"This region, depth {d}, does not show {subject}."
    if step.role == "wider":
        verb = "are" if " and " in subject else "is"
        return f"{subject[:1].upper()}{subject[1:]} {verb} in this region, depth {d}."
    return f"Here is {subject}, depth {d}. The answer is {answer}."


def chain_reply(chain: Sequence[Step], subject: str, answer: str) -> str:
    """The whole assistant reply for a chain."""
    steps = [
        (format_area(list(zip(s.boxes, s.depths, strict=True))), step_text(s, subject, answer))
        for s in chain
    ]
    return format_reply(steps, answer)
