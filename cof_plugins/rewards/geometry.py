"""Box geometry for the grounding rewards: IoU, exact union IoU, Hungarian and greedy matching.

Boxes are ``(x1, y1, x2, y2)`` with x2 > x1, y2 > y1, in any one frame (the SIFThinker
rewards use fractions of the image). Everything is exact for axis-aligned rectangles:

- ``union_iou`` compares the *unions* of two box sets (the release uses shapely polygons):
  the plane is cut along every box edge into a grid of cells; a cell lies wholly inside or
  wholly outside each union, so summing the areas of the cells inside both / either gives
  the exact intersection and union, up to float rounding;
- ``hungarian_iou`` pairs boxes one-to-one to maximise the summed IoU
  (``scipy.optimize.linear_sum_assignment``, exact);
- ``greedy_matches`` is Visual-RFT's matching: predictions by falling confidence, each to
  its best unused ground truth, kept above a threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = Sequence[float]
FULL_IMAGE = (0.0, 0.0, 1.0, 1.0)


def area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes; 0 when the union is empty."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = w * h if w > 0 and h > 0 else 0.0
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def _coverage(boxes: Sequence[Box], xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Which grid cells (rows = y cells, columns = x cells) lie inside the union of boxes."""
    cx, cy = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
    inside = np.zeros((len(cy), len(cx)), dtype=bool)
    for x1, y1, x2, y2 in boxes:
        inside |= ((cy > y1) & (cy < y2))[:, None] & ((cx > x1) & (cx < x2))[None, :]
    return inside


def union_iou(a: Sequence[Box], b: Sequence[Box]) -> float:
    """IoU of the union of boxes ``a`` with the union of ``b`` (exact; 0 if either is empty)."""
    if not a or not b:
        return 0.0
    boxes = [*a, *b]
    xs = np.unique([v for box in boxes for v in (box[0], box[2])])
    ys = np.unique([v for box in boxes for v in (box[1], box[3])])
    cells = np.diff(ys)[:, None] * np.diff(xs)[None, :]
    in_a, in_b = _coverage(a, xs, ys), _coverage(b, xs, ys)
    union = float(cells[in_a | in_b].sum())
    return float(cells[in_a & in_b].sum()) / union if union > 0 else 0.0


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
    return np.array([[iou(p, q) for q in b] for p in a], dtype=np.float64).reshape(len(a), len(b))


def hungarian_iou(a: Sequence[Box], b: Sequence[Box]) -> float:
    """Mean IoU of the one-to-one pairing that maximises summed IoU, over min(|a|, |b|) pairs."""
    if not a or not b:
        return 0.0
    from scipy.optimize import linear_sum_assignment

    matrix = iou_matrix(a, b)
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    return float(matrix[rows, cols].sum()) / min(len(a), len(b))


def hierarchical_iou(pred: Sequence[Box], gt: Sequence[Box]) -> float:
    """GRPO-SIF's IoU* of an area against the ground truth: the mean of the union IoU and the
    Hungarian-matched mean IoU, in [0, 1]."""
    return 0.5 * (union_iou(pred, gt) + hungarian_iou(pred, gt))


def is_full_image(boxes: Sequence[Box], tolerance: float = 0.01) -> bool:
    """Whether an area is "the full image": its union covers all but ``tolerance`` of it."""
    return bool(boxes) and union_iou(boxes, [FULL_IMAGE]) >= 1.0 - tolerance


def greedy_matches(
    pred: Sequence[Box], confidences: Sequence[float], gt: Sequence[Box], threshold: float = 0.5
) -> list[tuple[int, int, float]]:
    """(pred index, gt index, IoU) pairs: predictions in falling confidence order, each to
    its best still unused ground truth, kept only when the IoU is above ``threshold``."""
    order = sorted(range(len(pred)), key=lambda i: -confidences[i])
    used: set[int] = set()
    pairs = []
    for i in order:
        best, best_iou = -1, 0.0
        for j, box in enumerate(gt):
            if j not in used and (value := iou(pred[i], box)) > best_iou:
                best, best_iou = j, value
        if best >= 0 and best_iou > threshold:
            used.add(best)
            pairs.append((i, best, best_iou))
    return pairs
