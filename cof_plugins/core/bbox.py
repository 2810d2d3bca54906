"""A box in a tool call's arguments, read as 4 finite numbers or a reason for the model.

Part of the tool-call parser (``core.parser`` re-exports ``extract_bbox`` and ``BOX_KEYS``),
kept apart because numbers from model text need care of their own: a 400-digit integer
overflows a float, "1e999" reads as infinity, and the ``repr`` of a huge value would drown
the message (or raise). Every reading here is bounded: a box written as text or as a list
longer than ``_MAX_BOX_LENGTH`` is not read at all.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Mapping
from typing import Any

# Keys read as the box, in priority order; the first present wins.
BOX_KEYS = ("bbox_2d", "bbox", "box")
_MAX_BOX_LENGTH = 256  # characters of a box written as text, or items of a box list
_BOX_SPLIT = re.compile(r"[\s,;]+")
_SNIPPET = 160


def extract_bbox(arguments: Mapping[str, Any]) -> tuple[list[float] | None, str | None]:
    """Normalise the box in ``arguments`` to 4 floats, or return a model-facing reason.

    Reads ``bbox_2d`` (aliases ``bbox``, ``box``) given as a list, a string "[x1,y1,x2,y2]"
    or "x1,y1,x2,y2", nested [[x1,y1],[x2,y2]] or [[x1,y1,x2,y2]], numbers or numeric
    strings. Range checks against the frame belong to the zoom tool, not here.
    """
    key = next((k for k in BOX_KEYS if k in arguments), None)
    if key is None:
        return None, "no bbox_2d argument"
    values = _flatten_box(arguments[key])
    if values is None:
        return None, f"a {key} that is not a list of 4 numbers (got {show(arguments[key])})"
    if len(values) != 4:
        return None, f"a {key} with {len(values)} values instead of 4 (x1, y1, x2, y2)"
    numbers = [_number(v) for v in values]
    if any(n is None for n in numbers):
        return None, f"a {key} with a value that is not a number (got {show(values)})"
    huge = next((v for v in values if _too_large(v)), None)
    if huge is not None:
        return None, f"a {key} with a value too large to be a coordinate (got {_digits(huge)})"
    if not all(math.isfinite(n) for n in numbers):  # type: ignore[arg-type]
        return None, f"a {key} with a value that is not finite (got {show(values)})"
    return numbers, None  # type: ignore[return-value]


def _flatten_box(value: Any) -> list | None:
    """The box's values, one level of nesting removed; None for what cannot be a box
    (including a text or list far longer than four numbers need)."""
    if isinstance(value, str | list | tuple) and len(value) > _MAX_BOX_LENGTH:
        return None
    if isinstance(value, str):
        text = value.strip().replace("[", " ").replace("]", " ").replace("(", " ")
        parts = _BOX_SPLIT.split(text.replace(")", " ").strip())
        return [p for p in parts if p]
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, list | tuple) for v in value):
            return [x for v in value for x in v]
        return list(value)
    return None


_INFINITE_WORDS = ("inf", "infinity", "nan")


def _number(value: Any) -> float | None:
    """A float, ``inf`` for a number beyond any float, or None for what is no number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:  # a 400-digit integer
            return math.inf
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _too_large(value: Any) -> bool:
    """A finite number that no float holds: a 400-digit integer, or "1e999" as text."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return math.isinf(_number(value))  # type: ignore[arg-type]
    if not isinstance(value, str):
        return False
    number = _number(value)
    return number is not None and math.isinf(number) and not _named_infinity(value)


def _named_infinity(text: str) -> bool:
    return text.strip().lstrip("+-").lower() in _INFINITE_WORDS


def _digits(value: Any) -> str:
    """A huge number described by its length: its digits would drown the message."""
    text = value.strip().lstrip("+-") if isinstance(value, str) else None
    if text is None:
        try:
            text = str(abs(value))
        except ValueError:  # more digits than Python will print
            return "a number with thousands of digits"
    return f"a {len(text)}-digit number" if text.isdigit() else f"{snip(text)!r}"


_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxlong, _REPR.maxother = _SNIPPET, 40, 40
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = 8


def show(value: Any) -> str:
    """A short ``repr`` whose cost does not grow with the value; never fails."""
    try:
        return snip(_REPR.repr(value))
    except (ValueError, RecursionError):  # an int with more digits than Python prints
        return f"an unprintable {type(value).__name__}"


def snip(text: str) -> str:
    """``text`` cut to a length a message can quote."""
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "..."
