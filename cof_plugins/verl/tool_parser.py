"""The ``cof`` tool-call parser for verl's agent loop (``multi_turn.format: cof``).

verl's default ``hermes`` parser drops a call whose JSON does not parse or whose closing tag
is missing: the turn then has no call, the trajectory ends, and the model never learns what
was wrong. This parser reads calls with ``core.parser`` (lenient: single quotes, trailing
commas, a missing ``</tool_call>``) and turns every call it still cannot use into a call to
the zoom tool whose arguments hold only the parser's message under ``PARSE_ERROR_KEY``.
``ZoomInTool`` answers such a call with that message, a step penalty and a next turn.

Calls come in the order the text holds them, readable or not, exactly as the evaluation loop
sees them (``ParsedTurn.attempts``): verl runs the first ``max_parallel_calls`` of them, which
the recipe sets from the zoom tool's profile (1 for "first"; ``cof validate`` checks it).

Decoding and parsing run together in a worker thread, never on the agent loop's event loop:
parsing is linear and bounded (see ``core.parser``), but a long response still costs
milliseconds that every other rollout on the loop would wait for.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

from verl.experimental.agent_loop.tool_parser import FunctionCall, ToolParser

from cof_plugins.core.families import FAMILIES
from cof_plugins.core.parser import (
    MAX_CALLS,
    ZOOM_TOOL,
    ToolCall,
    ToolCallError,
    parse_turn,
    tool_call_spans,
)

# Reserved argument key: "this call could not be read; here is what to tell the model".
PARSE_ERROR_KEY = "_cof_parse_error"

log = logging.getLogger(__name__)


class CofToolParser(ToolParser):
    """Lenient ``<tool_call>{json}</tool_call>`` reader that never drops an attempt silently."""

    async def extract_tool_calls(
        self, responses_ids: list[int], tools: Sequence[Any] | None = None
    ) -> tuple[str, list[FunctionCall]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.decode_and_parse, responses_ids, tools)

    def decode_and_parse(
        self, responses_ids: list[int], tools: Sequence[Any] | None = None
    ) -> tuple[str, list[FunctionCall]]:
        """``extract_tool_calls``'s work, run in a worker thread."""
        return self.parse_text(self.decode(responses_ids), tool_names(tools))

    def decode(self, responses_ids: list[int]) -> str:
        """Decode keeping special tokens (tags must survive), then drop the end-of-turn marks.

        The marks are the tokenizer's eos and pad and every family's stop tokens (GLM-4.1V
        ends its turn with ``<|user|>``).
        """
        text = self.tokenizer.decode(responses_ids, skip_special_tokens=False)
        ends = [t for t in (self.tokenizer.eos_token, self.tokenizer.pad_token) if t]
        ends += [t for spec in FAMILIES.specs() for t in spec.tokens.stop if t not in ends]
        changed = True
        while changed:
            changed = False
            for end in ends:
                stripped = text.rstrip()
                if stripped.endswith(end):
                    text, changed = stripped[: -len(end)], True
        return text

    def parse_text(self, text: str, names: Sequence[str]) -> tuple[str, list[FunctionCall]]:
        """(assistant content without the call blocks, calls to run) for one turn's text."""
        if "<tool_call>" not in text:
            return text, []
        turn = parse_turn(text, tool_names=tuple(names))
        calls = [_as_function_call(a, names) for a in turn.attempts]
        if len(turn.errors) and ZOOM_TOOL not in names:
            log.warning(
                "dropping %d unreadable tool call(s): no %s to report them",
                len(turn.errors),
                ZOOM_TOOL,
            )
        return _without_calls(text).strip(), [c for c in calls if c is not None]


def _without_calls(text: str) -> str:
    """The text less its ``<tool_call>`` blocks, the blocks ``parse_turn`` read; past the
    ``MAX_CALLS`` that it reads, the rest of the text is dropped too."""
    kept, cursor = [], 0
    for n, (start, end) in enumerate(tool_call_spans(text)):
        kept.append(text[cursor:start])
        cursor = end
        if n == MAX_CALLS:
            return "".join(kept)
    kept.append(text[cursor:])
    return "".join(kept)


def tool_names(tools: Sequence[Any] | None) -> tuple[str, ...]:
    """Names of the active tools (verl passes ``OpenAIFunctionToolSchema`` objects)."""
    if not tools:
        return (ZOOM_TOOL,)
    names = []
    for tool in tools:
        function = getattr(tool, "function", None)
        if function is None and isinstance(tool, dict):
            function = tool.get("function", {})
        name = getattr(function, "name", None) or (function or {}).get("name")
        if name:
            names.append(name)
    return tuple(names) or (ZOOM_TOOL,)


def _as_function_call(attempt: ToolCall | ToolCallError, names: Sequence[str]):
    """A readable call as it is; an unreadable one as a zoom call carrying the parser's message."""
    if isinstance(attempt, ToolCall):
        return _function_call(attempt.name, _without_reserved(attempt.arguments))
    if ZOOM_TOOL not in names:
        return None
    return _function_call(ZOOM_TOOL, {PARSE_ERROR_KEY: attempt.message})


def _without_reserved(arguments: dict) -> dict:
    """A model must not be able to smuggle a fake parse error through a readable call."""
    return {k: v for k, v in arguments.items() if k != PARSE_ERROR_KEY}


def _function_call(name: str, arguments: dict) -> FunctionCall:
    body = json.dumps(arguments, ensure_ascii=False, default=str)
    return FunctionCall(name=name, arguments=body)
