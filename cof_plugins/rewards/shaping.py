"""Reward shaping over whole uid groups: AGAR, a DeepEyes-style tool bonus, or plain GRPO.

The reward function scores each rollout on its own (``cof_reward``); what GRPO trains on is
chosen here, per recipe, from the per-rollout facts of a complete group:

- ``agar``: the adaptive group-aware tiers of ``core.agar`` (zooming is only penalised when
  a direct answer already succeeds in the same group);
- ``tool_bonus``: the raw score plus ``tool_bonus`` for a rollout that is correct AND used
  the tool (DeepEyes-style conditional bonus: tool use is rewarded only when it paid off);
- ``grpo``: the raw score unchanged.

The modes are the ``REWARD_MODES`` registry: a recipe names one, a typo lists the valid
names, and another shaping is one ``REWARD_MODES.register(name, shaper)`` away.

Judge fallbacks are settled here too, because only the group view can see them: rollouts
are scored one at a time while they stream in, so the judge's all-or-nothing rule per group
(``JudgeClient.judge_group``) is applied afterwards by ``settle_group``. When any member's
judge verdict fell back, every judged member of that group is re-decided like the fallback
policy says ('rules': the rule verdict, undecided counting as wrong; otherwise wrong), and
its raw score moves by ``acc_weight`` times the change, so one group is never compared on
two scales.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from cof_plugins.core.agar import AgarTiers, RolloutFacts, agar_group
from cof_plugins.core.registry import Registry


@dataclass(frozen=True)
class ShapingConfig:
    """Which shaping a recipe trains on; ``acc_weight`` must match the reward's."""

    mode: str = "agar"
    tiers: AgarTiers = field(default_factory=AgarTiers)
    tool_bonus: float = 0.2
    acc_weight: float = 0.9
    fallback_policy: str = "rules"

    def __post_init__(self) -> None:
        if self.mode not in REWARD_MODES:
            raise ValueError(REWARD_MODES.unknown_message(self.mode))
        for name in ("tool_bonus", "acc_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.fallback_policy not in ("rules", "zero"):
            raise ValueError(
                f"fallback_policy must be 'rules' or 'zero', got {self.fallback_policy!r}"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> ShapingConfig:
        """Build from a config mapping (``tiers`` as a mapping); unknown keys are errors."""
        values = dict(values or {})
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ValueError(
                f"unknown reward shaping key(s) {', '.join(unknown)}; valid: {', '.join(valid)}"
            )
        if "tiers" in values and not isinstance(values["tiers"], AgarTiers):
            values["tiers"] = AgarTiers.from_dict(dict(values["tiers"] or {}))
        return cls(**values)


@dataclass(frozen=True)
class RolloutRecord:
    """One rollout as the reward left it: raw score plus the facts behind it."""

    raw_score: float
    acc: bool
    format_ok: bool
    used_tool: bool
    rule_acc: bool = False
    judge_used: bool = False
    judge_fallback: bool = False

    @classmethod
    def from_info(cls, raw_score: float, info: Mapping[str, Any]) -> RolloutRecord:
        """From a reward_extra_info mapping; the three AGAR facts are required."""
        missing = [k for k in ("acc", "format_ok", "used_tool") if k not in info]
        if missing:
            raise KeyError(
                f"reward_extra_info lacks {', '.join(missing)}: set "
                "reward.custom_reward_function.path=pkg://cof_plugins.verl.reward "
                "(name compute_score) so every rollout carries its facts"
            )
        flags = {k: bool(float(info.get(k, 0.0))) for k in _FLAG_KEYS}
        return cls(raw_score=float(raw_score), **flags)

    @property
    def facts(self) -> RolloutFacts:
        return RolloutFacts(self.acc, self.used_tool, self.format_ok)


_FLAG_KEYS = ("acc", "format_ok", "used_tool", "rule_acc", "judge_used", "judge_fallback")


def settle_group(
    records: Sequence[RolloutRecord], config: ShapingConfig
) -> tuple[list[RolloutRecord], bool]:
    """Apply the judge's all-or-nothing rule to one group; returns (records, fell back)."""
    if not any(r.judge_fallback for r in records):
        return list(records), False
    settled = []
    for record in records:
        if not record.judge_used:
            settled.append(record)
            continue
        acc = record.rule_acc if config.fallback_policy == "rules" else False
        delta = config.acc_weight * (float(acc) - float(record.acc))
        settled.append(replace(record, acc=acc, raw_score=record.raw_score + delta))
    return settled, True


def shape_group(records: Sequence[RolloutRecord], config: ShapingConfig) -> list[float]:
    """Training scores of ONE settled group, in order."""
    return REWARD_MODES.get(config.mode)(records, config)


Shaper = Callable[[Sequence[RolloutRecord], ShapingConfig], list[float]]


def _agar(records: Sequence[RolloutRecord], config: ShapingConfig) -> list[float]:
    return agar_group([r.facts for r in records], config.tiers)


def _tool_bonus(records: Sequence[RolloutRecord], config: ShapingConfig) -> list[float]:
    return [r.raw_score + config.tool_bonus * (r.acc and r.used_tool) for r in records]


def _grpo(records: Sequence[RolloutRecord], config: ShapingConfig) -> list[float]:
    return [r.raw_score for r in records]


# Mode name -> group shaper; a recipe's ``cof_reward.mode`` is looked up here.
REWARD_MODES: Registry[Shaper] = Registry("reward mode")
REWARD_MODES.register("agar", _agar)
REWARD_MODES.register("tool_bonus", _tool_bonus)
REWARD_MODES.register("grpo", _grpo)


@dataclass(frozen=True)
class ShapedBatch:
    """Result of shaping a batch: scores in batch order, settled records, group stats."""

    scores: list[float]
    records: list[RolloutRecord]
    groups: int
    fallback_groups: int
    flat_groups: int


def shape_batch(
    group_ids: Sequence[Hashable], records: Sequence[RolloutRecord], config: ShapingConfig
) -> ShapedBatch:
    """Settle and shape every uid group of a batch; members need not be contiguous."""
    if len(group_ids) != len(records):
        raise ValueError(
            f"group_ids and records differ in length: {len(group_ids)} vs {len(records)}"
        )
    members: dict[Hashable, list[int]] = {}
    for index, gid in enumerate(group_ids):
        members.setdefault(gid, []).append(index)
    scores, settled = [0.0] * len(records), list(records)
    fallbacks = flat = 0
    for rows in members.values():
        group, fell_back = settle_group([records[i] for i in rows], config)
        shaped = shape_group(group, config)
        fallbacks += fell_back
        flat += max(shaped) == min(shaped)
        for i, record, score in zip(rows, group, shaped, strict=True):
            settled[i], scores[i] = record, float(score)
    return ShapedBatch(scores, settled, len(members), fallbacks, flat)
