"""verl entry point of the CoF reward: ``reward.custom_reward_function.path=pkg://cof_plugins.verl.reward``
with ``name=compute_score``.

verl 0.9.1's reward loop calls this once per trajectory while rollouts stream in (no reward
manager sees a uid group), with ``solution_str`` the whole decoded response including the
tool turns, and ``extra_info`` holding the dataset's extra_info plus the agent loop's
``num_turns`` and tool fields. The returned dict's ``score`` becomes ``rm_scores``; every
other key is kept per trajectory as ``reward_extra_info``, where the V1 sampler
(``cof_plugins.verl.agar_sampler``) reads the facts to shape whole groups and where verl's
validation metrics pick up ``acc``.

It is async so that the judge's HTTP calls overlap inside the reward worker's event loop;
rule-only scoring returns without awaiting anything. Settings come from
``+reward.custom_reward_function.reward_kwargs.*`` (see ``RewardSettings``).

``reward_kwargs.method`` picks another entry of the reward zoo (``cof_plugins.rewards.zoo``):
``sifthinker`` (GRPO-SIF's four rewards summed, each term also returned) or ``visual_rft``;
the remaining kwargs are that entry's settings. Without it the CoF reward runs, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cof_plugins.rewards import zoo

# Host-added call arguments that are not reward settings (the reward model's router).
_HOST_KWARGS = ("reward_router_address", "reward_model_tokenizer")


async def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """Score one rollout with the zoo entry ``method`` (default ``cof``: 0.9*acc + 0.1*format
    and the facts as floats)."""
    settings = {k: v for k, v in kwargs.items() if k not in _HOST_KWARGS}
    method = settings.pop("method", "cof")
    return await zoo.score(method, data_source, solution_str, ground_truth, extra_info, **settings)
