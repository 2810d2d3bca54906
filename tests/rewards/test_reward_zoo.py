"""The reward zoo: its entries, the CoF entry unchanged, the verl entry's ``method``."""

from __future__ import annotations

import asyncio

import pytest

from cof_plugins.core.registry import RegistryError
from cof_plugins.rewards import zoo
from cof_plugins.rewards.cof_reward import RewardSettings, score_with_rules
from cof_plugins.verl.reward import compute_score


def test_the_zoo_lists_every_method_and_term():
    assert {
        "cof",
        "sifthinker",
        "sifthinker/format",
        "sifthinker/answer",
        "sifthinker/iou",
        "sifthinker/depth",
        "visual_rft",
        "visual_rft/iou",
        "visual_rft/confidence",
        "visual_rft/format",
    } <= set(zoo.REWARDS.names())
    with pytest.raises(RegistryError, match="did you mean 'sifthinker'"):
        zoo.REWARDS.get("sifthinkr")
    with pytest.raises(RegistryError, match="already registered"):
        zoo.REWARDS.register("cof", zoo.ZooEntry(print, "cof", "another"))


def test_cof_entry_is_the_cof_reward_unchanged():
    reply = "<think>easy</think> <answer>B</answer>"
    info = {"options": ["red", "blue"], "num_turns": 2}
    expected = score_with_rules("cof", reply, "B", info, RewardSettings(judge="off"))
    got = asyncio.run(compute_score("cof", reply, "B", info, judge="off"))
    assert got == expected.as_reward_dict() and got["score"] == pytest.approx(1.0)
    assert asyncio.run(compute_score("cof", reply, "B", info, method="cof", judge="off")) == got


def test_visual_rft_through_verl_with_either_ground_truth():
    reply = '<think>x</think><answer>[{"Position": [0, 0, 10, 10], "Confidence": 1.0}]</answer>'
    gt_string = "<answer>[{'Position': [0, 0, 10, 10], 'Confidence': 1}]</answer>"
    by_string = asyncio.run(compute_score("det", reply, gt_string, {}, method="visual_rft"))
    by_info = asyncio.run(
        compute_score("det", reply, "", {"gt_boxes": [[0, 0, 10, 10]]}, method="visual_rft")
    )
    assert by_string == by_info == {"score": 3.0, "iou": 1.0, "confidence": 1.0, "format": 1.0}
    term = asyncio.run(zoo.score("visual_rft/iou", "det", reply, gt_string))
    assert term == {"score": 1.0}
    with pytest.raises(ValueError, match="gt_boxes"):
        asyncio.run(zoo.score("visual_rft", "det", reply, "no boxes"))


def test_unknown_method_names_the_valid_ones():
    with pytest.raises(RegistryError, match="valid: cof"):
        asyncio.run(compute_score("x", "", "", {}, method="nope"))
