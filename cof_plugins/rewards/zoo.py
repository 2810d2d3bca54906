"""The reward zoo: every reward function of the package under one name each.

An entry has verl's ``compute_score`` signature, ``fn(data_source, solution_str,
ground_truth, extra_info=None, **settings)``, may be async, and returns a float or a dict
holding ``score`` (every other key becomes per-rollout ``reward_extra_info`` in verl).
``score(name, ...)`` calls one and always returns the dict. verl reaches the zoo through
``pkg://cof_plugins.verl.reward`` with ``reward_kwargs.method: NAME`` (default ``cof``).

Entries:

- ``cof``: the Adaptive-CoF reward (``cof_reward``: 0.9 accuracy + 0.1 format, judge only
  when rules cannot decide), unchanged;
- ``sifthinker``: GRPO-SIF's four rewards summed (``sif``), and each alone as
  ``sifthinker/format``, ``sifthinker/answer``, ``sifthinker/iou``, ``sifthinker/depth``;
- ``visual_rft``: Visual-RFT's detection rewards summed (``vrft``), and each alone as
  ``visual_rft/iou``, ``visual_rft/confidence``, ``visual_rft/format``.

Every call of an entry that includes the SIFThinker answer term records the judge score in
the progress store once: use the sum or the separate terms for one rollout, not both.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cof_plugins.core.registry import Registry

RewardFn = Callable[..., float | dict[str, float] | Awaitable[float | dict[str, float]]]


@dataclass(frozen=True)
class ZooEntry:
    fn: RewardFn
    method: str
    summary: str


REWARDS: Registry[ZooEntry] = Registry("reward function")


async def score(
    name: str,
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **settings: Any,
) -> dict[str, float]:
    """Run the entry ``name``; the result is always a dict with ``score``."""
    entry = REWARDS.get(name)
    result = entry.fn(data_source, solution_str, ground_truth, dict(extra_info or {}), **settings)
    if inspect.isawaitable(result):
        result = await result
    return dict(result) if isinstance(result, Mapping) else {"score": float(result)}


# ----- Adaptive CoF ---------------------------------------------------------------------


async def _cof(data_source, solution_str, ground_truth, extra_info=None, **settings):
    from cof_plugins.rewards.cof_reward import RewardSettings, judge_for, score_rollout

    parsed = RewardSettings.from_kwargs(settings)
    result = await score_rollout(
        data_source,
        solution_str,
        ground_truth,
        extra_info=dict(extra_info or {}),
        settings=parsed,
        judge=judge_for(parsed),
    )
    return result.as_reward_dict()


# ----- SIFThinker ----------------------------------------------------------------------


def _sif_context(ground_truth: Any, extra_info: Mapping[str, Any], settings: Mapping[str, Any]):
    from cof_plugins.rewards.answer_judge import answer_judge_for
    from cof_plugins.rewards.progress import round_of, shared_store
    from cof_plugins.rewards.sif import SifSettings, SifTruth

    parsed = SifSettings.from_kwargs(settings)
    truth = SifTruth.from_row(ground_truth, extra_info)
    store = shared_store(parsed.progress_dir) if parsed.progress else None
    return parsed, truth, answer_judge_for(parsed.judge), store, round_of(dict(extra_info))


async def _sifthinker(data_source, solution_str, ground_truth, extra_info=None, **settings):
    from cof_plugins.rewards.sif import score_sif

    parsed, truth, judge, store, round_ = _sif_context(ground_truth, extra_info or {}, settings)
    return await score_sif(solution_str, truth, parsed, judge, store, round_)


def _sif_format(data_source, solution_str, ground_truth, extra_info=None, **settings):
    from cof_plugins.core.sif import parse_sif
    from cof_plugins.rewards.sif import format_reward

    return format_reward(parse_sif(solution_str))


async def _sif_answer(data_source, solution_str, ground_truth, extra_info=None, **settings):
    from cof_plugins.core.sif import parse_sif
    from cof_plugins.rewards.sif import answer_reward

    _, truth, judge, store, round_ = _sif_context(ground_truth, extra_info or {}, settings)
    return (await answer_reward(parse_sif(solution_str), truth, judge, store, round_)).reward


def _sif_iou(data_source, solution_str, ground_truth, extra_info=None, **settings):
    from cof_plugins.core.sif import parse_sif
    from cof_plugins.rewards.sif import SifSettings, SifTruth, iou_reward

    parsed, truth = SifSettings.from_kwargs(settings), SifTruth.from_row(ground_truth, extra_info)
    return iou_reward(parse_sif(solution_str), truth.boxes, parsed.full_image_tolerance)


def _sif_depth(data_source, solution_str, ground_truth, extra_info=None, **settings):
    from cof_plugins.core.sif import parse_sif
    from cof_plugins.rewards.sif import SifSettings, SifTruth, depth_means, depth_reward

    parsed, truth = SifSettings.from_kwargs(settings), SifTruth.from_row(ground_truth, extra_info)
    means = depth_means(truth.depth_map)
    return depth_reward(parse_sif(solution_str), means, parsed.depth_tolerance)


# ----- Visual-RFT ----------------------------------------------------------------------


def _vrft_gt(ground_truth: Any, extra_info: Mapping[str, Any] | None) -> list[list[float]]:
    """Ground-truth boxes: ``extra_info.gt_boxes``, else the release's solution string."""
    from cof_plugins.rewards.vrft import parse_detections

    boxes = (extra_info or {}).get("gt_boxes")
    if boxes is not None:
        return [[float(v) for v in box] for box in boxes]
    found = parse_detections(str(ground_truth))
    if not found:
        raise ValueError(
            "Visual-RFT rewards need ground-truth boxes: extra_info.gt_boxes, or a ground "
            'truth like [{"Position": [x1, y1, x2, y2], "Confidence": 1}]'
        )
    return [list(d.box) for d in found]


def _vrft(fn_name: str) -> RewardFn:
    def entry(data_source, solution_str, ground_truth, extra_info=None, **settings):
        from cof_plugins.rewards import vrft

        if settings:
            raise ValueError(f"Visual-RFT rewards take no settings, got {sorted(settings)}")
        gt = _vrft_gt(ground_truth, extra_info)
        if fn_name == "format_reward":
            return vrft.format_reward(solution_str)
        return getattr(vrft, fn_name)(solution_str, gt)

    entry.__qualname__ = f"visual_rft.{fn_name}"
    return entry


def _register_builtins() -> None:
    table = (
        ("cof", _cof, "cof", "Adaptive-CoF: 0.9 accuracy + 0.1 format (rules, then judge)"),
        ("sifthinker", _sifthinker, "sifthinker", "GRPO-SIF: format + answer + IoU + depth"),
        ("sifthinker/format", _sif_format, "sifthinker", "1 when the reply parses cleanly"),
        ("sifthinker/answer", _sif_answer, "sifthinker", "judge score + progress bonus"),
        ("sifthinker/iou", _sif_iou, "sifthinker", "hierarchical IoU, first/last areas"),
        ("sifthinker/depth", _sif_depth, "sifthinker", "share of boxes with d within 10%"),
        ("visual_rft", _vrft("score_vrft"), "visual_rft", "Visual-RFT: IoU + confidence + format"),
        ("visual_rft/iou", _vrft("iou_reward"), "visual_rft", "greedy-matched IoU above 0.5"),
        ("visual_rft/confidence", _vrft("confidence_reward"), "visual_rft", "c if matched"),
        ("visual_rft/format", _vrft("format_reward"), "visual_rft", "think then answer"),
    )
    for name, fn, method, summary in table:
        if name not in REWARDS:
            REWARDS.register(name, ZooEntry(fn, method, summary))


_register_builtins()
