"""Box geometry against numbers worked out by hand (arithmetic in the comments)."""

from __future__ import annotations

import pytest

from cof_plugins.rewards.geometry import (
    greedy_matches,
    hierarchical_iou,
    hungarian_iou,
    iou,
    is_full_image,
    union_iou,
)

# Full-height strips: IoU is the IoU of the x intervals.
G1, G2 = (0.0, 0.0, 0.4, 1.0), (0.4, 0.0, 1.0, 1.0)
P1, P2 = (0.0, 0.0, 0.7, 1.0), (0.0, 0.0, 0.2, 1.0)


def test_iou_by_hand():
    # [0,2]^2 vs [1,3]^2: intersection 1, union 4 + 4 - 1 = 7.
    assert iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert iou((0, 0, 1, 1), (1, 0, 2, 1)) == 0.0  # touching edges share no area
    assert iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0


def test_union_iou_counts_overlaps_once():
    # union A = 0.25 + 0.25 - 0.0625 = 0.4375 (= 7/16), all inside B = [0, .75]^2 (9/16).
    a = [(0, 0, 0.5, 0.5), (0.25, 0.25, 0.75, 0.75)]
    assert union_iou(a, [(0, 0, 0.75, 0.75)]) == pytest.approx(7 / 9)
    # B's two strips overlap on [0.5, 0.75]: union B = [0.25, 1] x [0, 1] = 0.75;
    # A = [0, 0.5] x [0, 1]; intersection [0.25, 0.5] = 0.25; union [0, 1] = 1.
    b = [(0.25, 0, 0.75, 1), (0.5, 0, 1, 1)]
    assert union_iou([(0, 0, 0.5, 1)], b) == pytest.approx(0.25)
    assert union_iou([], b) == 0.0


def test_hungarian_beats_greedy_by_hand():
    # IoU(P1,G1) = 0.4/0.7 = 4/7; IoU(P1,G2) = 0.3/1.0 = 0.3
    # IoU(P2,G1) = 0.2/0.4 = 0.5; IoU(P2,G2) = 0.
    # Best pairing P1-G2 + P2-G1 = 0.8, over min(2, 2) = 2 pairs -> 0.4. Greedy (P1 takes
    # its best G1 first, or the best pair overall first) gets 4/7 + 0 -> 2/7 = 0.2857.
    assert hungarian_iou([P1, P2], [G1, G2]) == pytest.approx(0.4)
    # Unequal sizes: one prediction, its best partner G1: 4/7 over min(1, 2) = 1.
    assert hungarian_iou([P1], [G1, G2]) == pytest.approx(4 / 7)


def test_hierarchical_iou_by_hand():
    # union P = [0, 0.7] (0.7), union G = [0, 1] (1.0): union IoU 0.7.
    # IoU* = (0.7 + 0.4) / 2 = 0.55.
    assert hierarchical_iou([P1, P2], [G1, G2]) == pytest.approx(0.55)
    assert hierarchical_iou([G1, G2], [G1, G2]) == pytest.approx(1.0)


def test_full_image_is_a_covering_union():
    assert is_full_image([(0, 0, 1, 1)])
    assert is_full_image([(0, 0, 0.5, 1), (0.5, 0, 1, 1)])  # two halves
    assert is_full_image([(0, 0, 0.995, 1)])  # within the 1 % tolerance
    assert not is_full_image([(0, 0, 0.9, 1)])
    assert not is_full_image([])


def test_greedy_matches_follow_confidence_and_the_threshold():
    gt = [(0, 0, 10, 10), (20, 20, 30, 30)]
    # IoU([0,0,10,5], gt0) = 50/100 = 0.5: not above 0.5, so unmatched (and gt0 stays free).
    # IoU([20,20,30,29], gt1) = 90/100 = 0.9: matched.
    pred = [(0, 0, 10, 5), (20, 20, 30, 29), (0, 0, 10, 10)]
    pairs = greedy_matches(pred, [0.9, 0.8, 0.3], gt)
    assert pairs == [(1, 1, pytest.approx(0.9)), (2, 0, 1.0)]
    # The more confident of two boxes on gt0 takes it, even with the lower IoU.
    pairs = greedy_matches([(0, 0, 10, 10), (0, 0, 10, 9)], [0.6, 0.9], gt)
    assert pairs == [(1, 0, pytest.approx(0.9))]
