r"""DeepEyes-style trajectories: OpenAI-style messages, crops returned by tool turns.

Accepted input (JSON list or JSONL, one trajectory per row)::

    {"messages": [                            # or "prompt"
       {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "..."}]},
       {"role": "assistant",
        "content": "<think>..</think><tool_call>{.. \"bbox_2d\": [..]}</tool_call>"},
       {"role": "tool", "content": "<image>"},  # or "observation", or a user turn that
                                                # starts with <tool_response>
       {"role": "assistant", "content": "<think>..</think><answer>..</answer>"}],
     "images": ["a.jpg", {"image": "crop.png"}]}

Boxes are absolute pixels of the frame the model saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cof_plugins.core.protocol import Protocol
from cof_plugins.data.styles.common import (
    ConvertError,
    assemble_turns,
    carry_meta,
    image_paths,
    read_message,
)


def from_deepeyes(row: Any, i: int, protocol: Protocol) -> dict:
    """One DeepEyes row -> canonical structure (boxes untouched)."""
    if not isinstance(row, Mapping):
        raise ConvertError(f"row {i}: expected an object, got {type(row).__name__}")
    raw = row.get("messages", row.get("prompt"))
    if not isinstance(raw, list):
        raise ConvertError(f"row {i}: no 'messages' (or 'prompt') list")
    turns = [read_message(m, i, j) for j, m in enumerate(raw)]
    return {
        "messages": assemble_turns(turns, protocol, i),
        "images": image_paths(row.get("images"), i),
        "meta": carry_meta(row, "deepeyes"),
    }
