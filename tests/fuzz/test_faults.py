"""Hostile and malformed text: every reader returns a well-formed result and never raises.

Each reader of ``testbed.adversarial.TARGETS`` runs on every hostile case (at 64 KB and at
the bounds), and hypothesis generates tool calls and answers with huge and non-finite
numbers (400-digit integers, 1e309, "nan"/"inf" as text), whitespace runs and deep nesting.
The tool-call reader is exercised without ``parse_turn``'s last guard (``read_call``), and
the guard is checked never to fire, so "never raises" does not rest on a catch-all.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cof_plugins.core.answers import MAX_ANSWER_CHARS, match_choice, match_short
from cof_plugins.core.options import OptionsError
from cof_plugins.core.parser import (
    MAX_CALL_CHARS,
    MAX_CALLS,
    ParsedTurn,
    ToolCall,
    ToolCallError,
    parse_turn,
    read_call,
)
from cof_plugins.data.styles.common import ConvertError
from cof_plugins.rewards.segments import SplitResponse
from cof_plugins.testbed.adversarial import CASES, DATA_READERS, OPTIONS, TARGETS

ZOOM = "image_zoom_in_tool"
SIZES = (64_000, MAX_ANSWER_CHARS, MAX_CALL_CHARS + 1, 7)
HYPOTHESIS = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
VERDICTS = (True, False, None)


def _finite_box(box: object) -> bool:
    return isinstance(box, tuple) and len(box) == 4 and all(math.isfinite(v) for v in box)


def _turn_ok(turn: object) -> bool:
    if not isinstance(turn, ParsedTurn):
        return False
    calls_ok = all(c.bbox is None or _finite_box(c.bbox) for c in turn.tool_calls)
    messages_ok = all(e.message.startswith("Your ") for e in turn.errors)
    return calls_ok and messages_ok and len(turn.tool_calls) + len(turn.errors) <= MAX_CALLS + 1


def _call_ok(result: object) -> bool:
    if isinstance(result, ToolCall):
        return result.bbox is None or _finite_box(result.bbox)
    return isinstance(result, ToolCallError) and result.message.startswith("Your ")


def _bbox_ok(result: object) -> bool:
    box, error = result  # type: ignore[misc]
    if error is not None:
        return box is None and isinstance(error, str)
    return len(box) == 4 and all(math.isfinite(v) for v in box)


def _choice_ok(result: object) -> bool:
    letters = set("ABCD")
    if isinstance(result, frozenset):
        return result <= letters and len(result) > 1
    return result is None or result == "" or (isinstance(result, str) and len(result) == 1)


def _messages_ok(result: object) -> bool:
    return all(m["role"] in ("assistant", "user") and isinstance(m["content"], str) for m in result)  # type: ignore[attr-defined]


# target -> what a well-formed result looks like
WELL_FORMED: dict[str, Callable[[object], bool]] = {
    "parse_turn": _turn_ok,
    "read_call": _call_ok,
    "load_lenient": lambda r: r[1] is None or (r[0] is None and isinstance(r[1], str)),  # type: ignore[index]
    "last_boxed": lambda r: r is None or isinstance(r, str),
    "extract_bbox": _bbox_ok,
    "format_ok": lambda r: isinstance(r, bool),
    "final_answer": lambda r: r is None or isinstance(r, str),
    "read_choice": _choice_ok,
    "match_choice": lambda r: r in VERDICTS,
    "match_short": lambda r: r in VERDICTS,
    "match_math": lambda r: r in VERDICTS,
    "split_response": lambda r: isinstance(r, SplitResponse) and len(r.assistant) >= 1,
    "parse_judgement": lambda r: r in VERDICTS,
    "layout.to_next_user": _messages_ok,
    "mini_o3.calls": lambda r: isinstance(r, str | ConvertError),
    "split_options": lambda r: isinstance(r, tuple | OptionsError),
}
READERS = {**TARGETS, **DATA_READERS}


def test_every_reader_has_a_check():
    assert set(WELL_FORMED) == set(READERS)


@pytest.mark.parametrize("target", sorted(READERS))
def test_every_reader_returns_a_well_formed_result_on_every_case(target):
    bad = []
    for name, build in CASES.items():
        for size in SIZES:
            result = READERS[target](build(size)[:size])
            if not WELL_FORMED[target](result):
                bad.append(f"{name}@{size}: {result!r:.80}")
    assert not bad


def test_the_last_guard_of_the_tool_call_reader_never_fires(caplog):
    caplog.set_level(logging.WARNING, logger="cof_plugins.core.parser")
    for build in CASES.values():
        for size in SIZES:
            text = build(size)[:size]
            parse_turn(text)
            parse_turn(f"<tool_call>{text[:MAX_CALL_CHARS]}</tool_call>")
    assert not caplog.records


# --- tool calls with huge, non-finite and deeply nested values ------------------------------

NUMBER_TEXTS = ["1e309", "-1e309", "nan", "NaN", "inf", "-Infinity", "1e999", "9" * 400, " 12 "]
huge_ints = st.integers(min_value=10**399, max_value=10**400) | st.integers(-(10**6), 10**6)
coordinates = st.one_of(
    huge_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NUMBER_TEXTS),
    st.text(max_size=8),
    st.none(),
    st.booleans(),
)
boxes = st.one_of(
    st.lists(coordinates, max_size=6),
    st.lists(st.lists(coordinates, max_size=4), max_size=3),
    coordinates,
)


@st.composite
def call_bodies(draw) -> str:
    """A call as a model might write it: JSON or Python literal, padded, nested, cut."""
    box = draw(boxes)
    for _ in range(draw(st.integers(0, 3))):
        box = [box]
    arguments = {draw(st.sampled_from(["bbox_2d", "bbox", "box", "x"])): box}
    call = {"name": draw(st.sampled_from([ZOOM, "crop", ""])), "arguments": arguments}
    style = draw(st.sampled_from(["json", "python", "string-args"]))
    if style == "python":
        body = repr(call)
    elif style == "string-args":
        body = json.dumps({"name": call["name"], "arguments": json.dumps(arguments)})
    else:
        body = json.dumps(call)
    pad = draw(st.text(alphabet=" \t\n", max_size=2000))
    nesting = draw(st.integers(0, 3000))
    body = pad + body.replace(", ", "," + pad, 1) + pad
    if nesting:
        body = body.replace("[", "[" * nesting, 1)
    return body[: draw(st.integers(1, len(body)))] if draw(st.booleans()) else body


@given(call_bodies())
@HYPOTHESIS
def test_read_call_never_raises_and_boxes_are_finite(body):
    result = read_call(body)  # no guard around it: any exception fails the test
    assert _call_ok(result)
    if isinstance(result, ToolCall) and result.name == ZOOM:
        assert _finite_box(result.bbox)


@given(st.lists(coordinates, min_size=4, max_size=4))
@HYPOTHESIS
def test_a_box_with_any_value_is_a_box_or_a_message(values):
    body = json.dumps({"name": ZOOM, "arguments": {"bbox_2d": values}})
    result = read_call(body)
    if isinstance(result, ToolCallError):
        assert result.message.startswith(f"Your {ZOOM} call has a bbox_2d")
    else:
        assert _finite_box(result.bbox)


# --- answers with huge numbers, whitespace runs and nesting ---------------------------------

FRAGMENTS = [
    "B", "(B)", "A", "C", " or ", ", ", "answer is ", "not ", "black", "white", "\\boxed{",
    "}", "(", ")", "[", "]", "**", "\n", "答案是", "Ｂ", "1e309", "nan", "inf", "9" * 400,
]  # fmt: skip
answers = st.lists(
    st.sampled_from(FRAGMENTS) | st.text(alphabet=" \t\n", min_size=1, max_size=500),
    max_size=30,
).map("".join)


@given(answers, st.sampled_from("ABCD"))
@HYPOTHESIS
def test_matchers_answer_true_false_or_undecided(answer, gold):
    assert match_choice(answer, gold, OPTIONS) in VERDICTS
    assert match_short(answer, "9" * 400) in VERDICTS


@given(answers, st.text(alphabet=" \t\n", max_size=300), st.text(alphabet=" \t\n", max_size=300))
@HYPOTHESIS
def test_whitespace_around_an_answer_changes_nothing(answer, before, after):
    assert match_choice(before + answer + after, "B", OPTIONS) == match_choice(answer, "B", OPTIONS)


@given(
    st.sampled_from("ABCD"),
    st.sampled_from("ABCD"),
    st.sampled_from([" or ", "/", ", ", " and ", " & ", " or maybe ", "? "]),
)
@HYPOTHESIS
def test_two_different_letters_are_never_right(first, second, joint):
    answer = f"{first}{joint}{second}"
    if first != second:
        assert match_choice(answer, first, OPTIONS) is None
        assert match_choice(answer, second, OPTIONS) is None
        neither = next(g for g in "ABCD" if g not in (first, second))
        assert match_choice(answer, neither, OPTIONS) is False


@given(
    st.sampled_from("ABCD"),
    st.sampled_from("ABCD"),
    st.sampled_from(["{}", "({})", "{}.", "**{}**", "\\boxed{{{}}}", "Answer: {}", "[{}]"]),
    st.integers(0, 40),
)
@HYPOTHESIS
def test_a_decorated_letter_is_right_exactly_when_it_is_the_gold(letter, gold, form, nesting):
    answer = "(" * nesting + form.format(letter) + ")" * nesting
    verdict = match_choice(answer, gold, OPTIONS)
    assert verdict is (letter == gold) if nesting == 0 else verdict in (letter == gold, None)


@given(huge_ints, huge_ints)
@HYPOTHESIS
def test_numbers_compare_exactly_however_large(a, b):
    assert match_short(str(a), str(b)) is (a == b)
    assert match_short(f"There are {a}.", str(a)) in (True, None)


def test_a_judge_reply_past_its_bound_is_not_read():
    from cof_plugins.judge.prompt import MAX_REPLY_CHARS, parse_judgement

    assert parse_judgement("Judgement: 1" + " " * MAX_REPLY_CHARS) is True  # stripped
    assert parse_judgement("Judgement: 1 " + "x" * MAX_REPLY_CHARS) is None
    assert parse_judgement("x" * 10 * MAX_REPLY_CHARS + "</think>Judgement: 0") is False
