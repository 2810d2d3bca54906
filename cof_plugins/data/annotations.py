"""Grounded and benchmark annotations: one question about one image, as plain records.

Accepted input (JSONL or a JSON list), one object per question::

    {"id": "q1",                       # optional; defaults to the row index
     "image": "images/a.png",          # relative to the annotation file's folder, or absolute
     "question": "What colour is ...?",
     "options": ["red", "blue"],       # optional; also {"A": "red", ...} or "(A) red" texts
     "answer": "B",                    # a letter when options exist (or the option's text)
     "bbox": [x1, y1, x2, y2],         # target box in ORIGINAL pixels (synthesis needs it)
     "extra_boxes": [[...]],           # optional: other objects the question needs
     "kind": "colour", "category": "direct_attributes", "label": "the red sign",
     "data_source": "vstar"}           # optional

``testbed.synth`` writes exactly this; ``cof data prepare`` writes it for RL and benchmark
sets; ``cof data to-parquet`` and ``cof data synthesize`` read it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from cof_plugins.core.options import OptionsError, strip_labels
from cof_plugins.core.options import answer_letter as options_answer_letter
from cof_plugins.core.protocol import letters

ANSWER_KINDS = ("multiple_choice", "open", "math")


class AnnotationError(ValueError):
    """One unusable annotation; the message starts with ``row N:``."""


@dataclass
class Annotation:
    index: int
    id: str
    image: str
    question: str
    options: list[str]
    answer: str  # the option letter for multiple choice, else the answer text
    answer_text: str
    kind: str  # answer kind: multiple_choice | open | math
    category: str = ""
    task: str = ""  # the annotation's own kind (colour, text, relative_position, ...)
    bbox: list[float] | None = None
    extra_boxes: list[list[float]] = field(default_factory=list)
    label: str | None = None
    data_source: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("index")
        return out


def normalize_options(options: Any, index: int) -> list[str]:
    """Option texts without their own labels (``core.options``, the one options parser)."""
    if options is None or options == "":
        return []
    if isinstance(options, Mapping):
        return [str(options[k]).strip() for k in sorted(options)]
    if isinstance(options, str) or not isinstance(options, Sequence):
        raise AnnotationError(
            f"row {index}: options must be a list of texts or a letter->text mapping, "
            f"got {type(options).__name__}"
        )
    try:
        return list(strip_labels(options))
    except OptionsError as exc:
        raise AnnotationError(f"row {index}: {exc}") from None


def answer_letter(answer: str, options: Sequence[str], index: int) -> str:
    """The option letter for ``answer`` (rules: ``core.options.answer_letter``)."""
    try:
        return options_answer_letter(answer, options)
    except OptionsError as exc:
        raise AnnotationError(f"row {index}: {exc}; fix the answer or the options") from None


def _box(value: Any, index: int, name: str) -> list[float]:
    ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 4
    if ok:
        try:  # a 400-digit integer overflows a float: an error for this row, not a crash
            box = [float(v) for v in value]
        except (TypeError, ValueError, OverflowError):
            ok = False
    if ok and not all(math.isfinite(v) for v in box):
        raise AnnotationError(f"row {index}: {name} has a value that is not finite: {value!r}")
    if not ok or not (box[2] > box[0] and box[3] > box[1]):
        raise AnnotationError(
            f"row {index}: {name} must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1 in original "
            f"pixels, got {value!r}"
        )
    return box


def box_problem(box: Sequence[float], size: tuple[int, int]) -> str | None:
    """Why ``box`` (original pixels) does not fit a ``size`` image, or None when it does.

    Edges may overshoot by 2% of the side (annotation tools round outwards); a box beyond
    that is usually in another convention (0-1, 0-1000) or for another image.
    """
    w, h = size
    tol_x, tol_y = max(2.0, 0.02 * w), max(2.0, 0.02 * h)
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        return f"box {list(box)} is not [x1, y1, x2, y2] with x2 > x1 and y2 > y1"
    cx1, cy1, cx2, cy2 = clip_box(box, size)
    inside = x1 >= -tol_x and y1 >= -tol_y and x2 <= w + tol_x and y2 <= h + tol_y
    if inside and cx2 > cx1 and cy2 > cy1:
        return None
    shown = [round(v, 2) for v in box]
    return (
        f"box {shown} lies outside the {w}x{h} image; boxes are [x1, y1, x2, y2] in the "
        "original's pixels (convert relative 0-1 or 0-1000 boxes to pixels first)"
    )


def clip_box(box: Sequence[float], size: tuple[int, int]) -> list[float]:
    """``box`` clipped to the image (after ``box_problem`` accepted its small overshoot)."""
    w, h = size
    return [min(max(box[0], 0.0), w), min(max(box[1], 0.0), h),
            min(max(box[2], 0.0), w), min(max(box[3], 0.0), h)]  # fmt: skip


def _require(raw: Mapping[str, Any], key: str, index: int) -> str:
    value = raw.get(key)
    if value is None or str(value).strip() == "":
        raise AnnotationError(f"row {index}: missing {key!r}; every annotation needs one")
    return str(value)


def normalize(raw: Any, index: int, *, require_bbox: bool = False) -> Annotation:
    """Check one record and bring it to ``Annotation`` form; raises ``AnnotationError``."""
    if not isinstance(raw, Mapping):
        raise AnnotationError(f"row {index}: expected a JSON object, got {type(raw).__name__}")
    question, image = _require(raw, "question", index), _require(raw, "image", index)
    answer = _require(raw, "answer", index)
    options = normalize_options(raw.get("options"), index)
    raw_kind = str(raw.get("kind") or "")
    kind = raw_kind if raw_kind in ANSWER_KINDS else ("multiple_choice" if options else "open")
    if kind == "multiple_choice" and not options:
        raise AnnotationError(f"row {index}: kind multiple_choice needs options")
    if options:
        answer = answer_letter(answer, options, index)
    answer_text = str(
        raw.get("answer_text")
        or (options[letters(len(options)).index(answer)] if options else answer)
    )
    bbox = raw.get("bbox")
    if bbox is None and require_bbox:
        raise AnnotationError(f"row {index}: missing 'bbox' (target box in original pixels)")
    return Annotation(
        index=index,
        id=str(raw.get("id", f"row{index:06d}")),
        image=image,
        question=question,
        options=options,
        answer=answer,
        answer_text=answer_text,
        kind=kind,
        category=str(raw.get("category") or ("" if raw_kind in ANSWER_KINDS else raw_kind)),
        task="" if raw_kind in ANSWER_KINDS else raw_kind,
        bbox=None if bbox is None else _box(bbox, index, "bbox"),
        extra_boxes=[_box(b, index, "extra_boxes[]") for b in raw.get("extra_boxes") or []],
        label=raw.get("label"),
        data_source=str(raw.get("data_source") or ""),
    )


def normalize_all(
    records: Sequence[Any], *, require_bbox: bool = False
) -> tuple[list[Annotation], list[str]]:
    """Every usable annotation and one message per unusable one (none dropped silently)."""
    good, bad = [], []
    for i, raw in enumerate(records):
        try:
            good.append(normalize(raw, i, require_bbox=require_bbox))
        except AnnotationError as exc:
            bad.append(str(exc))
    return good, bad


def is_annotation(row: Any) -> bool:
    """True for annotation records, False for canonical rows (which carry ``messages``)."""
    return isinstance(row, Mapping) and "question" in row and "messages" not in row
