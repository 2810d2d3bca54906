r"""Mini-o3-style trajectories -> canonical: relative boxes, and crops of earlier crops.

Accepted input (JSON list or JSONL)::

    {"messages": [
       {"role": "user", "content": "<image>\nQuestion ..."},
       {"role": "assistant", "content": "<think>..</think>\n<grounding>{\"bbox_2d\":
           [0.10, 0.20, 0.50, 0.60], \"source\": \"original_image\"}</grounding>"},
       {"role": "user", "content": "<image>"},          # observation_1 (or role tool)
       {"role": "assistant", "content": "<think>..</think>\n<grounding>{\"bbox_2d\":
           [0.25, 0.25, 0.75, 0.75], \"source\": \"observation_1\"}</grounding>"},
       {"role": "user", "content": "<image>"},          # observation_2
       {"role": "assistant", "content": "<think>..</think><answer>B</answer>"}],
     "images": ["full.jpg", "obs1.jpg", "obs2.jpg"]}

Boxes are [0, 1] fractions of their ``source``: ``original_image`` or ``observation_N`` (the
N-th crop returned, 1-based); ``<tool_call>`` JSON with the same arguments (or an integer
``image_index``, 0 = original) is read as well. Observation N is taken to show exactly the box
of the N-th call. CoF always crops the frame, so each box is mapped back to a fraction of the
ORIGINAL (composing crop-of-crop regions) and written as a ``<tool_call>`` with rel1 boxes;
the runner (``data.convert``) then writes the family's convention. The crop images are kept
as they are: they show the region without CoF's 1.5x context, which is close but not
identical to what ``image_zoom_in_tool`` would return.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from cof_plugins.core.parser import (
    MAX_CALLS,
    ZOOM_TOOL,
    extract_bbox,
    format_tool_call,
    load_lenient,
)
from cof_plugins.core.protocol import Protocol
from cof_plugins.data.styles.common import (
    ConvertError,
    assemble_turns,
    carry_meta,
    image_paths,
    read_message,
)

_TAGS = ("grounding", "tool_call")
Region = tuple[float, float, float, float]
WHOLE: Region = (0.0, 0.0, 1.0, 1.0)


def compose(region: Region, box: Region) -> Region:
    """``box`` given as fractions of ``region`` -> fractions of the whole original."""
    x1, y1, x2, y2 = region
    w, h = x2 - x1, y2 - y1
    return (x1 + box[0] * w, y1 + box[1] * h, x1 + box[2] * w, y1 + box[3] * h)


def _source_index(args: Mapping[str, Any], i: int) -> int:
    """0 for the original, N for observation_N."""
    if "image_index" in args:
        index = args["image_index"]
        if isinstance(index, bool) or not isinstance(index, int | str):
            kind = type(index).__name__
            raise ConvertError(f"row {i}: image_index must be an integer, got a {kind}")
        text = str(index).strip() if isinstance(index, str) else None
        if text is not None and not (text.isdigit() and len(text) <= 9):
            raise ConvertError(f"row {i}: image_index must be an integer, got {text!r:.40}")
        return int(index)
    source = str(args.get("source", "original_image")).strip().lower()
    if source in ("original_image", "original", "image", ""):
        return 0
    match = re.fullmatch(r"observation[_ ]?(\d{1,9})", source)
    if not match:
        raise ConvertError(
            f"row {i}: unknown source {source!r}; use original_image or observation_N"
        )
    return int(match.group(1))


def _arguments(body: str, tag: str, i: int) -> Mapping[str, Any]:
    obj, error = load_lenient(body)
    if error is not None or not isinstance(obj, Mapping):
        raise ConvertError(f"row {i}: unreadable <{tag}> body {body.strip()!r}")
    args = obj.get("arguments", obj) if tag == "tool_call" else obj
    if isinstance(args, str):
        args = load_lenient(args)[0]
    if not isinstance(args, Mapping):
        raise ConvertError(f"row {i}: <{tag}> has no arguments object")
    return args


def rewrite_turn(text: str, regions: list[Region], i: int) -> str:
    """Replace every call in one assistant turn; appends each call's region to ``regions``."""

    def one(tag: str, body: str) -> str:
        args = _arguments(body, tag, i)
        box, error = extract_bbox(args)
        if error is not None:
            raise ConvertError(f"row {i}: {error}")
        src = _source_index(args, i)
        if not 0 <= src < len(regions):
            raise ConvertError(
                f"row {i}: a call crops observation_{src}, but only {len(regions) - 1} "
                "observations exist at that point"
            )
        region = compose(regions[src], tuple(box))  # type: ignore[arg-type]
        regions.append(region)
        rest = {k: v for k, v in args.items() if k not in ("bbox_2d", "source", "image_index")}
        return format_tool_call(ZOOM_TOOL, {"bbox_2d": [round(v, 4) for v in region], **rest})

    out, cursor = [], 0
    for n, (start, end, tag, body) in enumerate(_calls(text)):
        if n == MAX_CALLS:
            raise ConvertError(f"row {i}: an assistant turn holds more than {MAX_CALLS} calls")
        out += [text[cursor:start], one(tag, body)]
        cursor = end
    return "".join([*out, text[cursor:]])


def _calls(text: str) -> Iterator[tuple[int, int, str, str]]:
    """(start, end, tag, body) of each ``<grounding>``/``<tool_call>`` block, in order.

    A block runs from its opening tag to the first closing tag of the same name. With
    ``str.find`` only, each tag's next opener remembered until the scan passes it, and a tag
    whose closing tag never comes again not searched again: linear in the text, where the
    regex ``<(tag)>(.*?)</\\1>`` was quadratic in openers.
    """
    cursor, nearest = 0, {tag: text.find(f"<{tag}>") for tag in _TAGS}
    while True:
        for tag, at in nearest.items():
            if 0 <= at < cursor:
                nearest[tag] = text.find(f"<{tag}>", cursor)
        found = [(at, tag) for tag, at in nearest.items() if at >= 0]
        if not found:
            return
        start, tag = min(found)
        body_start = start + len(tag) + 2
        close = text.find(f"</{tag}>", body_start)
        if close < 0:
            nearest[tag] = -1  # no closing tag after here: no later opener of it closes
            continue
        cursor = close + len(tag) + 3
        yield start, cursor, tag, text[body_start:close]


def from_mini_o3(row: Any, i: int, protocol: Protocol) -> dict:
    """One Mini-o3 row -> canonical structure with rel1 boxes on the original."""
    if not isinstance(row, Mapping) or not isinstance(row.get("messages"), list):
        raise ConvertError(f"row {i}: expected an object with a 'messages' list")
    turns = [read_message(m, i, j) for j, m in enumerate(row["messages"])]
    regions: list[Region] = [WHOLE]
    seen_user = False
    out = []
    for role, content in turns:
        if role == "assistant":
            content = rewrite_turn(content, regions, i)
        elif role == "user" and seen_user and content.strip().replace("<image>", "") == "":
            role = "observation"
        seen_user = seen_user or role == "user"
        out.append((role, content))
    return {
        "messages": assemble_turns(out, protocol, i),
        "images": image_paths(row.get("images"), i),
        "meta": carry_meta(row, "mini-o3"),
    }
