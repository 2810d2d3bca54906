"""Group shaping on real DataProto rows, verl's own GRPO estimator, and the V1 sampler."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from verl import DataProto
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage
from verl.trainer.ppo.v1 import replay_buffer
from verl.trainer.ppo.v1 import utils as v1_utils
from verl.utils.import_utils import load_extern_type
from verl.utils.tensordict_utils import list_of_dict_to_tensordict

import cof_plugins.verl.agar_sampler as sampler_mod
from cof_plugins.core.agar import AgarTiers
from cof_plugins.rewards import REWARD_MODES, ShapingConfig
from cof_plugins.verl.agar_sampler import CofReplayBuffer, last_token_scores, shape_proto

# (uid, correct, used_tool, format_ok)
DC, ZC, ZW = (True, False, True), (True, True, True), (False, True, True)
DW_OK, DW_BAD, ZW_BAD = (False, False, True), (False, False, False), (False, True, False)


def rows(spec, acc_weight=0.9, format_weight=0.1, width=8, judge=None) -> DataProto:
    """DataProto rows as verl holds them: raw score on the last response token, facts as columns."""
    n = len(spec)
    lengths = [width - (i % 3) for i in range(n)]  # ragged responses, right padding
    mask = torch.zeros(n, width, dtype=torch.long)
    for i, length in enumerate(lengths):
        mask[i, :length] = 1
    raw = [acc_weight * c + format_weight * f for _, c, _, f in spec]
    cols = {
        "uid": np.array([s[0] for s in spec], dtype=object),
        "acc": np.array([float(s[1]) for s in spec]),
        "used_tool": np.array([float(s[2]) for s in spec]),
        "format_ok": np.array([float(s[3]) for s in spec]),
        "num_tool_calls": np.array([float(s[2]) * 2 for s in spec]),
    }
    for key, values in (judge or {}).items():
        cols[key] = np.array([float(v) for v in values])
    scores = last_token_scores(raw, mask)
    return DataProto.from_dict(
        tensors={"token_level_scores": scores, "response_mask": mask}, non_tensors=cols
    )


def shaped(data: DataProto, **config) -> list[float]:
    rewards, _ = shape_proto(data, ShapingConfig.from_dict(config))
    return [round(v, 6) for v in rewards.sum(-1).tolist()]


def advantages(data: DataProto, rewards: torch.Tensor) -> torch.Tensor:
    adv, _ = compute_grpo_outcome_advantage(
        rewards, data.batch["response_mask"], data.non_tensor_batch["uid"]
    )
    return adv


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ([DC, ZC, ZW, DW_OK, DW_BAD, ZW_BAD], [1.0, 0.8, 0.5, 0.1, 0.0, 0.5]),  # direct correct
        ([ZC, ZW, DW_OK, DW_BAD], [1.0, 0.5, 0.1, 0.0]),  # only zoom correct
        ([ZW, DW_OK, DW_BAD, ZW_BAD], [0.5, 0.1, 0.0, 0.5]),  # all wrong
    ],
)
def test_paper_table(group, expected):
    data = rows([("u", *g) for g in group])
    assert shaped(data) == expected


def test_reward_sits_on_last_response_token():
    data = rows([("u", *DC), ("u", *ZW), ("u", *DW_OK)])
    rewards, _ = shape_proto(data, ShapingConfig())
    mask = data.batch["response_mask"]
    for i in range(len(data)):
        last = int(mask[i].nonzero().max())
        assert rewards[i, last] == rewards[i].sum() and rewards[i, last + 1 :].abs().sum() == 0


def test_interleaved_groups_are_scored_apart():
    data = rows([("a", *ZC), ("b", *DC), ("a", *ZW), ("b", *ZC), ("a", *DW_OK), ("b", *ZW)])
    # a: only zoom correct -> zoom correct 1.0; b: a direct answer succeeded -> zoom 0.8
    assert shaped(data) == [1.0, 1.0, 0.5, 0.8, 0.1, 0.5]


def test_verl_grpo_on_shaped_rewards():
    data = rows([("a", *DC), ("solo", *ZC), ("a", *ZC), ("flat", *ZW), ("flat", *ZW_BAD)])
    rewards, _ = shape_proto(data, ShapingConfig())
    adv = advantages(data, rewards)
    assert not torch.isnan(adv).any()
    mask = data.batch["response_mask"].bool()
    first = adv[torch.arange(len(data)), mask.float().argmax(1)]
    assert first[0] > 0 > first[2]  # direct correct beats zoom correct when a direct one won
    assert first[3] == first[4] == 0  # equal AGAR scores (0.5, 0.5): no signal, no NaN
    # verl gives a group of one mean 0, std 1: its advantage is its own score, not 0.
    assert first[1] == pytest.approx(1.0, rel=1e-5)


def test_format_weight_change_keeps_tiers():
    """The release found the 0.1 tier by raw == 0.1; facts make the weights irrelevant."""
    spec = [("u", *ZW), ("u", *DW_OK), ("u", *DW_BAD)]
    assert shaped(rows(spec, 0.8, 0.2)) == shaped(rows(spec)) == [0.5, 0.1, 0.0]
    tiers = {"direct_wrong_format_ok": 0.2, "zoom_wrong": 0.4}
    assert shaped(rows(spec, 0.8, 0.2), tiers=tiers) == [0.4, 0.2, 0.0]


def test_other_modes():
    spec = [("u", *DC), ("u", *ZC), ("u", *ZW), ("u", *DW_BAD)]
    assert shaped(rows(spec), mode="grpo") == [1.0, 1.0, 0.1, 0.0]
    assert shaped(rows(spec), mode="tool_bonus", tool_bonus=0.5) == [1.0, 1.5, 0.1, 0.0]


def test_judge_fallback_resettles_the_whole_group_with_rules():
    judge = {
        "judge_used": [1, 1, 0, 1, 1],
        "judge_fallback": [0, 1, 0, 0, 0],
        "rule_acc": [0, 0, 1, 1, 0],
    }
    spec = [("g", *ZC), ("g", *ZW), ("g", *DC), ("h", *ZC), ("h", *ZW)]
    data = rows(spec, judge=judge)
    rewards, metrics = shape_proto(data, ShapingConfig(mode="grpo"))
    # group g fell back: its judged members take their rule verdicts (0 and 0), scale 0.9
    assert [round(v, 6) for v in rewards.sum(-1).tolist()] == [0.1, 0.1, 1.0, 1.0, 0.1]
    assert metrics["cof/judge/group_fallbacks_total"] == 1.0
    assert metrics["cof/judge/fallbacks_total"] == 1.0 and metrics["cof/judge/calls_total"] == 4.0


def test_reward_modes_are_one_registry(monkeypatch):
    """Shaping looks the mode up by name: a registered shaper is what a group gets, a taken
    name is refused, and a typo lists the valid modes."""
    import cof_plugins.rewards.shaping as shaping
    from cof_plugins.core.registry import Registry, RegistryError

    assert REWARD_MODES.names() == ["agar", "tool_bonus", "grpo"]
    with pytest.raises(RegistryError, match="'grpo' is already registered"):
        REWARD_MODES.register("grpo", lambda records, config: [0.0] * len(records))
    table = Registry("reward mode")
    table.register("rank", lambda records, config: [float(i) for i in range(len(records))])
    monkeypatch.setattr(shaping, "REWARD_MODES", table)
    spec = [("u", *DC), ("u", *ZC), ("v", *ZW)]
    assert shaped(rows(spec), mode="rank") == [0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="valid: rank"):
        ShapingConfig(mode="agar")


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="reward mode 'agr' \\(did you mean 'agar'\\?\\)"):
        ShapingConfig.from_dict({"mode": "agr"})
    with pytest.raises(ValueError, match="valid: mode, tiers"):
        ShapingConfig.from_dict({"tier": {}})
    with pytest.raises(ValueError, match="direct_correct_x"):
        ShapingConfig.from_dict({"tiers": {"direct_correct_x": 1.0}})
    assert ShapingConfig.from_dict({"tiers": {"zoom_wrong": 0.3}}).tiers == AgarTiers(
        zoom_wrong=0.3
    )


class MemoryKV:
    """In-memory stand-in for TransferQueue's kv API (tq.init needs a Ray cluster)."""

    def __init__(self) -> None:
        self.tags: dict[str, dict[str, dict]] = defaultdict(dict)
        self.values: dict[str, dict[str, dict]] = defaultdict(dict)

    def kv_list(self):
        return {p: {k: dict(t) for k, t in tags.items()} for p, tags in self.tags.items()}

    def kv_clear(self, partition_id, keys):
        for key in keys:
            self.tags[partition_id].pop(key, None)
            self.values[partition_id].pop(key, None)

    def kv_batch_put(self, keys, partition_id, fields=None, tags=None):
        for i, key in enumerate(keys):
            if tags is not None:
                self.tags[partition_id].setdefault(key, {}).update(tags[i])
            for name in () if fields is None else fields.keys():
                self.values[partition_id].setdefault(key, {})[name] = fields[name][i]

    def kv_batch_get(self, keys, partition_id, select_fields):
        store = self.values[partition_id]
        return list_of_dict_to_tensordict([{f: store[k][f] for f in select_fields} for k in keys])


def put_group(kv: MemoryKV, uid: str, group, length: int = 5) -> None:
    kv.tags["train"][uid] = {"is_prompt": True, "status": "finished", "global_steps": 0}
    for session, (correct, used_tool, fmt) in enumerate(group):
        raw = 0.9 * correct + 0.1 * fmt
        n = length + session  # ragged, stored as verl's agent loop stores it
        info = {"score": raw, "acc": float(correct), "used_tool": float(used_tool),
                "format_ok": float(fmt), "num_tool_calls": float(used_tool)}  # fmt: skip
        mask = torch.ones(n, dtype=torch.long)
        mask[-1] = 0 if used_tool else 1  # a trailing masked token must not get the reward
        scores = torch.zeros(n)
        scores[-1] = raw
        kv.kv_batch_put(
            [f"{uid}_{session}_0"],
            "train",
            fields={"rm_scores": [scores], "response_mask": [mask],
                    "extra_fields": [{"reward_extra_info": info, "tool_rewards": []}]},
            tags=[{"status": "success"}],
        )  # fmt: skip


def test_sampler_reshapes_queue_and_logs_honest_metrics(monkeypatch):
    kv = MemoryKV()
    monkeypatch.setattr(replay_buffer, "tq", kv)
    monkeypatch.setattr(sampler_mod, "tq", kv)
    put_group(kv, "p1", [DC, ZC, ZW])
    put_group(kv, "p2", [ZW, DW_OK, ZC])
    buffer = CofReplayBuffer(
        trainer_mode="sync",
        trainer_config={},
        max_off_policy_threshold=None,
        max_off_policy_strategy="drop",
        sampler_kwargs={"cof_reward": {"mode": "agar"}},
        refill_fn=lambda n: None,
    )
    batch, metrics = buffer.sample(global_steps=1, partition_id="train", batch_size=2)
    assert sorted(batch.keys) == sorted(f"p{u}_{s}_0" for u in (1, 2) for s in range(3))
    got = kv.kv_batch_get(batch.keys, "train", ["rm_scores", "response_mask"])
    for key, scores, mask in zip(batch.keys, got["rm_scores"], got["response_mask"], strict=True):
        expected = {"p1_0_0": 1.0, "p1_1_0": 0.8, "p1_2_0": 0.5,
                    "p2_0_0": 0.5, "p2_1_0": 0.1, "p2_2_0": 1.0}[key]  # fmt: skip
        last = int(mask.nonzero().max())
        assert scores.sum().item() == pytest.approx(expected) and scores[last] == scores.sum()
    raw = np.mean([1.0, 1.0, 0.1, 0.1, 0.1, 1.0])
    assert metrics["cof/score/mean"] == pytest.approx(raw)  # the reward's own score
    assert metrics["cof/agar_score/mean"] == pytest.approx(np.mean([1, 0.8, 0.5, 0.5, 0.1, 1]))
    assert metrics["cof/acc/mean"] == pytest.approx(0.5)
    assert metrics["cof/tool_use/rate"] == pytest.approx(4 / 6)
    assert metrics["cof/acc/direct"] == pytest.approx(0.5)
    assert metrics["cof/acc/zoom"] == pytest.approx(0.5)
    # verl's own aggregator (what the trainer logs) keeps every name and value
    aggregator = v1_utils.MetricsAggregator()
    aggregator.add_step_metrics(metrics, sample_count=len(batch.keys))
    logged = aggregator.get_aggregated_metrics()
    for name, value in metrics.items():
        assert logged[name] == pytest.approx(value), name


def test_validation_batches_stay_raw(monkeypatch):
    kv = MemoryKV()
    monkeypatch.setattr(replay_buffer, "tq", kv)
    monkeypatch.setattr(sampler_mod, "tq", kv)
    put_group(kv, "v1", [ZW, DW_OK])
    kv.tags["val"], kv.values["val"] = kv.tags.pop("train"), kv.values.pop("train")
    # loaded the way verl's trainer loads trainer.v1.sampler.custom_sampler, DictConfig kwargs
    cls = load_extern_type("pkg://cof_plugins.verl.agar_sampler", "CofReplayBuffer")
    kwargs = OmegaConf.create({"cof_reward": {"mode": "tool_bonus", "tool_bonus": 0.3}})
    buffer = cls("sync", {}, None, "drop", kwargs, refill_fn=lambda n: None)
    assert buffer.shaping == ShapingConfig(mode="tool_bonus", tool_bonus=0.3)
    batch, metrics = buffer.sample(global_steps=1, partition_id="val", batch_size=1)
    got = kv.kv_batch_get(batch.keys, "val", ["rm_scores"])["rm_scores"]
    assert [round(r.sum().item(), 6) for r in got] == [0.1, 0.1] and metrics == {}
