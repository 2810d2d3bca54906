"""Host-free reward logic: the per-rollout CoF score, group shaping (AGAR, tool bonus, GRPO),
and metrics that keep raw scores, facts and shaped scores apart. No trainer imports here;
``cof_plugins.verl.reward`` and ``cof_plugins.verl.agar_sampler`` wire it into verl."""

from cof_plugins.rewards.cof_reward import (
    Question,
    RewardSettings,
    RolloutReport,
    judge_for,
    question_from,
    score_rollout,
    score_with_rules,
)
from cof_plugins.rewards.metrics import shaping_metrics
from cof_plugins.rewards.segments import (
    SplitResponse,
    split_by_suffix,
    split_response,
    tool_turns_from_num_turns,
)
from cof_plugins.rewards.shaping import (
    REWARD_MODES,
    RolloutRecord,
    ShapedBatch,
    ShapingConfig,
    settle_group,
    shape_batch,
    shape_group,
)

__all__ = [
    "REWARD_MODES",
    "Question",
    "RewardSettings",
    "RolloutRecord",
    "RolloutReport",
    "ShapedBatch",
    "ShapingConfig",
    "SplitResponse",
    "judge_for",
    "question_from",
    "score_rollout",
    "score_with_rules",
    "settle_group",
    "shape_batch",
    "shape_group",
    "shaping_metrics",
    "split_by_suffix",
    "split_response",
    "tool_turns_from_num_turns",
]
