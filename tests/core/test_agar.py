"""AGAR: the tier table in every group situation and its ordering properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cof_plugins.core.agar import AgarTiers, RolloutFacts, agar_group

DIRECT_RIGHT = RolloutFacts(correct=True, used_tool=False, format_ok=True)
DIRECT_RIGHT_BAD_FMT = RolloutFacts(correct=True, used_tool=False, format_ok=False)
ZOOM_RIGHT = RolloutFacts(correct=True, used_tool=True, format_ok=True)
ZOOM_RIGHT_BAD_FMT = RolloutFacts(correct=True, used_tool=True, format_ok=False)
ZOOM_WRONG = RolloutFacts(correct=False, used_tool=True, format_ok=True)
ZOOM_WRONG_BAD_FMT = RolloutFacts(correct=False, used_tool=True, format_ok=False)
DIRECT_WRONG = RolloutFacts(correct=False, used_tool=False, format_ok=True)
DIRECT_WRONG_BAD_FMT = RolloutFacts(correct=False, used_tool=False, format_ok=False)

ALL_WRONG = [ZOOM_WRONG, ZOOM_WRONG_BAD_FMT, DIRECT_WRONG, DIRECT_WRONG_BAD_FMT]


def test_some_direct_correct_row():
    group = [DIRECT_RIGHT, ZOOM_RIGHT, *ALL_WRONG]
    assert agar_group(group) == [1.0, 0.8, 0.5, 0.5, 0.1, 0.0]


def test_only_zoom_correct_row():
    group = [ZOOM_RIGHT, ZOOM_RIGHT_BAD_FMT, *ALL_WRONG]
    assert agar_group(group) == [1.0, 1.0, 0.5, 0.5, 0.1, 0.0]


def test_all_wrong_row():
    assert agar_group(ALL_WRONG) == [0.5, 0.5, 0.1, 0.0]


def test_correct_ignores_format():
    # A badly formatted direct success still switches the group to the "direct correct" row.
    assert agar_group([DIRECT_RIGHT_BAD_FMT, ZOOM_RIGHT]) == [1.0, 0.8]


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ([DIRECT_RIGHT] * 6, [1.0] * 6),
        ([ZOOM_RIGHT] * 3 + [DIRECT_RIGHT], [0.8, 0.8, 0.8, 1.0]),
        ([ZOOM_RIGHT, DIRECT_WRONG, DIRECT_WRONG_BAD_FMT], [1.0, 0.1, 0.0]),
        ([DIRECT_WRONG, ZOOM_WRONG], [0.1, 0.5]),
        ([DIRECT_RIGHT, DIRECT_WRONG], [1.0, 0.1]),
        ([ZOOM_RIGHT], [1.0]),
        ([], []),
    ],
)
def test_mixed_groups(group, expected):
    assert agar_group(group) == expected


def test_custom_tiers():
    tiers = AgarTiers(
        direct_correct=0.9,
        zoom_correct_when_direct_correct=0.6,
        zoom_correct=0.95,
        zoom_wrong=0.3,
        direct_wrong_format_ok=0.05,
        direct_wrong_bad_format=0.01,
        zoom_wrong_bad_format=0.2,
    )
    group = [DIRECT_RIGHT, ZOOM_RIGHT, *ALL_WRONG]
    assert agar_group(group, tiers) == [0.9, 0.6, 0.3, 0.2, 0.05, 0.01]
    assert agar_group([ZOOM_RIGHT, ZOOM_WRONG_BAD_FMT], tiers) == [0.95, 0.2]


def test_from_dict_builds_and_rejects_unknown_keys():
    tiers = AgarTiers.from_dict({"zoom_wrong": 0.4, "zoom_wrong_bad_format": 0.25})
    assert (tiers.zoom_wrong, tiers.zoom_wrong_bad_format, tiers.direct_correct) == (0.4, 0.25, 1.0)
    with pytest.raises(ValueError, match="unknown AGAR tier") as info:
        AgarTiers.from_dict({"zoom_penalty": 0.1, "direct_correct": 1.0})
    assert "zoom_penalty" in str(info.value)
    assert "valid tiers: direct_correct, zoom_correct_when_direct_correct" in str(info.value)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("zoom_wrong", 1.5, r"\[0, 1\]"),
        ("direct_correct", -0.1, r"\[0, 1\]"),
        ("zoom_correct", float("nan"), r"\[0, 1\]"),
        ("zoom_correct", "0.8", "number"),
        ("direct_wrong_format_ok", True, "number"),
        ("zoom_wrong_bad_format", 2.0, r"\[0, 1\]"),
        ("direct_correct", None, "number"),
    ],
)
def test_invalid_tiers_rejected(field, value, message):
    with pytest.raises(ValueError, match=f"AgarTiers.{field} must.*{message}"):
        AgarTiers(**{field: value})
    with pytest.raises(ValueError, match=field):
        AgarTiers.from_dict({field: value})


def test_facts_must_be_bools():
    with pytest.raises(TypeError, match=r"RolloutFacts.correct must be a bool, got 0.9"):
        RolloutFacts(correct=0.9, used_tool=False, format_ok=True)  # type: ignore[arg-type]


facts_strategy = st.builds(RolloutFacts, st.booleans(), st.booleans(), st.booleans())


def _rank(fact: RolloutFacts) -> int:
    """The intended order: direct right > zoom right > zoom wrong > direct wrong > bad format."""
    if fact.correct:
        return 4 if not fact.used_tool else 3
    if fact.used_tool:
        return 2
    return 1 if fact.format_ok else 0


@given(st.lists(facts_strategy, min_size=1, max_size=8))
@settings(max_examples=200, deadline=None)
def test_ordering_within_any_group(group):
    scores = agar_group(group)
    assert len(scores) == len(group)
    for fact_a, score_a in zip(group, scores, strict=True):
        for fact_b, score_b in zip(group, scores, strict=True):
            if _rank(fact_a) == 4 and _rank(fact_b) == 3:
                assert score_a >= score_b
            elif _rank(fact_a) > _rank(fact_b) and _rank(fact_a) <= 3:
                assert score_a > score_b
            if _rank(fact_a) == _rank(fact_b) and fact_a.correct:
                assert score_a == score_b


@given(st.lists(facts_strategy, min_size=1, max_size=8))
@settings(max_examples=100, deadline=None)
def test_zoom_penalised_only_when_a_direct_answer_succeeds(group):
    direct_won = any(f.correct and not f.used_tool for f in group)
    for fact, score in zip(group, agar_group(group), strict=True):
        if fact.correct and fact.used_tool:
            assert score == (0.8 if direct_won else 1.0)
