"""Visual-RFT's detection rewards: IoU, confidence and format, summed unweighted.

The answer is a JSON list of ``{"Position": [x1, y1, x2, y2], "Confidence": c}`` inside
``<answer>``; the ground truth is a list of boxes in the same frame (the release leaves
the frame to the data; these functions only need both sides to agree).

- predictions with the same Position are kept once (the first);
- ``geometry.greedy_matches``: by falling confidence, each prediction takes its best
  unused ground-truth box, and the pair counts only when the IoU is above 0.5;
- **IoU reward** = sum of matched IoUs / max(|GT|, |predictions|), at most 1;
- **confidence reward** = mean over predictions of c when matched, 1 - c when not;
- **format** = 1 when the reply is ``<think>...</think>`` then optional whitespace then
  ``<answer>...</answer>`` and nothing else.

As in the release, an answer that is not such a list (or holds a malformed entry) scores 0
on both box rewards, and a list cut short is repaired by dropping its unfinished entry.
Left out: the release first tries math-verify on the whole reply, which cannot apply to
box lists. The format check is linear-time rather than the release's regex.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cof_plugins.rewards.geometry import greedy_matches

THRESHOLD = 0.5
_BOUNDARY = re.compile(r"</think>\s*<answer>")


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]
    confidence: float


def answer_text(reply: str) -> str:
    """The text between the first ``<answer>`` and the next ``</answer>``, else the reply."""
    start = reply.find("<answer>")
    if start < 0:
        return reply.strip()
    end = reply.find("</answer>", start)
    return reply[start + len("<answer>") : end if end >= 0 else len(reply)].strip()


def parse_detections(reply: str) -> list[Detection] | None:
    """The predictions of a reply, duplicates dropped; None when unreadable."""
    text = answer_text(reply).replace("\n", "").replace("'", '"')
    if text and not text.endswith("]"):
        text = text.rsplit("},", 1)[0] + "}]"
    try:
        items = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(items, list) or not items:
        return None
    out, seen = [], set()
    for item in items:
        detection = _detection(item)
        if detection is None:
            return None
        if detection.box not in seen:
            seen.add(detection.box)
            out.append(detection)
    return out


def _detection(item: object) -> Detection | None:
    if not isinstance(item, dict):
        return None
    box, conf = item.get("Position"), item.get("Confidence")
    numbers = [*box, conf] if isinstance(box, list) and len(box) == 4 else []
    if not numbers or not all(_finite(v) for v in numbers):
        return None
    return Detection(tuple(float(v) for v in box), float(conf))


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _matches(preds: list[Detection], gt: Sequence[Sequence[float]]):
    return greedy_matches([p.box for p in preds], [p.confidence for p in preds], gt, THRESHOLD)


def iou_reward(reply: str, gt: Sequence[Sequence[float]]) -> float:
    preds = parse_detections(reply)
    if not preds:
        return 0.0
    total = sum(value for _, _, value in _matches(preds, gt))
    return min(1.0, total / max(len(gt), len(preds)))


def confidence_reward(reply: str, gt: Sequence[Sequence[float]]) -> float:
    preds = parse_detections(reply)
    if not preds:
        return 0.0
    matched = {i for i, _, _ in _matches(preds, gt)}
    terms = [p.confidence if i in matched else 1.0 - p.confidence for i, p in enumerate(preds)]
    return min(1.0, max(0.0, sum(terms) / len(terms)))


def format_reward(reply: str) -> float:
    """``<think>.*</think>\\s*<answer>.*</answer>`` over the whole reply, in linear time."""
    head, tail = "<think>", "</answer>"
    if not (reply.startswith(head) and reply.endswith(tail)):
        return 0.0
    middle = reply[len(head) : len(reply) - len(tail)]
    return 1.0 if len(reply) >= len(head) + len(tail) and _BOUNDARY.search(middle) else 0.0


def score_vrft(reply: str, gt: Sequence[Sequence[float]]) -> dict[str, float]:
    terms = {
        "iou": iou_reward(reply, gt),
        "confidence": confidence_reward(reply, gt),
        "format": format_reward(reply),
    }
    return {"score": sum(terms.values()), **terms}
