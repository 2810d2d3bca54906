"""Split verl's decoded response back into the assistant's own turns.

verl hands a reward function one string: the whole response (every assistant turn and every
tool turn between them) decoded with ``skip_special_tokens=True``. The tool turns carry the
CoF instruction, whose example ``<think>``/``<answer>``/``<tool_call>`` tags would count as
the model's own if the string were scored whole. verl 0.9.1 passes neither the messages nor
the response mask to ``compute_score``, so the turns are recovered from the text.

What survives decoding, checked against the chat template with a real tokenizer: each tool
turn becomes ``"\\nuser\\n" + tool text + "\\nassistant\\n"``; ``<|im_start|>``, ``<|im_end|>``
and the vision tokens vanish, the role names stay (they are ordinary tokens). The newline
before ``user`` depends on how the tool chunk was tokenised, so it is optional.

A tool turn is therefore a ``\\nassistant\\n`` marker plus the nearest ``user\\n`` before it
that starts a line (or follows ``</tool_call>``). Two hints make that robust when the model
writes such a line itself: the number of tool turns verl reports (``num_turns`` =
user + assistant turns + 1, so tool turns = (num_turns - 1) // 2) caps how many markers are
taken, preferring those whose body holds the protocol's ``user_suffix``; and a tool turn left
open at the end (no ``assistant`` after it) is cut off when its text starts the suffix.
``SplitResponse.consistent`` says whether the count matched, so a mismatch can be logged.

The response is model text, so the split is linear in its length and bounded: only the
first ``MAX_MARKERS`` ``assistant`` markers are taken (verl's turn limit is far lower), at
most ``MAX_ROLE_LINES`` ``user`` lines are tried per marker, each part of the text is
searched backwards at most once (a marker with no role line before it leaves a watermark),
and no slice is copied inside a loop.

Families whose role markers are single special tokens (GLM-4.1V: ``<|user|>``,
``<|assistant|>``) leave no role names behind: a tool turn reads ``"\\n" + line + "\\n" +
suffix + "\\n"``, where ``line`` is the tool's one-line message (empty for a crop, whose image
tokens vanish). ``split_by_suffix`` anchors on the instruction suffix the zoom tool ends
every reply with (at most ``MAX_MARKERS`` of them); the family spec says which layout
applies (``roles_in_decoded_text``).
"""

from __future__ import annotations

from dataclasses import dataclass

_END = "\nassistant\n"
_START = "user\n"
_AFTER_CALL = "</tool_call>"
# Enough of the suffix to recognise a tool turn whose tail was truncated.
_SUFFIX_PROBE = 40
MAX_MARKERS = 64
MAX_ROLE_LINES = 64


@dataclass(frozen=True)
class SplitResponse:
    """The assistant turns of one response, the tool-turn texts, and the expected count."""

    assistant: list[str]
    tool_turns: list[str]
    expected_tool_turns: int | None = None

    @property
    def consistent(self) -> bool:
        """False when verl's turn count disagrees with the tool turns found in the text."""
        return self.expected_tool_turns is None or self.expected_tool_turns == len(self.tool_turns)


def tool_turns_from_num_turns(num_turns: object) -> int | None:
    """Tool turns implied by verl's ``num_turns`` (user + assistant turns + 1); None if unknown."""
    try:
        value = int(num_turns)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return max(0, (value - 1) // 2) if value >= 1 else None


def split_response(
    text: str, *, user_suffix: str | None = None, expected_tool_turns: int | None = None
) -> SplitResponse:
    """Split a decoded multi-turn response into assistant turns (see the module docstring)."""
    if not isinstance(text, str):
        raise TypeError(f"split_response expects the decoded response as str, got {type(text)}")
    spans = _closed_tool_turns(text)
    if expected_tool_turns is not None and len(spans) > expected_tool_turns:
        spans = _prefer_suffix(text, spans, user_suffix, expected_tool_turns)
    assistant, tools, cursor = [], [], 0
    for start, body_start, body_end, end in spans:
        assistant.append(text[cursor:start].strip())
        tools.append(text[body_start:body_end])
        cursor = end
    last, open_tool = _cut_open_tool_turn(text[cursor:], user_suffix)
    assistant.append(last.strip())
    if open_tool is not None:
        tools.append(open_tool)
    return SplitResponse(assistant, tools, expected_tool_turns)


def split_by_suffix(
    text: str, *, user_suffix: str, expected_tool_turns: int | None = None
) -> SplitResponse:
    """Split a response whose role tokens vanished in decoding (see the module docstring)."""
    if not isinstance(text, str):
        raise TypeError(f"split_by_suffix expects the decoded response as str, got {type(text)}")
    if not user_suffix:
        raise ValueError("split_by_suffix needs the protocol's user_suffix")
    assistant, tools, cursor = [], [], 0
    anchor = "\n" + user_suffix
    at = text.find(anchor)
    limit = MAX_MARKERS if expected_tool_turns is None else min(expected_tool_turns, MAX_MARKERS)
    while at >= 0 and len(tools) < limit:
        start = text.rfind("\n", cursor, at)  # the newline the user-turn opener left
        body_end = at + len(anchor)
        if start < 0:
            at = text.find(anchor, body_end)
            continue
        assistant.append(text[cursor:start].strip())
        tools.append(text[start + 1 : body_end])
        cursor = body_end + (1 if text.startswith("\n", body_end) else 0)
        at = text.find(anchor, cursor)
    assistant.append(text[cursor:].strip())
    return SplitResponse(assistant, tools, expected_tool_turns)


def _closed_tool_turns(text: str) -> list[tuple[int, int, int, int]]:
    """(turn start, body start, body end, turn end) of every ``user ... assistant`` block."""
    spans: list[tuple[int, int, int, int]] = []
    cursor = searched = 0
    marker = text.find(_END)
    for _ in range(MAX_MARKERS):
        if marker < 0:
            break
        start = _turn_start(text, cursor, max(cursor, searched), marker)
        if start is not None:
            body_start = text.index(_START, start) + len(_START)
            spans.append((start, body_start, marker, marker + len(_END)))
            cursor = marker + len(_END)
        else:  # [searched, marker) holds no role line; only a "user\n" across ``marker`` may
            searched = max(searched, marker - len(_START) + 1)
        marker = text.find(_END, marker + 1)
    return spans


def _turn_start(text: str, lo: int, floor: int, hi: int) -> int | None:
    """Start of the ``user`` role line nearest before ``hi`` (turns start at ``lo`` or
    later; none starts in [lo, floor), already searched), or None when there is none."""
    at = text.rfind(_START, floor, hi)
    for _ in range(MAX_ROLE_LINES):
        if at < 0:
            return None
        if at == lo or text.startswith(_AFTER_CALL, at - len(_AFTER_CALL)):
            return at
        if text[at - 1] == "\n":
            return at - 1
        at = text.rfind(_START, floor, at)
    return None  # so many "user" strings before one marker: not a tool turn verl wrote


def _prefer_suffix(
    text: str, spans: list[tuple[int, int, int, int]], suffix: str | None, keep: int
) -> list[tuple[int, int, int, int]]:
    """Keep ``keep`` spans, those holding the instruction suffix first, in text order."""
    probe = (suffix or "")[:_SUFFIX_PROBE]

    def has_suffix(span: tuple[int, int, int, int]) -> bool:
        return bool(probe) and text.find(probe, span[1], span[2]) >= 0

    ranked = sorted(spans, key=lambda span: not has_suffix(span))  # stable: order kept within
    return sorted(ranked[:keep])


def _cut_open_tool_turn(tail: str, suffix: str | None) -> tuple[str, str | None]:
    """Split off a final tool turn that never reached ``assistant`` (its text starts the suffix)."""
    probe = (suffix or "")[:_SUFFIX_PROBE]
    if not probe:
        return tail, None
    at = tail.rfind(_START)
    for _ in range(MAX_ROLE_LINES):
        if at < 0:
            break
        body_at = at + len(_START)
        line_start = at == 0 or tail[at - 1] == "\n" or tail.endswith(_AFTER_CALL, 0, at)
        if line_start and _starts_suffix(tail, body_at, probe):
            return tail[:at], tail[body_at:]
        at = tail.rfind(_START, 0, at)
    return tail, None


def _starts_suffix(tail: str, at: int, probe: str) -> bool:
    """``tail[at:]`` starts with ``probe``, or is a non-empty beginning of it (cut off)."""
    rest = len(tail) - at
    if rest >= len(probe):
        return tail.startswith(probe, at)
    return rest > 0 and probe.startswith(tail[at:])
