"""Check a box the model wrote against the frame; never raises for anything the model wrote.

Bad boxes are model output, not programming errors: they come back as a message saying what
is wrong and how to fix it. A bad frame size comes from our own code and does raise.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class BoxCheck:
    """Outcome of checking a model's box: ``box`` when usable, else ``message`` says why.

    A clamped box is usable and still carries a message saying what was clipped.
    """

    box: Box | None
    message: str = ""
    clamped: bool = False

    @property
    def ok(self) -> bool:
        return self.box is not None


def validate_box(box: object, frame_size: tuple[int, int], *, clamp: bool = False) -> BoxCheck:
    """Check a box in absolute frame pixels; never raises for anything the model wrote."""
    w, h = check_frame(frame_size)
    hint = (
        f"Give bbox_2d as [x1, y1, x2, y2]: four numbers with the top-left corner first, "
        f"inside the {w}x{h} image (0 <= x <= {w}, 0 <= y <= {h})."
    )
    values, problem = _four_numbers(box)
    if values is None:
        return BoxCheck(None, f"{problem} {hint}")
    problem = _order_problem(box, values)  # type: ignore[arg-type]
    if problem:
        return BoxCheck(None, f"{problem} {hint}")
    if not clamp:
        problem = _bounds_problem(box, values, w, h)  # type: ignore[arg-type]
        return BoxCheck(None, f"{problem} {hint}") if problem else BoxCheck(values)
    return _clip(box, values, w, h, hint)  # type: ignore[arg-type]


def _clip(box: object, values: Box, w: int, h: int, hint: str) -> BoxCheck:
    x1, y1, x2, y2 = values
    clipped = (min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(max(x2, 0.0), w), min(y2, h))
    clipped = (*clipped[:3], max(clipped[3], 0.0))
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        where = f"lies entirely outside the {w}x{h} image."
        return BoxCheck(None, f"bbox_2d {show_box(box)} {where} {hint}")
    if clipped == values:
        return BoxCheck(values)
    note = f"bbox_2d {show_box(box)} was clipped to {show_box(clipped)} to fit the {w}x{h} image."
    return BoxCheck(clipped, note, clamped=True)


def check_frame(frame_size: tuple[int, int]) -> tuple[int, int]:
    """The frame comes from our code, not the model, so a bad one is a bug and raises."""
    try:
        w, h = frame_size
    except (TypeError, ValueError):
        raise ValueError(f"frame_size must be (width, height), got {frame_size!r}") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h)):
        raise ValueError(f"frame_size must be two positive integers, got {frame_size!r}")
    return w, h


def _four_numbers(box: object) -> tuple[Box | None, str]:
    if not isinstance(box, list | tuple):
        return None, f"bbox_2d must be a list of four numbers, got {show_box(box)}."
    if len(box) != 4:
        return None, f"bbox_2d {show_box(box)} has {len(box)} values; it needs exactly 4."
    out = []
    for i, v in enumerate(box, start=1):  # the box is shown only when something is wrong
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            return (
                None,
                f"bbox_2d {show_box(box)} has a non-number at position {i}: {show_value(v)}.",
            )
        try:
            f = float(v)
        except (OverflowError, ValueError):
            return None, f"bbox_2d {show_box(box)} has a number too large to use at position {i}."
        if not math.isfinite(f):
            value = show_value(v)
            return (
                None,
                f"bbox_2d {show_box(box)} has {value} at position {i}, not a finite number.",
            )
        out.append(f)
    return (out[0], out[1], out[2], out[3]), ""


def _order_problem(box: object, values: Box) -> str:
    x1, y1, x2, y2 = values
    for lo, hi, a, b, size in ((x1, x2, "x1", "x2", "width"), (y1, y2, "y1", "y2", "height")):
        if hi < lo:
            return (
                f"bbox_2d {show_box(box)} is inverted: {b} ({show_value(hi)}) must be greater "
                f"than {a} ({show_value(lo)})."
            )
        if hi == lo:
            both = show_value(lo)
            return f"bbox_2d {show_box(box)} has zero {size}: {a} and {b} are both {both}."
    return ""


def _bounds_problem(box: object, values: Box, w: int, h: int) -> str:
    x1, y1, x2, y2 = values
    if x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h:
        return ""
    where = f"bbox_2d {show_box(box)} lies outside the {w}x{h} image:"
    for name, v in (("x1", x1), ("y1", y1)):
        if v < 0:
            return f"{where} {name} ({show_value(v)}) is negative."
    for name, v, limit, size in (("x2", x2, w, "width"), ("y2", y2, h, "height")):
        if v > limit:
            return f"{where} {name} ({show_value(v)}) exceeds the image {size} {limit}."
    return ""


def show_value(v: object) -> str:
    """Short, safe text for one value; huge ints and long strings are abbreviated."""
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        try:
            f = float(v)
        except (OverflowError, ValueError):
            return "<huge number>"
        text = str(int(f)) if f.is_integer() and abs(f) < 1e15 else f"{f:g}"
    else:
        try:
            text = repr(v)
        except Exception:  # a hostile __repr__ must not take the tool down
            text = f"<{type(v).__name__}>"
    return text if len(text) <= 24 else text[:21] + "..."


def show_box(box: object) -> str:
    if isinstance(box, list | tuple):
        text = "[" + ", ".join(show_value(v) for v in box[:8]) + (", ...]" if len(box) > 8 else "]")
    else:
        text = show_value(box)
    return text if len(text) <= 120 else text[:117] + "..."
