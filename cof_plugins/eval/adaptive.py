"""Adaptive behaviour of a run, split by legibility: zoom where the target is too small to
see in the frame, answer directly where it is not.

Which questions are legible is not decided here. ``cof data synthesize`` run over the
evaluated annotations (same family, pixel budget and ``--legible-side`` as the training data)
writes, per question, ``meta.legible``: the verdict of ``data.policy.legible``, the very test
that decides whether a training trajectory answers directly or zooms. This module only reads
that file, so training data and evaluation cannot disagree about a question.

Rates, per run (percent of the questions in the group):

- ``zoom_illegible``: illegible questions with at least one *valid* zoom (the zoom step
  accepted the box and returned a crop; the crop need not hold the target);
- ``direct_legible``: legible questions answered without any tool-call attempt;
- ``target_in_crop``: of the valid zooms on illegible questions, those whose first crop
  (the enlarged box, frame pixels) holds at least half of every target's area: whether the
  model looked in the right place, an honest extra the thresholds above do not ask for;
- ``invalid_calls`` (mean per question), ``format_ok`` and ``accuracy``, over all questions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cof_plugins.data.policy import to_frame
from cof_plugins.data.rows import read_rows

Box = tuple[float, float, float, float]
HOW = (
    "run `cof data synthesize --from EVAL_ANNOTATIONS --out DIR` with the training data's "
    "--family, --min-pixels, --max-pixels and --legible-side, and pass DIR/train.json"
)
TARGET_SHARE = 0.5  # share of a target's area a crop must hold to count as showing it


class LegibilityError(ValueError):
    """The legibility file cannot be used with these runs; the message says how to fix it."""


@dataclass(frozen=True)
class Question:
    """One evaluated question as the synthesizer saw it."""

    legible: bool
    frame: tuple[int, int]
    targets: tuple[Box, ...]  # frame pixels
    side: float  # the targets' smallest short side, frame pixels


def load_legibility(path: str | Path) -> dict[str, Question]:
    """Question id -> ``Question`` from the synthesizer's rows (``meta.legible``)."""
    try:
        rows = read_rows(path)
    except (OSError, ValueError) as exc:
        raise LegibilityError(f"legibility file {path}: {exc}; {HOW}") from None
    out: dict[str, Question] = {}
    for i, row in enumerate(rows):
        meta = row.get("meta") if isinstance(row, Mapping) else None
        try:
            qid, question = _question(meta)
        except (KeyError, TypeError, ValueError) as exc:
            raise LegibilityError(
                f"legibility file {path}, row {i}: no usable meta ({exc}); it must come from "
                f"cof data synthesize: {HOW}"
            ) from None
        out[qid] = question
    if not out:
        raise LegibilityError(f"legibility file {path} holds no rows; {HOW}")
    return out


def _question(meta: Any) -> tuple[str, Question]:
    if not isinstance(meta, Mapping):
        raise TypeError("the row has no meta object")
    if not isinstance(meta["legible"], bool):
        raise ValueError(f"meta.legible is {meta['legible']!r}, not true/false")
    size = tuple(int(v) for v in meta["original_size"])
    frame = tuple(int(v) for v in meta["frame_size"])
    boxes = [meta["bbox"], *meta.get("extra_boxes", [])]
    targets = tuple(to_frame([float(v) for v in b], size, frame) for b in boxes)  # type: ignore[arg-type]
    side = float(meta.get("target_side", 0.0))
    return str(meta["id"]), Question(meta["legible"], frame, targets, side)  # type: ignore[arg-type]


def _share(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def _first_crop(record: Mapping[str, Any]) -> Box | None:
    for turn in record.get("trajectory") or []:
        for call in turn.get("calls", []):
            if call.get("ok") and call.get("enlarged_box"):
                return tuple(float(v) for v in call["enlarged_box"])  # type: ignore[return-value]
    return None


def shows_targets(crop: Box, targets: Sequence[Box], share: float = TARGET_SHARE) -> bool:
    """Whether ``crop`` holds at least ``share`` of the area of every target."""
    for t in targets:
        w = max(0.0, min(crop[2], t[2]) - max(crop[0], t[0]))
        h = max(0.0, min(crop[3], t[3]) - max(crop[1], t[1]))
        area = (t[2] - t[0]) * (t[3] - t[1])
        if area <= 0 or w * h < share * area:
            return False
    return True


def is_direct(record: Mapping[str, Any]) -> bool:
    """Answered without any tool-call attempt (a well-formed call or not)."""
    return not record.get("tool_attempts") and record.get("pred") is not None


def is_valid_zoom(record: Mapping[str, Any]) -> bool:
    return (record.get("zoom_calls") or 0) > 0


def match(records: Sequence[Mapping[str, Any]], questions: Mapping[str, Question]) -> list:
    """(record, question) pairs; a record without a question or on another frame raises."""
    pairs = []
    for r in records:
        q = questions.get(str(r.get("id")))
        if q is None:
            raise LegibilityError(f"question {r.get('id')!r} is not in the legibility file; {HOW}")
        if r.get("resolution") is not None:
            raise LegibilityError(
                f"{r.get('key')}: legibility is known for the native resolution only; "
                "evaluate without --resolutions"
            )
        frame = tuple(r.get("frame") or ())
        if frame != q.frame:
            raise LegibilityError(
                f"question {r.get('id')!r} was evaluated on a {frame} frame, the synthesizer "
                f"decided legibility on {q.frame}: evaluate with the same --min-pixels and "
                "--max-pixels as the data"
            )
        pairs.append((r, q))
    return pairs


def rates(records: Sequence[Mapping[str, Any]], questions: Mapping[str, Question]) -> dict:
    """One run's adaptive rates (see the module docstring); percent, None for an empty group."""
    pairs = match(records, questions)
    legible = [r for r, q in pairs if q.legible]
    illegible = [(r, q) for r, q in pairs if not q.legible]
    zoomed = [(r, q) for r, q in illegible if is_valid_zoom(r)]
    hits = [
        r for r, q in zoomed if (c := _first_crop(r)) is not None and shows_targets(c, q.targets)
    ]
    scored = [r for r, _ in pairs if r.get("correct") is not None]
    n = len(pairs)
    return {
        "questions": n,
        "legible": len(legible),
        "illegible": len(illegible),
        "zoom_illegible": _share(len(zoomed), len(illegible)),
        "direct_legible": _share(sum(map(is_direct, legible)), len(legible)),
        "zoom_legible": _share(sum(map(is_valid_zoom, legible)), len(legible)),
        "direct_illegible": _share(sum(is_direct(r) for r, _ in illegible), len(illegible)),
        "target_in_crop": _share(len(hits), len(zoomed)),
        "invalid_calls": round(sum(r.get("invalid_calls") or 0 for r, _ in pairs) / n, 3)
        if n
        else None,
        "format_ok": _share(sum(bool(r.get("format_ok")) for r, _ in pairs), n),
        "accuracy": _share(sum(bool(r["correct"]) for r in scored), len(scored)),
    }


def per_question(
    runs: Mapping[str, Sequence[Mapping[str, Any]]], questions: Mapping[str, Question]
) -> list[dict]:
    """One row per question: its legibility and, per run, what the model did."""
    rows: dict[str, dict] = {}
    for label, records in runs.items():
        for r, q in match(records, questions):
            row = rows.setdefault(
                str(r["id"]), {"id": str(r["id"]), "legible": q.legible, "target_side": q.side}
            )
            crop = _first_crop(r)
            row[label] = {
                "direct": is_direct(r),
                "valid_zoom": is_valid_zoom(r),
                "invalid_calls": r.get("invalid_calls") or 0,
                "target_in_crop": crop is not None and shows_targets(crop, q.targets),
                "correct": r.get("correct"),
            }
    return list(rows.values())


_COLUMNS = (
    ("zoom_illegible", "valid zoom, illegible (%)"),
    ("direct_legible", "direct answer, legible (%)"),
    ("target_in_crop", "crop holds the target (% of those zooms)"),
    ("zoom_legible", "zoom, legible (%)"),
    ("direct_illegible", "direct answer, illegible (%)"),
    ("invalid_calls", "invalid calls / question"),
    ("format_ok", "well-formed (%)"),
    ("accuracy", "accuracy (%)"),
)


def report_blocks(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    questions: Mapping[str, Question],
    out_dir: Path,
) -> list[tuple]:
    """The report's section (blocks as ``eval.report`` writes them) and ``adaptive.json``."""
    table = {label: rates(records, questions) for label, records in runs.items()}
    (out_dir / "adaptive.json").write_text(
        json.dumps({"runs": table, "questions": per_question(runs, questions)}, indent=1) + "\n",
        encoding="utf-8",
    )
    first = next(iter(table.values()), {})
    intro = (
        f"Legibility as the data synthesizer decides it (the target's short side in frame "
        f"pixels against --legible-side): {first.get('legible', 0)} legible and "
        f"{first.get('illegible', 0)} illegible questions. A valid zoom is a call whose box "
        "the zoom step accepted; whether its crop holds the target is the third row."
    )
    rows = [[name, *(_fmt(t.get(key)) for t in table.values())] for key, name in _COLUMNS]
    return [
        ("h", 2, "Adaptive behaviour by legibility"),
        ("p", intro),
        ("table", ["metric", *table], rows),
    ]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)
