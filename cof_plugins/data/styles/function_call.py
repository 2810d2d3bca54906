r"""LLaMA-Factory's sharegpt function-call format, read and written.

Accepted input (JSON list or JSONL, one trajectory per row)::

    {"conversations": [                       # or "messages"; from/value or role/content
       {"from": "human", "value": "<image>Question ..."},
       {"from": "function_call",              # optional thought text, then the call JSON
        "value": "<think>..</think>\n{\"name\": \"image_zoom_in_tool\", \"arguments\": {..}}"},
       {"from": "observation", "value": "<image>"},
       {"from": "gpt", "value": "<think>...</think><answer>B</answer>"}],
     "system": "...", "images": ["a.jpg", "crop1.jpg"]}

``to_function_call`` writes canonical rows back in this format (``cof data convert --to
function-call``). Text after a call in a function-call turn is not representable in that
format and is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cof_plugins.core.parser import format_tool_call, load_lenient, parse_turn
from cof_plugins.core.protocol import Protocol
from cof_plugins.data.styles.common import (
    ConvertError,
    assemble_turns,
    carry_meta,
    image_paths,
    read_message,
)


def from_function_call(row: Any, i: int, protocol: Protocol) -> dict:
    """One function-call row -> canonical structure (boxes untouched)."""
    if not isinstance(row, Mapping):
        raise ConvertError(f"row {i}: expected an object, got {type(row).__name__}")
    raw = row.get("conversations", row.get("messages"))
    if not isinstance(raw, list):
        raise ConvertError(f"row {i}: no 'conversations' (or 'messages') list")
    turns = [read_message(m, i, j) for j, m in enumerate(raw)]
    turns = [(r, _call_text(c, i) if r == "call" else c) for r, c in turns]
    if row.get("system"):
        turns.insert(0, ("system", str(row["system"])))
    return {
        "messages": assemble_turns(turns, protocol, i),
        "images": image_paths(row.get("images"), i),
        "meta": carry_meta(row, "function-call"),
    }


def _call_text(value: str, i: int) -> str:
    """A function_call value (optional thought, then a call object or list) -> assistant text."""
    thought, calls = split_call(value)
    if calls is None:
        raise ConvertError(f"row {i}: function_call value does not end with a JSON call: {value!r}")
    texts = []
    for call in calls if isinstance(calls, list) else [calls]:
        args = call.get("arguments", {}) if isinstance(call, Mapping) else None
        if isinstance(args, str):
            args = load_lenient(args)[0]
        if not isinstance(call, Mapping) or not isinstance(args, Mapping) or "name" not in call:
            raise ConvertError(
                f"row {i}: function_call needs {{'name', 'arguments'}}, got {call!r}"
            )
        texts.append(format_tool_call(call["name"], args))
    head = thought.strip()
    return (head + "\n" if head else "") + "\n".join(texts)


def split_call(value: str) -> tuple[str, Any]:
    """(thought, parsed JSON) where the JSON runs to the end of ``value``; (value, None) if none."""
    end = len(value.rstrip())
    decoder = json.JSONDecoder()
    for pos, ch in enumerate(value):
        if ch in "{[":
            try:
                obj, stop = decoder.raw_decode(value, pos)
            except ValueError:
                continue
            if stop == end:
                return value[:pos], obj
    return value, None


def to_function_call(row: Mapping[str, Any]) -> dict:
    """Canonical -> function-call style (calls as function_call turns, crops as observations)."""
    conversations, system = [], None
    for k, m in enumerate(row["messages"]):
        role, content = m["role"], m["content"]
        if role == "system":
            system = content
        elif role == "user":
            first = not any(c["from"] == "human" for c in conversations)
            conversations.append({"from": "human" if first else "observation", "value": content})
        else:
            conversations.append(_fc_assistant(content, k))
    out = {"conversations": conversations, "images": list(row.get("images", []))}
    if system is not None:
        out["system"] = system
    return out


def _fc_assistant(content: str, k: int) -> dict:
    turn = parse_turn(content)
    if not turn.tool_calls:
        return {"from": "gpt", "value": content}
    thought = content[: content.find("<tool_call>")].strip()
    calls = [{"name": c.name, "arguments": c.arguments} for c in turn.tool_calls]
    body = format_tool_call(calls[0]["name"], calls[0]["arguments"]).split("\n")[1]
    if len(calls) > 1:
        body = json.dumps(calls, ensure_ascii=False)
    return {"from": "function_call", "value": (thought + "\n" if thought else "") + body}
