"""Visual-RFT's detection rewards against hand-computed values."""

from __future__ import annotations

import json

import pytest

from cof_plugins.rewards.vrft import (
    confidence_reward,
    format_reward,
    iou_reward,
    parse_detections,
    score_vrft,
)

GT = [[0, 0, 10, 10], [20, 20, 30, 30]]


def answer(*dets) -> str:
    items = [{"Position": list(box), "Confidence": c} for box, c in dets]
    return f"<think>boxes</think><answer>{json.dumps(items)}</answer>"


def test_iou_and_confidence_by_hand():
    # [0,0,10,5] vs gt0: 50/100 = 0.5, not above 0.5 -> unmatched
    # [20,20,30,29] vs gt1: 90/100 = 0.9 -> matched
    # [50,50,60,60]: no overlap -> unmatched
    text = answer(([0, 0, 10, 5], 0.9), ([20, 20, 30, 29], 0.8), ([50, 50, 60, 60], 0.3))
    # IoU: 0.9 / max(|GT| = 2, |pred| = 3) = 0.3
    assert iou_reward(text, GT) == pytest.approx(0.3)
    # confidence: ((1 - 0.9) + 0.8 + (1 - 0.3)) / 3 = 1.6 / 3
    assert confidence_reward(text, GT) == pytest.approx(1.6 / 3)


def test_greedy_order_is_by_confidence():
    # [0,0,10,9] (c 0.9) goes first and takes gt0 with IoU 0.9; [0,0,10,10] (c 0.6) then
    # finds gt0 used and gt1 disjoint -> unmatched.
    text = answer(([0, 0, 10, 10], 0.6), ([0, 0, 10, 9], 0.9))
    assert iou_reward(text, GT) == pytest.approx(0.9 / 2)  # over max(2, 2)
    assert confidence_reward(text, GT) == pytest.approx((0.9 + (1 - 0.6)) / 2)


def test_duplicates_count_once_and_a_perfect_answer_scores_three():
    text = answer((GT[0], 1.0), (GT[0], 1.0), (GT[1], 1.0))
    assert len(parse_detections(text)) == 2
    assert score_vrft(text, GT) == {"score": 3.0, "iou": 1.0, "confidence": 1.0, "format": 1.0}


def test_unreadable_answers_score_zero():
    for text in ("<answer>none</answer>", "<answer>[]</answer>", "<answer>[1, 2]</answer>",
                 '<answer>[{"Position": [0, 0, 1], "Confidence": 1}]</answer>',
                 '<answer>[{"Position": [0, 0, 1, 1], "Confidence": true}]</answer>',
                 "<answer>" + "[" * 100000 + "</answer>"):  # fmt: skip
        assert iou_reward(text, GT) == 0.0 and confidence_reward(text, GT) == 0.0


def test_a_cut_off_list_keeps_its_finished_entries():
    # As the release: drop the unfinished entry and close the list.
    text = '<answer>[{"Position": [0, 0, 10, 10], "Confidence": 1}, {"Position": [20, 2'
    assert [d.box for d in parse_detections(text)] == [(0, 0, 10, 10)]
    assert iou_reward(text, GT) == pytest.approx(1 / 2)


def test_format_is_think_then_answer_and_nothing_else():
    assert format_reward("<think>a</think>\n <answer>b</answer>") == 1.0
    assert format_reward("<think>a</think><answer>b</answer> ") == 0.0
    assert format_reward("<think>a</think>x<answer>b</answer>") == 0.0
    assert format_reward("<answer>b</answer>") == 0.0
    assert format_reward("<think></answer>") == 0.0
