"""When a synthetic trajectory zooms, and where: the adaptive part of Adaptive-CoF data.

The rule, measured on the FRAME (the image the model sees), never on the original file:

1. the target is *legible* when the short side of its box is at least ``legible_side``
   frame pixels (28 by default: one vision token after the 2x2 merge) -> answer directly;
2. otherwise call the zoom tool once on the target region grown ``context`` times about its
   centre (some surroundings help locate it);
3. if, in the crop that call returns (geometry from ``core.zoom.plan_zoom``: 1.5x enlarge,
   2x upscale, smart resize), the target would still be under ``legible_side`` pixels, call
   again on a tighter box (``tight_context``), still on the frame (CoF never crops a crop);
4. answer after at most ``max_zooms`` calls.

``box_grid`` (frame pixels, 0 = off) snaps every call box outwards to that grid, e.g. 28: the
vision-token grid after the 2x2 merge. Boxes then take few values, which a tiny model can learn
to write in minutes (the quickstart's tiny default); the box still contains its target.

So the same annotation zooms at 224 px and answers directly at 4K: the mix follows the
resolution, which is what the adaptive policy is meant to learn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cof_plugins.core.zoom import ZoomConfig, plan_zoom

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class PolicyConfig:
    legible_side: float = 28.0
    context: float = 3.0
    tight_context: float = 1.3
    max_zooms: int = 2
    box_grid: int = 0

    def __post_init__(self) -> None:
        if not self.legible_side > 0:
            raise ValueError(f"legible_side must be > 0 frame pixels, got {self.legible_side}")
        if not self.context >= self.tight_context >= 1.0:
            raise ValueError(
                "need context >= tight_context >= 1 (a zoom box must contain its target), got "
                f"context={self.context}, tight_context={self.tight_context}"
            )
        if self.max_zooms not in (0, 1, 2, 3):
            raise ValueError(f"max_zooms must be 0..3, got {self.max_zooms}")
        if not 0 <= self.box_grid <= 1024:
            raise ValueError(f"box_grid must be 0 (off) to 1024 frame pixels, got {self.box_grid}")


def to_frame(box: Sequence[float], original: tuple[int, int], frame: tuple[int, int]) -> Box:
    """An original-pixel box in frame pixels (the frame is the original, resized)."""
    sx, sy = frame[0] / original[0], frame[1] / original[1]
    return box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy


def short_side(boxes: Sequence[Sequence[float]], sx: float = 1.0, sy: float = 1.0) -> float:
    """The smallest short side among ``boxes`` after scaling by (sx, sy)."""
    return min(min((b[2] - b[0]) * sx, (b[3] - b[1]) * sy) for b in boxes)


def union(boxes: Sequence[Sequence[float]]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def call_box(region: Sequence[float], scale: float, frame: tuple[int, int], grid: int = 0) -> Box:
    """``region`` grown ``scale`` times about its centre, snapped outwards (to multiples of
    ``grid`` pixels when given, else to whole pixels), clipped to the frame."""
    step = max(1, grid)
    cx, cy = (region[0] + region[2]) / 2, (region[1] + region[3]) / 2
    hw, hh = (region[2] - region[0]) * scale / 2, (region[3] - region[1]) * scale / 2
    x1, y1 = (max(0, math.floor(v / step) * step) for v in (cx - hw, cy - hh))
    x2 = min(frame[0], math.ceil((cx + hw) / step) * step)
    y2 = min(frame[1], math.ceil((cy + hh) / step) * step)
    return float(x1), float(y1), float(x2), float(y2)


def side_in_crop(
    boxes: Sequence[Sequence[float]], call: Box, frame: tuple[int, int], zoom: ZoomConfig
) -> float:
    """The targets' smallest short side, in pixels of the crop that ``call`` returns."""
    plan = plan_zoom(frame, frame, call, zoom)
    ex1, ey1, ex2, ey2 = plan.enlarged_box
    return short_side(boxes, plan.size[0] / (ex2 - ex1), plan.size[1] / (ey2 - ey1))


def legible(boxes: Sequence[Sequence[float]], policy: PolicyConfig = PolicyConfig()) -> bool:
    """Rule 1: every target's short side reaches ``policy.legible_side`` frame pixels.

    The one test of legibility: ``plan_zooms`` answers directly exactly when it holds, and
    evaluation splits its rates by it (``eval.adaptive``), so both agree by construction.
    """
    return bool(boxes) and short_side(boxes) >= policy.legible_side


def plan_zooms(
    boxes: Sequence[Sequence[float]],
    frame: tuple[int, int],
    zoom: ZoomConfig,
    policy: PolicyConfig = PolicyConfig(),
    context: float | None = None,
) -> list[Box]:
    """The zoom calls (frame pixels) a trajectory makes for targets ``boxes`` (frame pixels).

    ``context`` overrides ``policy.context`` (the synthesizer jitters it by seed). An empty
    list means: answer directly.
    """
    if not boxes or legible(boxes, policy) or policy.max_zooms == 0:
        return []
    region = union(boxes)
    calls = [call_box(region, context or policy.context, frame, policy.box_grid)]
    while len(calls) < policy.max_zooms:
        if side_in_crop(boxes, calls[-1], frame, zoom) >= policy.legible_side:
            break
        scale = max(policy.tight_context, 1.0) ** (1 / (len(calls)))
        tighter = call_box(region, scale, frame, policy.box_grid)
        if _area(tighter) >= _area(calls[-1]):
            break
        calls.append(tighter)
    return calls


def _area(box: Box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])
