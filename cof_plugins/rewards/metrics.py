"""Metrics that keep the raw reward, the facts and the shaped score apart.

A shaped score (AGAR tiers, a tool bonus) is what GRPO trains on, not how well the model
does: an AGAR mean can rise while accuracy falls. So the raw CoF score, accuracy, tool use
and the shaped score are logged under separate names, each a mean over rollouts, and judge
traffic as per-batch totals (names ending in ``_total`` so verl's metric aggregator sums
them across mini-batches instead of averaging).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from cof_plugins.rewards.shaping import ShapedBatch

PREFIX = "cof"


def shaping_metrics(
    shaped: ShapedBatch,
    raw_scores: Sequence[float],
    infos: Sequence[Mapping[str, Any]],
    mode: str,
) -> dict[str, float]:
    """Per-batch metrics; ``raw_scores`` are the reward's scores before any settling."""
    records = shaped.records
    out = {
        f"{PREFIX}/score/mean": _mean(raw_scores),
        f"{PREFIX}/acc/mean": _mean([r.acc for r in records]),
        f"{PREFIX}/format_ok/mean": _mean([r.format_ok for r in records]),
        f"{PREFIX}/tool_use/rate": _mean([r.used_tool for r in records]),
        f"{PREFIX}/tool_calls/mean": _mean([_num(i, "num_tool_calls") for i in infos]),
        f"{PREFIX}/{mode}_score/mean": _mean(shaped.scores),
        f"{PREFIX}/groups/flat_rate": shaped.flat_groups / max(shaped.groups, 1),
        f"{PREFIX}/judge/calls_total": float(sum(r.judge_used for r in records)),
        f"{PREFIX}/judge/fallbacks_total": float(sum(_num(i, "judge_fallback") for i in infos)),
        f"{PREFIX}/judge/group_fallbacks_total": float(shaped.fallback_groups),
        f"{PREFIX}/rules/decided_rate": _mean([_num(i, "rule_decided") for i in infos]),
        f"{PREFIX}/tool_count/parsed_rate": _mean([_num(i, "tool_count_parsed") for i in infos]),
        f"{PREFIX}/split/consistent_rate": _mean([_num(i, "split_consistent", 1.0) for i in infos]),
    }
    for name, used in (("direct", False), ("zoom", True)):
        subset = [r.acc for r in records if r.used_tool is used]
        if subset:  # no NaN in the logger when a batch has no rollout of that kind
            out[f"{PREFIX}/acc/{name}"] = _mean(subset)
    return out


def _num(info: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    value = info.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _mean(values: Sequence[float | bool]) -> float:
    return math.fsum(float(v) for v in values) / len(values) if values else 0.0
