"""Where a returned crop sits in SFT data, and moving it between the two layouts.

- ``next-user`` (default): the call ends the assistant turn; the crop comes back in the next
  user turn as ``<image>`` + the protocol suffix, exactly what RL and eval show the model.
- ``in-turn``: one assistant turn holds every call, each followed by its crop's ``<image>``
  and the continued thinking. The released CoF-SFT data may be laid out this way (its
  trainer masks image tokens inside trained turns).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from cof_plugins.data.rows import IMAGE

LAYOUTS = ("next-user", "in-turn")
_RUN = re.compile(f"(?:{re.escape(IMAGE)})+")  # one loop over a literal: linear

Message = dict[str, Any]


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown crop layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    return layout


def assemble(
    head: Sequence[Message],
    tool_turns: Sequence[str],
    final: str,
    layout: str,
    crop_turn: Callable[[int], str],
) -> list[Message]:
    """Messages for a trajectory: ``head`` (system, first user), calls, then the answer.

    ``tool_turns[k]`` is the assistant text that makes call k; one crop follows each.
    """
    check_layout(layout)
    messages = [dict(m) for m in head]
    if layout == "in-turn":
        parts = [f"{turn}\n{IMAGE}" for turn in tool_turns]
        messages.append({"role": "assistant", "content": "\n".join([*parts, final])})
        return messages
    for turn in tool_turns:
        messages.append({"role": "assistant", "content": turn})
        messages.append({"role": "user", "content": crop_turn(1)})
    messages.append({"role": "assistant", "content": final})
    return messages


def detect_layout(messages: Sequence[Mapping[str, Any]]) -> str:
    """``in-turn`` when any assistant turn holds an ``<image>``, else ``next-user``."""
    inside = any(
        m.get("role") == "assistant" and IMAGE in str(m.get("content", "")) for m in messages
    )
    return "in-turn" if inside else "next-user"


def to_in_turn(messages: Sequence[Mapping[str, Any]]) -> list[Message]:
    """Fold every crop-returning user turn (a later user turn) into the assistant turn."""
    out: list[Message] = []
    seen_user = False
    for m in messages:
        role, content = m.get("role"), str(m.get("content", ""))
        if role == "user" and seen_user and out and out[-1]["role"] == "assistant":
            out[-1]["content"] += "\n" + IMAGE * content.count(IMAGE)
            continue
        if role == "assistant" and out and out[-1]["role"] == "assistant":
            out[-1]["content"] += "\n" + content
            continue
        seen_user = seen_user or role == "user"
        out.append({"role": role, "content": content})
    return out


def to_next_user(
    messages: Sequence[Mapping[str, Any]], crop_turn: Callable[[int], str]
) -> list[Message]:
    """Split assistant turns at their ``<image>`` runs into assistant / user(crop) turns."""
    out: list[Message] = []
    for m in messages:
        role, content = m.get("role"), str(m.get("content", ""))
        if role != "assistant" or IMAGE not in content:
            out.append({"role": role, "content": content})
            continue
        cursor = 0
        for start, end, images in _image_runs(content):
            _assistant_piece(out, content[cursor:start])
            out.append({"role": "user", "content": crop_turn(images)})
            cursor = end
        _assistant_piece(out, content[cursor:])
    return out


def _assistant_piece(out: list[Message], piece: str) -> None:
    if piece.strip():
        out.append({"role": "assistant", "content": piece.strip("\n")})


def _image_runs(content: str) -> Iterator[tuple[int, int, int]]:
    """(start, end, count) of each run of ``<image>`` tags, with one newline on each side.

    ``str.find`` to the next tag, then one anchored match over the run: one pass over the
    text (a regex that starts with an optional newline cannot skip ahead: 0.1 s per MB).
    """
    at, previous_end = content.find(IMAGE), 0
    while at >= 0:
        end = _RUN.match(content, at).end()  # type: ignore[union-attr]
        count = (end - at) // len(IMAGE)
        start = at - 1 if at - 1 >= previous_end and content[at - 1 : at] == "\n" else at
        end += content.startswith("\n", end)
        yield start, end, count
        previous_end = end
        at = content.find(IMAGE, end)
