"""The ``cof`` tool-call parser as verl's registry hands it out, on real token ids."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

pytest.importorskip("verl")

from cof_plugins.core.parser import MAX_CALLS
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


def test_decoding_and_parsing_run_off_the_event_loop(parser, monkeypatch):
    """The agent loop's event loop serves every rollout: it must never wait on parsing."""
    threads = {}

    def spy(name, original):
        def wrapped(*args):
            threads[name] = threading.current_thread()
            return original(*args)

        return wrapped

    monkeypatch.setattr(parser, "decode", spy("decode", parser.decode))
    monkeypatch.setattr(parser, "parse_text", spy("parse", parser.parse_text))

    async def on_the_loop():
        threads["loop"] = threading.current_thread()
        ids = parser.tokenizer.encode(f"<tool_call>{CALL}</tool_call>", add_special_tokens=False)
        return await parser.extract_tool_calls(ids, None)

    _, calls = asyncio.run(on_the_loop())
    assert [c.name for c in calls] == ["image_zoom_in_tool"]
    assert threads["decode"] is not threads["loop"] and threads["parse"] is not threads["loop"]


def test_content_past_the_calls_read_is_dropped(parser):
    text = "lead " + f"<tool_call>{CALL}</tool_call> mid " * (MAX_CALLS + 3) + "tail"
    content, calls = parser.parse_text(text, ("image_zoom_in_tool",))
    assert content.startswith("lead") and "<tool_call>" not in content and "tail" not in content
    assert len(calls) == MAX_CALLS + 1  # the calls read, then one error for the rest
