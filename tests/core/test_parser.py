"""Tool-call parsing: the lenient forms models write, precise errors, and never raising."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cof_plugins.core.parser import (
    MAX_BOXED_CHARS,
    MAX_CALL_CHARS,
    MAX_CALLS,
    ParsedTurn,
    ToolCall,
    assistant_segments,
    extract_bbox,
    format_tool_call,
    last_boxed,
    parse_turn,
    read_call,
    tool_call_spans,
)

ZOOM = "image_zoom_in_tool"
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def only_call(text: str) -> ToolCall:
    turn = parse_turn(text)
    assert turn.errors == [], [e.message for e in turn.errors]
    assert len(turn.tool_calls) == 1
    return turn.tool_calls[0]


def only_error(text: str, **kwargs) -> str:
    turn = parse_turn(text, **kwargs)
    assert turn.tool_calls == []
    assert len(turn.errors) == 1
    return turn.errors[0].message


def test_full_turn_fields():
    text = (
        "<think> need a closer look </think>\n<answer>It is \\boxed{\\frac{1}{2}}</answer>"
        '<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 3, 4]}}'
        "</tool_call>"
    )
    turn = parse_turn(text)
    assert turn.think == "need a closer look"
    assert turn.answer == "It is \\boxed{\\frac{1}{2}}"
    assert turn.boxed == "\\frac{1}{2}"
    assert turn.tool_calls[0].bbox == (1.0, 2.0, 3.0, 4.0)
    assert turn.text == text
    assert turn.attempted_tool


def test_missing_parts_are_none():
    turn = parse_turn("just words <think> unclosed")
    assert (turn.think, turn.answer, turn.boxed) == (None, None, None)
    assert turn.tool_calls == [] and turn.errors == []
    assert not turn.attempted_tool


def test_boxed_falls_back_to_text_and_prefers_the_last():
    assert parse_turn("x \\boxed{1} then \\boxed{2}").boxed == "2"
    assert parse_turn("\\boxed{1} <answer>none here</answer>").boxed == "1"
    assert last_boxed("\\boxed{a{b}c} \\boxed{unclosed") == "a{b}c"
    assert last_boxed("\\boxed{never closed") is None


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [10, 20, 30, 40]}}',
        "{'name': 'image_zoom_in_tool', 'arguments': {'bbox_2d': [10, 20, 30, 40]}}",
        '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [10, 20, 30, 40],},}',
        '{"name": "image_zoom_in_tool", "arguments": "{\\"bbox_2d\\": [10, 20, 30, 40]}"}',
        '```json\n{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [10, 20, 30, 40]}}\n```',
        '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": "[10, 20, 30, 40]"}}',
        '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": "10,20,30,40"}}',
        '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [[10, 20], [30, 40]]}}',
        '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [[10, 20, 30, 40]]}}',
        '{"name": "image_zoom_in_tool", "arguments": {"bbox": [10, 20, 30, 40]}}',
        '{"name": "image_zoom_in_tool", "arguments": {"box": ["10", "20", "30.0", "40"]}}',
        "{'name': 'image_zoom_in_tool', 'arguments': {'bbox_2d': [10, 20, 30, 40], "
        "'label': None, 'strict': true}}",
    ],
)
def test_lenient_forms_give_the_same_box(body):
    call = only_call(f"<think>t</think> <tool_call>{body}</tool_call>")
    assert call.name == ZOOM
    assert call.bbox == (10.0, 20.0, 30.0, 40.0)
    assert call.raw == body


def test_missing_closing_tag_runs_to_end_or_next_call():
    body = '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 3, 4]}}'
    turn = parse_turn(f"<tool_call>{body} <tool_call>{body.replace('4]', '5]')}")
    assert [c.bbox for c in turn.tool_calls] == [(1, 2, 3, 4), (1, 2, 3, 5)]
    assert only_call(f"<tool_call>{body}\nI will wait for the crop.").bbox == (1, 2, 3, 4)


def test_every_call_of_the_turn_is_returned_in_order():
    calls = "".join(format_tool_call(ZOOM, {"bbox_2d": [i, i, i + 5, i + 5]}) for i in range(3))
    turn = parse_turn(calls)
    assert [c.bbox[0] for c in turn.tool_calls] == [0.0, 1.0, 2.0]


def test_unreadable_json_reports_position_and_expected_form():
    body = '{"name": "image_zoom_in_tool" "arguments": {}}'
    message = only_error(f"<tool_call>{body}</tool_call>")
    assert message.startswith("Your tool call could not be read: expected JSON like")
    assert '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [x1, y1, x2, y2]}}' in message
    assert "JSON error at char 30" in message
    assert "got '" in message and '"arguments"' in message


def test_unknown_tool_names_the_known_ones():
    body = '{"name": "zoom_in", "arguments": {"bbox_2d": [1, 2, 3, 4]}}'
    message = only_error(f"<tool_call>{body}</tool_call>")
    assert "unknown tool 'zoom_in'" in message
    assert "the known tool is image_zoom_in_tool" in message
    two = only_error(f"<tool_call>{body}</tool_call>", tool_names=(ZOOM, "ocr"))
    assert "the known tools are image_zoom_in_tool, ocr" in two


def test_other_known_tools_need_no_box():
    body = '{"name": "ocr", "arguments": {"lang": "en"}}'
    call = parse_turn(f"<tool_call>{body}</tool_call>", tool_names=(ZOOM, "ocr")).tool_calls[0]
    assert (call.name, call.arguments, call.bbox) == ("ocr", {"lang": "en"}, None)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"label": "cat"}', "no bbox_2d argument"),
        ('{"bbox_2d": [1, 2, 3]}', "3 values instead of 4"),
        ('{"bbox_2d": [1, "two", 3, 4]}', "not a number"),
        ('{"bbox_2d": [1, 2, 3, NaN]}', "not finite"),
        ('{"bbox_2d": [1, 2, 3, Infinity]}', "not finite"),
        ('{"bbox_2d": [true, 2, 3, 4]}', "not a number"),
        ('{"bbox_2d": 5}', "not a list of 4 numbers"),
    ],
)
def test_bad_boxes_become_errors(arguments, expected):
    message = only_error(f'<tool_call>{{"name": "{ZOOM}", "arguments": {arguments}}}</tool_call>')
    assert message.startswith(f"Your {ZOOM} call has")
    assert expected in message
    assert "[x1, y1, x2, y2]" in message


def test_a_400_digit_coordinate_is_a_helpful_error_not_a_crash():
    """The path the catch-all used to take (OverflowError); now a message, and no guard."""
    body = f'{{"name": "{ZOOM}", "arguments": {{"bbox_2d": [{"1" * 400}, 2, 3, 4]}}}}'
    expected = (
        f"Your {ZOOM} call has a bbox_2d with a value too large to be a coordinate "
        f'(got a 400-digit number). Expected JSON like {{"name": "{ZOOM}", "arguments": '
        '{"bbox_2d": [x1, y1, x2, y2]}} inside <tool_call></tool_call>.'
    )
    assert only_error(f"<tool_call>{body}</tool_call>") == expected
    assert read_call(body).message == expected  # unguarded: nothing was raised
    assert "too large" in read_call(body.replace("1" * 400, '"1e999"')).message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"<tool_call>{{{' ' * MAX_CALL_CHARS}}}</tool_call>", "characters long"),
        ("<tool_call>" * (MAX_CALLS + 5), f"more than {MAX_CALLS} tool calls"),
    ],
    ids=["call-too-long", "too-many-calls"],
)
def test_what_is_parsed_at_all_is_bounded(text, expected):
    turn = parse_turn(text)
    assert expected in turn.errors[-1].message
    assert len(turn.errors) <= MAX_CALLS + 1


def test_a_box_longer_than_the_bound_is_not_matched():
    fits = "x" * MAX_BOXED_CHARS
    assert last_boxed("\\boxed{" + fits + "}") == fits
    assert last_boxed("\\boxed{" + fits + "x}") is None
    assert last_boxed("\\boxed{B} and \\boxed{" + fits + "x}") == "B"


def test_code_fences_around_the_call_are_dropped():
    call = f'{{"name": "{ZOOM}", "arguments": {{"bbox_2d": [1, 2, 3, 4]}}}}'
    for fenced in (f"```json\n{call}\n```", f"```{call}```", f"```\n{call}", f"{call}\n```"):
        assert only_call(f"<tool_call>{fenced}</tool_call>").bbox == (1, 2, 3, 4)


def test_tool_call_spans_cover_what_parse_turn_reads():
    text = "a<tool_call>x</tool_call>b<tool_call>y<tool_call>z"
    spans = list(tool_call_spans(text))
    assert [text[s:e] for s, e in spans] == [
        "<tool_call>x</tool_call>",
        "<tool_call>y",
        "<tool_call>z",
    ]
    assert [e.raw for e in parse_turn(text).errors] == ["x", "y", "z"]


@pytest.mark.parametrize(
    "body",
    [
        "[1, 2]",
        '{"arguments": {}}',
        '{"name": "image_zoom_in_tool", "arguments": [1, 2, 3, 4]}',
        "",
    ],
)
def test_wrong_shapes_become_errors(body):
    message = only_error(f"<tool_call>{body}</tool_call>")
    assert "Your tool call could not be" in message
    assert "image_zoom_in_tool" in message


def test_extract_bbox_forms_and_alias_priority():
    assert extract_bbox({"bbox_2d": (1, 2, 3, 4)}) == ([1.0, 2.0, 3.0, 4.0], None)
    assert extract_bbox({"bbox_2d": "(1 2 3 4)"}) == ([1.0, 2.0, 3.0, 4.0], None)
    assert extract_bbox({"bbox_2d": [1, 2, 3, 4], "bbox": [9, 9, 9, 9]})[0] == [1, 2, 3, 4]
    box, error = extract_bbox({"bbox_2d": [1, 2, 3, float("nan")]})
    assert box is None and "not finite" in error
    box, error = extract_bbox({"bbox_2d": [[1, 2], 3, 4, 5]})
    assert box is None and "not a number" in error


def test_format_tool_call_is_canonical_and_round_trips():
    text = format_tool_call(ZOOM, {"bbox_2d": [10.0, 20, 30.5, 40], "label": "the red cup"})
    assert text == (
        "<tool_call>\n"
        '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [10, 20, 30.5, 40], '
        '"label": "the red cup"}}\n</tool_call>'
    )
    call = only_call(text)
    assert call.arguments == {"bbox_2d": [10, 20, 30.5, 40], "label": "the red cup"}
    assert isinstance(call.arguments["bbox_2d"][0], int)


@given(
    box=st.lists(st.integers(-5000, 5000) | st.floats(-1e6, 1e6), min_size=4, max_size=4),
    label=st.text(max_size=30),
)
@FAST
def test_round_trip_property(box, label):
    call = only_call(format_tool_call(ZOOM, {"bbox_2d": box, "label": label}))
    assert call.arguments["label"] == label
    assert call.bbox == tuple(float(v) for v in box)


def test_format_tool_call_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty string"):
        format_tool_call("", {})
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        format_tool_call(ZOOM, {"bbox_2d": [1, 2, 3, math.inf]})
    with pytest.raises(ValueError, match="mapping"):
        format_tool_call(ZOOM, [1, 2, 3, 4])


def test_assistant_segments_drop_user_and_tool_turns():
    instruction = "Answer as <think>...</think> <tool_call>...</tool_call>"
    messages = [
        {"role": "system", "content": "tools"},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": instruction}]},
        {"role": "assistant", "content": "<think>a</think><tool_call>{}</tool_call>"},
        {"role": "tool", "content": instruction},
        {"role": "assistant", "content": [{"type": "text", "text": "<answer>B</answer>"}]},
        {"from": "gpt", "value": "sharegpt turn"},
    ]
    segments = assistant_segments(messages)
    assert segments == [
        "<think>a</think><tool_call>{}</tool_call>",
        "<answer>B</answer>",
        "sharegpt turn",
    ]
    with pytest.raises(ValueError, match="message 0"):
        assistant_segments(["not a dict"])


def test_non_string_input_is_a_type_error():
    with pytest.raises(TypeError, match="str"):
        parse_turn(None)  # type: ignore[arg-type]


# --- never raises ---------------------------------------------------------------------------

_FRAGMENTS = [
    "<tool_call>",
    "</tool_call>",
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "\\boxed{",
    "{",
    "}",
    "[",
    "]",
    '"name"',
    "'name'",
    ": ",
    ", ",
    '"image_zoom_in_tool"',
    '"arguments"',
    '"bbox_2d"',
    "NaN",
    "1e999",
    "-",
    "null",
    "```json",
    "\\",
    '"',
    "(",
]

near_miss_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(["name", "arguments", "bbox_2d", "bbox", "x"]), inner)
    ),
    max_leaves=12,
)


@given(st.text(max_size=300))
@FAST
def test_never_raises_on_arbitrary_text(text):
    assert isinstance(parse_turn(text), ParsedTurn)


@given(st.lists(st.sampled_from(_FRAGMENTS) | st.text(max_size=5), max_size=40))
@FAST
def test_never_raises_on_tag_soup(parts):
    turn = parse_turn("".join(parts))
    assert all(e.message.startswith("Your ") for e in turn.errors)


@given(value=near_miss_json, cut=st.integers(0, 200))
@FAST
def test_never_raises_on_near_miss_calls(value, cut):
    body = json.dumps({"name": ZOOM, "arguments": value})
    for text in (f"<tool_call>{body}</tool_call>", f"<tool_call>{body[:cut]}"):
        turn = parse_turn(text)
        assert len(turn.tool_calls) + len(turn.errors) == 1
        for call in turn.tool_calls:
            assert len(call.bbox) == 4 and all(math.isfinite(v) for v in call.bbox)


def test_deep_nesting_is_an_error_not_a_crash():
    body = '{"name": "image_zoom_in_tool", "arguments": ' + "[" * 50_000
    assert len(parse_turn(f"<tool_call>{body}</tool_call>").errors) == 1


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": '
        "<|begin_of_box|>[10, 20, 300, 400]<|end_of_box|>}}</tool_call>",
        '<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": '
        '"<|begin_of_box|>[10, 20, 300, 400]<|end_of_box|>"}}</tool_call>',
    ],
)
def test_glm_box_markers_are_read_through(text):
    """GLM-4.1V wraps boxes in its box markers; the call still reads (marked or not)."""
    turn = parse_turn("<think>zoom</think>" + text)
    assert not turn.errors and turn.tool_calls[0].bbox == (10.0, 20.0, 300.0, 400.0)


def test_glm_boxed_answer_is_the_answer():
    turn = parse_turn("<think>ok</think><answer><|begin_of_box|>B<|end_of_box|></answer>")
    assert turn.answer == "B"
    assert turn.text.endswith("<|end_of_box|></answer>")  # the text itself is kept
