"""Chain-of-Spot: its two-turn protocol, box frames, the ROI reply parser and the crop.

Chain-of-Spot (Dong et al., 2024; release ``dongyh20/Chain-of-Spot``) asks a VLM twice per
question. Turn 1: the image and a request for the question's region of interest (ROI); the
model replies with a box. Turn 2: the ROI cut out of the image as a second image with the
question; the model answers from the crop and the whole image. Both replies are trained
(SFT only). Plain Python over PIL, like the rest of ``core``; the prompts live in the
``chain-of-spot`` protocol presets (``extra`` keys), read through ``load_cos_protocol``.

Decisions, where the release is silent or contradicts itself:

- **Box frames.** ``padded`` (the release's, preset ``chain-of-spot``): the image is padded
  to a square of side ``max(w, h)``, centred, with CLIP's mean colour (LLaVA's
  ``expand2square``); the box is ``[x1, y1, x2, y2]`` as fractions of that side, each
  ``round(v, decimals)`` and written as Python's ``str`` of the list (``0.5``, not ``0.500``).
  ``native`` (preset ``chain-of-spot-native``): the family's own convention
  (``FamilySpec.coords``) in the frame the model sees: absolute frame pixels for Qwen2.5-VL,
  0-1000 for Qwen2-VL and Qwen3-VL. Qwen pads nothing, so this frame needs no padding.
- **The crop** (what the model sees as the 2nd image, in training and at evaluation alike):
  ``padded`` cuts it from the padded square and pads it to a square again (the release);
  ``native`` cuts it from the image and grows it to at least ``min_side`` pixels a side (28,
  one Qwen patch group) so every processor accepts it. Crops come from the original at full
  resolution; the processor then sizes them like any image.
- **Reading a reply** (evaluation): exactly ``[a, b, c, d]`` with plain decimal numbers and
  nothing else but surrounding white space (the release's parser is as strict). The release
  does not clamp (PIL fills outside with black); here a box is clamped to its frame, and a box
  with x2 <= x1 or y2 <= y1, or one that covers no pixel of the image itself (outside it, or
  only on the padding), is unusable. Every unusable reply falls back to the whole image as the
  "crop", as the release does, and is counted by its problem.
- **ROI from a known box** (``RoiShape``): the release mined ROIs from relevance maps with
  thresholds and box fitting it never published. Here the target box grows by ``margin``
  times its longer side on every side into a square, at least ``min_side`` of the padded
  side, moved (never shrunk) to lie inside the image where it fits and centred on the image
  where it does not, so it may reach into the padding like the release's squares. The native
  frame writes the same square clipped to the image.
- **Wording.** Written here, one for training and evaluation (the release asks "where" in
  training and "what" at evaluation); the ROI request quotes the bare question, the answer
  turn the question with its options and answer wrapper.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from cof_plugins.core.coords import from_frame_pixels, to_frame_pixels
from cof_plugins.core.frame import PixelBudget, frame_size, get_family
from cof_plugins.core.protocol import (
    IMAGE_PLACEHOLDER,
    Protocol,
    ProtocolError,
    check_template,
    load_protocol,
)

METHOD = "chain-of-spot"
DEFAULT_PROTOCOL = "chain-of-spot"
BOX_FRAMES = ("padded", "native")
# CLIP's image mean x 255 as ints: LLaVA-1.5's padding colour (expand2square).
PAD_RGB = (122, 116, 104)
# Longer replies are not a box; the cap keeps parsing O(1) on runaway generations.
MAX_REPLY_CHARS = 256
_NUMBER = r"-?[0-9]+(?:\.[0-9]+)?"
_ROI = re.compile(r"\[\s*({n})\s*,\s*({n})\s*,\s*({n})\s*,\s*({n})\s*\]".replace("{n}", _NUMBER))

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class CosProtocol:
    """A Chain-of-Spot protocol: the shared question text plus its own ``extra`` keys."""

    protocol: Protocol
    roi_request: str
    crop_turn: str
    other_rounds: str
    box_frame: str
    decimals: int

    def roi_turn(self, question: str) -> str:
        """Turn 1's user text: the image, then the ROI request for the bare question."""
        return IMAGE_PLACEHOLDER + "\n" + self.roi_request.format(question=question.strip())

    def answer_turn(self, question: str, options: Any = None, kind: str | None = None) -> str:
        """Turn 2's user text: the crop, then the question with options and wrapper."""
        text = self.protocol.question_text(question, options, kind)
        return IMAGE_PLACEHOLDER + "\n" + self.crop_turn.format(question=text)

    def plain_turn(
        self, question: str, options: Any = None, kind: str | None = None, *, first: bool = False
    ) -> str:
        """A further question about the same image, answered from the whole image."""
        text = self.protocol.question_text(question, options, kind)
        return f"{self.other_rounds}\n{text}" if first and self.other_rounds else text

    def system_messages(self) -> list[dict[str, str]]:
        system = self.protocol.system
        return [{"role": "system", "content": system}] if system else []


def load_cos_protocol(spec: str | os.PathLike = DEFAULT_PROTOCOL) -> CosProtocol:
    """A preset name or YAML file with Chain-of-Spot's ``extra`` keys, checked."""
    proto = load_protocol(spec)
    where = proto.source or str(spec)
    if proto.method != METHOD:
        raise ProtocolError(
            f"{where}: protocol {proto.name!r} is for method {proto.method!r}, not {METHOD}; "
            "use chain-of-spot, chain-of-spot-native or a file inheriting one of them"
        )
    extra = proto.extra
    for key in ("roi_request", "crop_turn"):
        if not isinstance(extra.get(key), str):
            raise ProtocolError(f"{where}: key 'extra.{key}' (text holding {{question}}) missing")
        check_template(extra[key], f"extra.{key}", "question", where)  # type: ignore[arg-type]
    frame = extra.get("box_frame", "padded")
    if frame not in BOX_FRAMES:
        raise ProtocolError(
            f"{where}: key 'extra.box_frame' is {frame!r}; use one of {', '.join(BOX_FRAMES)}"
        )
    decimals = extra.get("decimals", 3)
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 1 <= decimals <= 6:
        raise ProtocolError(f"{where}: key 'extra.decimals' must be a whole number 1-6")
    other = extra.get("other_rounds", "")
    if not isinstance(other, str):
        raise ProtocolError(f"{where}: key 'extra.other_rounds' must be text")
    return CosProtocol(proto, extra["roi_request"], extra["crop_turn"], other, frame, decimals)


# ---------------------------------------------------------------- geometry


def padded_square(size: tuple[int, int]) -> tuple[int, int, int]:
    """(side, x offset, y offset) of the image centred in its padded square (expand2square)."""
    w, h = size
    side = max(w, h)
    return side, (side - w) // 2, (side - h) // 2


def expand_to_square(image: Image.Image, fill: tuple[int, int, int] = PAD_RGB) -> Image.Image:
    """LLaVA's ``expand2square``: the image centred on a square of its longer side."""
    side, ox, oy = padded_square(image.size)
    if image.size == (side, side):
        return image
    square = Image.new("RGB", (side, side), fill)
    square.paste(image.convert("RGB"), (ox, oy))
    return square


@dataclass(frozen=True)
class RoiShape:
    """How a known target box grows into the ROI (see the module docstring)."""

    margin: float = 0.5  # added on every side, times the box's longer side
    min_side: float = 0.25  # least side, as a fraction of the padded square's side

    def __post_init__(self) -> None:
        if not (self.margin >= 0 and 0 <= self.min_side <= 1):
            raise ValueError(
                f"ROI shape needs margin >= 0 and 0 <= min_side <= 1, got margin="
                f"{self.margin}, min_side={self.min_side}"
            )


def roi_from_box(bbox: Box, size: tuple[int, int], shape: RoiShape = RoiShape()) -> Box:
    """The ROI square (original pixels; it may reach into the padding) around ``bbox``."""
    x1, y1, x2, y2 = bbox
    side_max, _, _ = padded_square(size)
    longer = max(x2 - x1, y2 - y1)
    side = min(max(longer * (1 + 2 * shape.margin), shape.min_side * side_max), side_max)
    x = _place(x1 + x2, side, size[0], side_max)
    y = _place(y1 + y2, side, size[1], side_max)
    return x, y, x + side, y + side


def _place(twice_centre: float, side: float, extent: int, side_max: int) -> float:
    """Start of a segment of ``side`` around a centre: inside [0, extent] when it fits, else
    centred on the image, always inside the padded square."""
    if side <= extent:
        return min(max(twice_centre / 2 - side / 2, 0.0), extent - side)
    pad = (side_max - extent) // 2
    return min(max((extent - side) / 2, -pad), side_max - pad - side)


def box_iou(a: Box, b: Box) -> float:
    inter = _intersection(a, b)
    union = _area(a) + _area(b) - inter
    return inter / union if union > 0 else 0.0


def overlaps(a: Box, b: Box) -> bool:
    """True when the boxes share some area (touching edges do not count)."""
    return _intersection(a, b) > 0


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _intersection(a: Box, b: Box) -> float:
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


# ---------------------------------------------------------------- box frames


@dataclass(frozen=True)
class RoiReply:
    """A parsed turn-1 reply: ``values`` when it is exactly ``[a, b, c, d]``."""

    values: Box | None
    problem: str | None = None  # "unparsable" when values is None


def parse_roi(text: object) -> RoiReply:
    """Read ``[a, b, c, d]`` (plain decimals, white space around); never raises, O(len)."""
    if not isinstance(text, str) or len(text) > MAX_REPLY_CHARS:
        return RoiReply(None, "unparsable")
    match = _ROI.fullmatch(text.strip())
    if match is None:
        return RoiReply(None, "unparsable")
    return RoiReply(tuple(float(v) for v in match.groups()))  # type: ignore[arg-type]


@dataclass(frozen=True)
class RoiFrame:
    """Where an ROI's numbers live for one image (original ``size``), and how to crop it."""

    kind: str  # a BOX_FRAMES name
    size: tuple[int, int]
    family: str = "qwen2_5_vl"
    budget: PixelBudget = field(default_factory=PixelBudget)
    decimals: int = 3
    min_side: int = 28  # native crops: least side in pixels

    def __post_init__(self) -> None:
        if self.kind not in BOX_FRAMES:
            raise ValueError(f"unknown box frame {self.kind!r}; use one of {BOX_FRAMES}")
        get_family(self.family)

    @classmethod
    def of(cls, cos: CosProtocol, size: tuple[int, int], family: str, budget: PixelBudget):
        return cls(cos.box_frame, tuple(size), family, budget, cos.decimals)  # type: ignore[arg-type]

    @property
    def frame(self) -> tuple[int, int]:
        """The frame the model sees (native boxes are written in it)."""
        return frame_size(self.size, self.family, self.budget)

    def write(self, roi: Box) -> str:
        """The turn-1 reply for an ROI given in original pixels."""
        if self.kind == "padded":
            side, ox, oy = padded_square(self.size)
            x1, y1, x2, y2 = roi
            values = [(x1 + ox) / side, (y1 + oy) / side, (x2 + ox) / side, (y2 + oy) / side]
            return str([round(min(max(v, 0.0), 1.0), self.decimals) for v in values])
        w, h = self.size
        fw, fh = self.frame
        clipped = _clip(roi, (0, 0, w, h))
        in_frame = (
            clipped[0] * fw / w,
            clipped[1] * fh / h,
            clipped[2] * fw / w,
            clipped[3] * fh / h,
        )
        x1, y1, x2, y2 = from_frame_pixels(in_frame, get_family(self.family).coords, (fw, fh))
        step = 1 if float(x1).is_integer() else 10**-4  # keep a box rounding made empty
        values = (x1, y1, max(x2, x1 + step), max(y2, y1 + step))
        return "[" + ", ".join(_number(v) for v in values) + "]"

    def read(self, values: Box) -> tuple[Box | None, str | None]:
        """(ROI in original pixels, None), or (None, problem) for an unusable box."""
        x1, y1, x2, y2 = values
        if not (x2 > x1 and y2 > y1):
            return None, "degenerate"
        w, h = self.size
        if self.kind == "padded":
            side, ox, oy = padded_square(self.size)
            box = _clip(values, (0.0, 0.0, 1.0, 1.0))
            roi = (box[0] * side - ox, box[1] * side - oy, box[2] * side - ox, box[3] * side - oy)
        else:
            fw, fh = self.frame
            box = to_frame_pixels(values, get_family(self.family).coords, (fw, fh))
            box = _clip(box, (0, 0, fw, fh))
            roi = (box[0] * w / fw, box[1] * h / fh, box[2] * w / fw, box[3] * h / fh)
        if _area(_clip(roi, (0, 0, w, h))) <= 0:
            return None, "outside"
        return roi, None

    def crop(self, image: Image.Image, roi: Box) -> Image.Image:
        """The 2nd image: the ROI cut from the padded square (re-padded) or from the image."""
        image = image.convert("RGB")
        if self.kind == "padded":
            side, ox, oy = padded_square(image.size)
            box = _outward((roi[0] + ox, roi[1] + oy, roi[2] + ox, roi[3] + oy), side, side)
            return expand_to_square(expand_to_square(image).crop(box))
        w, h = image.size
        x1, y1, x2, y2 = _outward(roi, w, h)
        x1, x2 = _grow(x1, x2, self.min_side, w)
        y1, y2 = _grow(y1, y2, self.min_side, h)
        return image.crop((x1, y1, x2, y2))


def _clip(box: Box, bounds: Box) -> Box:
    return (
        max(box[0], bounds[0]),
        max(box[1], bounds[1]),
        min(box[2], bounds[2]),
        min(box[3], bounds[3]),
    )


def _outward(box: Box, w: int, h: int) -> tuple[int, int, int, int]:
    """Whole pixels covering ``box``, inside [0, w] x [0, h], at least one pixel a side."""
    x1 = min(max(math.floor(box[0]), 0), w - 1)
    y1 = min(max(math.floor(box[1]), 0), h - 1)
    return x1, y1, max(min(math.ceil(box[2]), w), x1 + 1), max(min(math.ceil(box[3]), h), y1 + 1)


def _grow(low: int, high: int, least: int, extent: int) -> tuple[int, int]:
    """Widen [low, high) about its centre to ``least`` pixels, staying inside [0, extent)."""
    need = min(least, extent) - (high - low)
    if need <= 0:
        return low, high
    low = max(0, low - need // 2)
    high = low + min(least, extent)
    if high > extent:
        low, high = extent - min(least, extent), extent
    return low, high


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
