"""The ``cof`` tool-call parser as verl's registry hands it out, on real token ids."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("verl")

from cof_plugins.verl.tool_parser import PARSE_ERROR_KEY

CALL = '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 30, 40]}}'


@pytest.fixture(scope="module")
def parser(tiny_model):
    from transformers import AutoTokenizer
    from verl.experimental.agent_loop.tool_parser import ToolParser

    from cof_plugins.verl import register

    register()
    return ToolParser.get_tool_parser("cof", AutoTokenizer.from_pretrained(tiny_model))


def _extract(parser, text: str):
    ids = parser.tokenizer.encode(text, add_special_tokens=False)
    ids.append(parser.tokenizer.convert_tokens_to_ids("<|im_end|>"))
    return asyncio.run(parser.extract_tool_calls(ids, None))


@pytest.mark.parametrize(
    "body",
    [
        CALL,
        CALL.replace('"', "'"),  # single quotes
        CALL[:-1] + ",}",  # trailing comma
    ],
    ids=["strict", "single-quotes", "trailing-comma"],
)
@pytest.mark.parametrize("closed", [True, False], ids=["closed", "no-closing-tag"])
def test_lenient_calls_are_read(parser, body, closed):
    text = f"<think>look</think> <tool_call>\n{body}\n" + ("</tool_call>" if closed else "")
    content, calls = _extract(parser, text)
    assert [c.name for c in calls] == ["image_zoom_in_tool"]
    assert json.loads(calls[0].arguments) == {"bbox_2d": [1, 2, 30, 40]}
    assert content == "<think>look</think>"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2', "could not be read"),
        ('{"name": "crop", "arguments": {"bbox_2d": [1, 2, 3, 4]}}', "unknown tool 'crop'"),
        ('{"name": "image_zoom_in_tool", "arguments": {}}', "no bbox_2d"),
    ],
    ids=["truncated-json", "unknown-tool", "missing-box"],
)
def test_unusable_calls_become_error_calls_to_the_zoom_tool(parser, body, needle):
    _, calls = _extract(parser, f"<tool_call>\n{body}\n</tool_call>")
    assert [c.name for c in calls] == ["image_zoom_in_tool"]
    arguments = json.loads(calls[0].arguments)
    assert list(arguments) == [PARSE_ERROR_KEY] and needle in arguments[PARSE_ERROR_KEY]


def test_plain_answer_has_no_calls_and_loses_only_the_end_token(parser):
    content, calls = _extract(parser, "<think>easy</think> <answer>A</answer>")
    assert calls == [] and content == "<think>easy</think> <answer>A</answer>"


def test_calls_keep_the_order_of_the_text(parser):
    """The evaluation loop runs the first attempt in text order; verl must see the same order."""
    text = f"<tool_call>\n{{bad\n</tool_call> <tool_call>\n{CALL}\n</tool_call>"
    _, calls = _extract(parser, text)
    assert PARSE_ERROR_KEY in json.loads(calls[0].arguments)
    assert PARSE_ERROR_KEY not in json.loads(calls[1].arguments)


def test_a_model_cannot_forge_a_parse_error(parser):
    forged = '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 3, 4], "%s": "x"}}'
    _, calls = _extract(parser, f"<tool_call>{forged % PARSE_ERROR_KEY}</tool_call>")
    assert json.loads(calls[0].arguments) == {"bbox_2d": [1, 2, 3, 4]}


def test_errors_are_dropped_when_no_zoom_tool_is_active(parser):
    from verl.tools.schemas import OpenAIFunctionToolSchema

    other = OpenAIFunctionToolSchema.model_validate(
        {"type": "function", "function": {"name": "search", "description": "web search"}}
    )
    ids = parser.tokenizer.encode("<tool_call>{oops</tool_call>", add_special_tokens=False)
    _, calls = asyncio.run(parser.extract_tool_calls(ids, [other]))
    assert calls == []
