"""A V1 replay-buffer sampler that shapes rewards over complete uid groups (AGAR and friends).

Why a sampler. In verl 0.9.1 the reward loop scores one trajectory at a time while rollouts
stream (no reward manager ever holds a uid group), and the default V1 trainer hands the
advantage estimator only ``rm_scores`` and uids, never ``reward_extra_info``. The replay
buffer is the first place where whole groups exist together with their per-trajectory
facts: ``sample()`` returns only prompts whose every session has finished, and each
trajectory's ``extra_fields.reward_extra_info`` (acc, used_tool, format_ok, ... written by
``cof_plugins.verl.reward``) sits beside its ``rm_scores`` in TransferQueue. So this sampler
lets verl's own ReplayBuffer choose the batch, then rewrites ``rm_scores`` of the chosen
trajectories with the shaped score, which ``_compute_advantage`` reads next.

Rejected alternatives: a scalar carrying several facts decoded by a custom estimator
corrupts every score metric; an own TaskRunner/trainer means re-implementing verl's runner,
and a new ``trainer_mode`` name breaks the ``== "sync"`` checks in the trainer.

What this costs, and how metrics stay honest: verl logs ``critic/score/*`` from
``rm_scores``, so after shaping it shows the score GRPO trained on (the AGAR score in agar
mode). The raw CoF score stays untouched in ``reward_extra_info.score`` and is logged by this
sampler as ``cof/score/mean``, next to accuracy, tool use, calls per rollout, the shaped
score (``cof/<mode>_score/mean``) and judge totals: ``sample()``'s metrics dict is merged
into the step's logged metrics. Validation batches are never reshaped, so ``val-core/*``
metrics stay raw.

Limits: rewards must exist at sampling time, i.e. the streaming reward path (rule/judge
reward function, no colocated reward model). Multi-output agent loops are shaped on each
session's final output and the score is copied to its other outputs, as verl's GRPO does.

Config (``trainer.v1.sampler``): ``custom_sampler.path=pkg://cof_plugins.verl.agar_sampler``,
``custom_sampler.name=CofReplayBuffer`` (sync trainer) or ``CofReplayBufferAsync`` (async
trainers), and ``+sampler_kwargs.cof_reward={mode: agar|tool_bonus|grpo, tiers: {...},
tool_bonus: 0.2, acc_weight: 0.9, fallback_policy: rules}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import transfer_queue as tq
from omegaconf import DictConfig, OmegaConf
from transfer_queue import KVBatchMeta
from verl import DataProto
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer, ReplayBufferAsync
from verl.utils import tensordict_utils as tu

from cof_plugins.rewards.metrics import shaping_metrics
from cof_plugins.rewards.shaping import RolloutRecord, ShapingConfig, shape_batch

CONFIG_KEY = "cof_reward"
INFO_KEYS = (
    "acc", "format_ok", "used_tool", "num_tool_calls", "rule_acc", "rule_decided",
    "judge_used", "judge_fallback", "tool_count_parsed", "split_consistent",
)  # fmt: skip


def last_token_scores(scores: Sequence[float], response_mask: torch.Tensor) -> torch.Tensor:
    """Token-level rewards: each score on its row's last response token (mask 1), else 0.

    A row whose mask is all zero keeps its score on the last position, so no score is lost.
    """
    mask = response_mask.bool()
    out = torch.zeros(mask.shape, dtype=torch.float32)
    width = mask.size(1)
    flipped_last = mask.flip(1).float().argmax(dim=1)
    last = torch.where(mask.any(dim=1), width - 1 - flipped_last, width - 1)
    out[torch.arange(mask.size(0)), last] = torch.tensor(list(scores), dtype=torch.float32)
    return out


def records_from_proto(data: DataProto) -> tuple[list[RolloutRecord], list[dict[str, Any]]]:
    """Per-row records from ``token_level_scores`` and the reward_extra_info columns."""
    raw = data.batch["token_level_scores"].sum(dim=-1).tolist()
    columns = {k: data.non_tensor_batch[k] for k in INFO_KEYS if k in data.non_tensor_batch}
    infos = [{k: col[i] for k, col in columns.items()} for i in range(len(raw))]
    return [RolloutRecord.from_info(r, info) for r, info in zip(raw, infos, strict=True)], infos


def shape_proto(data: DataProto, config: ShapingConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """New token-level rewards for a DataProto of rollouts grouped by ``non_tensor_batch['uid']``.

    The pure core of the sampler: it needs no TransferQueue, so it is tested on real
    DataProto rows and can feed verl's GRPO estimator directly.
    """
    records, infos = records_from_proto(data)
    raw = [r.raw_score for r in records]
    shaped = shape_batch(list(data.non_tensor_batch["uid"]), records, config)
    rewards = last_token_scores(shaped.scores, data.batch["response_mask"])
    return rewards, shaping_metrics(shaped, raw, infos, config.mode)


def shaping_config(sampler_kwargs: Any) -> ShapingConfig:
    """The ``cof_reward`` block of ``trainer.v1.sampler.sampler_kwargs`` (defaults: AGAR)."""
    if sampler_kwargs is None:
        return ShapingConfig()
    if isinstance(sampler_kwargs, DictConfig):
        sampler_kwargs = OmegaConf.to_container(sampler_kwargs, resolve=True)
    if not isinstance(sampler_kwargs, Mapping):
        raise ValueError(
            f"trainer.v1.sampler.sampler_kwargs must be a mapping, got {type(sampler_kwargs)}"
        )
    return ShapingConfig.from_dict(sampler_kwargs.get(CONFIG_KEY))


class _GroupShaping:
    """Mixin: after verl's sampler picks complete groups, rewrite their ``rm_scores``."""

    shaping: ShapingConfig

    def sample(
        self, global_steps: int, partition_id: str, batch_size: int
    ) -> tuple[KVBatchMeta, dict]:
        batch, metrics = super().sample(global_steps, partition_id, batch_size)  # type: ignore[misc]
        if partition_id != "val" and batch.keys:
            metrics.update(reshape_in_queue(batch, self.shaping))
        return batch, metrics


class CofReplayBuffer(_GroupShaping, ReplayBuffer):
    """Sync-trainer sampler (``trainer.v1.trainer_mode=sync``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shaping = shaping_config(self.sampler_kwargs)


class CofReplayBufferAsync(_GroupShaping, ReplayBufferAsync):
    """Async-trainer sampler (``colocate_async`` / ``separate_async``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shaping = shaping_config(self.sampler_kwargs)


_FIELDS = ["rm_scores", "response_mask", "extra_fields"]


def reshape_in_queue(batch: KVBatchMeta, config: ShapingConfig) -> dict[str, float]:
    """Read the batch's rewards and facts, shape per uid group, write ``rm_scores`` back."""
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=_FIELDS)
    scores, lengths = _padded(data["rm_scores"])
    mask, _ = _padded(data["response_mask"])
    finals, row_to_final = final_outputs(batch.keys)
    proto = _final_rows_proto(batch.keys, finals, scores, mask, list(data["extra_fields"]))
    rewards, metrics = shape_proto(proto, config)
    per_row = [float(rewards[j].sum()) for j in row_to_final]
    new_scores = last_token_scores(per_row, mask)
    if data["rm_scores"].is_nested:
        rows = [new_scores[i, :n] for i, n in enumerate(lengths)]
        new_scores = torch.nested.as_nested_tensor(rows, layout=torch.jagged)
    fields = tu.get_tensordict({"rm_scores": new_scores})
    tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=fields)
    return metrics


def _padded(values: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """(padded rows, row lengths) of a jagged nested tensor or a dense one."""
    if values.is_nested:
        return values.to_padded_tensor(0), values.offsets().diff().tolist()
    return values, [values.size(1)] * values.size(0)


def final_outputs(keys: Sequence[str]) -> tuple[list[int], list[int]]:
    """Rows holding each session's final output, and for every row its session's position."""
    best: dict[str, tuple[int, int]] = {}
    for row, key in enumerate(keys):
        uid, session, index = _split_key(key)
        session_key = f"{uid}_{session}"
        if session_key not in best or best[session_key][0] < index:
            best[session_key] = (index, row)
    order = {s: pos for pos, s in enumerate(best)}
    finals = [row for _, row in best.values()]
    return finals, [order["_".join(map(str, _split_key(k)[:2]))] for k in keys]


def _split_key(key: str) -> tuple[str, str, int]:
    parts = key.rsplit("_", 2)
    if len(parts) != 3:
        raise ValueError(f"trajectory key {key!r} is not '{{uid}}_{{session}}_{{index}}'")
    return parts[0], parts[1], int(parts[2])


def _final_rows_proto(
    keys: Sequence[str],
    finals: Sequence[int],
    scores: torch.Tensor,
    mask: torch.Tensor,
    extra_fields: Sequence[Any],
) -> DataProto:
    infos = [_reward_info(extra_fields[i], keys[i]) for i in finals]
    columns = {k: np.array([info.get(k, 0.0) for info in infos], dtype=object) for k in INFO_KEYS}
    columns["uid"] = np.array([_split_key(keys[i])[0] for i in finals], dtype=object)
    index = torch.tensor(list(finals), dtype=torch.long)
    return DataProto.from_dict(
        tensors={"token_level_scores": scores[index], "response_mask": mask[index]},
        non_tensors=columns,
    )


def _reward_info(extra: Any, key: str) -> Mapping[str, Any]:
    extra = getattr(extra, "data", extra)
    info = extra.get("reward_extra_info") if isinstance(extra, Mapping) else None
    if not isinstance(info, Mapping):
        raise KeyError(
            f"trajectory {key} has no reward_extra_info; the CoF sampler needs the streaming "
            "reward path with reward.custom_reward_function.path=pkg://cof_plugins.verl.reward"
        )
    return info
