"""GRPO-SIF's four rewards (SIFThinker), summed unweighted as the release does.

1. **format** in {0, 1}: the reply parses with no problem (``core.sif.parse_sif``).
2. **answer** in [0, 2]: the judge's score s of the ``<answer>`` (``answer_judge``), plus the
   progress bonus ``s - s_prev`` when a stored score of the same question exists and
   ``s >= s_prev`` (``progress``: a per-key store, see there for how it differs from the
   release's batch mean).
3. **IoU** in [0, 2]: ``IoU*(last) + max(0, IoU*(last) - IoU*(first))`` with
   ``IoU*(A, GT) = (IoU(union A, union GT) + Hungarian mean IoU) / 2`` (``geometry``).
   "last" is the last area, "first" the first area that is not the full image, or the
   full image when every area is. An area counts with its valid boxes; areas without one
   are skipped. "The full image" means the area's union covers at least 99 % of the image
   (``full_image_tolerance``), since a model may write [0, 0, 1, 1] as two halves.
4. **depth** in [0, 1]: the share of the reply's (box, d) entries whose d is within 10 %
   (relative) of the mean of the depth map inside the box, ``|mean - d| <= 0.1 * mean``;
   an invalid entry is a miss. The map is decoded by ``core.depth`` (0 = near).

The release's depth reward divides by the mean, so it is strict near the camera (a box on
the nearest object, mean 0, needs d = 0 exactly); that is kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from cof_plugins.core.depth import BoxMeans, load_depth
from cof_plugins.core.sif import SifParse, parse_sif
from cof_plugins.rewards.answer_judge import RuleJudge
from cof_plugins.rewards.geometry import hierarchical_iou, is_full_image
from cof_plugins.rewards.progress import ProgressStore, progress_reward

TERMS = ("format", "answer", "iou", "depth")


@dataclass(frozen=True)
class SifSettings:
    """Reward knobs (``reward_kwargs`` in verl); unknown keys are errors."""

    # auto: the judge client when COF_JUDGE_URL is set, else rules; on: required; off: rules.
    judge: str = "auto"
    depth_tolerance: float = 0.1
    full_image_tolerance: float = 0.01
    progress: bool = True
    # Folder of the shared progress store (the run's checkpoint folder); None: in memory.
    progress_dir: str | None = None

    def __post_init__(self) -> None:
        if self.judge not in ("auto", "on", "off"):
            raise ValueError(f"judge={self.judge!r}: use auto, on or off")
        for name in ("depth_tolerance", "full_image_tolerance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not (math.isfinite(value) and 0 <= value < 1):
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")

    @classmethod
    def from_kwargs(cls, values: Mapping[str, Any]) -> SifSettings:
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ValueError(
                f"unknown SIFThinker reward setting(s) {', '.join(unknown)}; "
                f"valid: {', '.join(valid)}"
            )
        return cls(**dict(values))


@dataclass(frozen=True)
class SifTruth:
    """What a reply is scored against, read from a verl row (``extra_info``)."""

    answer: str
    boxes: list[tuple[float, float, float, float]]
    depth_map: str | None
    question: str = ""
    key: str = ""
    kind: str = "open"
    options: list[str] | None = None

    @classmethod
    def from_row(cls, ground_truth: Any, extra_info: Mapping[str, Any]) -> SifTruth:
        """Keys: gt_boxes (list of [x1, y1, x2, y2] in [0, 1]), depth_map (path), question,
        key (progress key; default: the question), kind, options."""
        if extra_info.get("gt_boxes") is None:
            raise ValueError(
                "extra_info has no gt_boxes: write RL rows with `cof data sif` (each row "
                "carries gt_boxes, depth_map, question, answer and key)"
            )
        boxes = np.asarray([list(b) for b in extra_info["gt_boxes"]], dtype=np.float64)
        if boxes.ndim != 2 or boxes.shape[1] != 4 or len(boxes) == 0:
            raise ValueError(f"extra_info.gt_boxes must be a list of [x1, y1, x2, y2]: {boxes!r}")
        options = extra_info.get("options")
        question = str(extra_info.get("question") or "")
        return cls(
            answer=str(ground_truth),
            boxes=[tuple(float(v) for v in b) for b in boxes],
            depth_map=str(extra_info["depth_map"]) if extra_info.get("depth_map") else None,
            question=question,
            key=str(extra_info.get("key") or question),
            kind=str(extra_info.get("kind") or "open"),
            options=[str(o) for o in options] if options is not None and len(options) else None,
        )


def format_reward(parsed: SifParse) -> float:
    return 1.0 if parsed.well_formed else 0.0


def iou_reward(
    parsed: SifParse, gt: Sequence[Sequence[float]], full_image_tolerance: float = 0.01
) -> float:
    """``IoU*(last) + max(0, IoU*(last) - IoU*(first non-full area))``, in [0, 2]."""
    areas = [a.valid_boxes for a in parsed.areas if a.valid_boxes]
    if not areas or not gt:
        return 0.0
    first = next((a for a in areas if not is_full_image(a, full_image_tolerance)), areas[0])
    last = hierarchical_iou(areas[-1], gt)
    return last + max(0.0, last - hierarchical_iou(first, gt))


def depth_reward(parsed: SifParse, means: BoxMeans, tolerance: float = 0.1) -> float:
    """Share of (box, d) entries with ``|mean - d| <= tolerance * mean``; invalid = miss."""
    entries = [box for area in parsed.areas for box in area.boxes]
    if not entries:
        return 0.0
    hits = 0
    for box in entries:
        if box.valid and box.bbox is not None and box.depth is not None:
            mean = means.mean(box.bbox)
            hits += abs(mean - box.depth) <= tolerance * mean
    return hits / len(entries)


@lru_cache(maxsize=64)
def _means(path: str, mtime_ns: int) -> BoxMeans:
    return BoxMeans(load_depth(path))


def depth_means(path: str | None) -> BoxMeans:
    """The decoded depth map at ``path`` (cached: a group's rollouts share one map)."""
    if not path:
        raise ValueError("extra_info has no depth_map: the depth reward needs the map's path")
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"depth map {path} not found (extra_info.depth_map of this row)")
    return _means(str(file.resolve()), file.stat().st_mtime_ns)


@dataclass(frozen=True)
class AnswerOutcome:
    reward: float
    score: float
    baseline: float | None
    source: str


async def answer_reward(
    parsed: SifParse,
    truth: SifTruth,
    judge: RuleJudge,
    store: ProgressStore | None,
    round_: int,
) -> AnswerOutcome:
    """The judge's score with the progress bonus; records the score for later rounds."""
    judged = await judge.score(
        truth.question, parsed.answer, truth.answer, truth.kind, truth.options
    )
    baseline = store.baseline(truth.key, round_) if store is not None else None
    if store is not None:
        store.record(truth.key, round_, judged.score)
    return AnswerOutcome(
        progress_reward(judged.score, baseline), judged.score, baseline, judged.source
    )


async def score_sif(
    solution_str: str,
    truth: SifTruth,
    settings: SifSettings,
    judge: RuleJudge,
    store: ProgressStore | None,
    round_: int,
) -> dict[str, float]:
    """All four terms, their unweighted sum as ``score``, and the facts behind them."""
    parsed = parse_sif(solution_str)
    answer = await answer_reward(parsed, truth, judge, store if settings.progress else None, round_)
    terms = {
        "format": format_reward(parsed),
        "answer": answer.reward,
        "iou": iou_reward(parsed, truth.boxes, settings.full_image_tolerance),
        "depth": depth_reward(parsed, depth_means(truth.depth_map), settings.depth_tolerance),
    }
    return {
        "score": sum(terms.values()),
        **terms,
        "acc": answer.score,
        "progress_bonus": answer.reward - answer.score,
        "has_baseline": float(answer.baseline is not None),
        "judge_used": float(answer.source != "rules"),
        "judge_fallback": float(answer.source == "fallback"),
        "num_areas": float(len(parsed.areas)),
    }
