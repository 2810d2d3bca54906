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
from collections.abc import Mapping
from typing import Any

from cof_plugins.core.parser import ZOOM_TOOL, extract_bbox, format_tool_call, load_lenient
from cof_plugins.core.protocol import Protocol
from cof_plugins.data.styles.common import (
    ConvertError,
    assemble_turns,
    carry_meta,
    image_paths,
    read_message,
)

_CALL = re.compile(r"<(grounding|tool_call)>(.*?)</\1>", re.S)
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
        return int(args["image_index"])
    source = str(args.get("source", "original_image")).strip().lower()
    if source in ("original_image", "original", "image", ""):
        return 0
    match = re.fullmatch(r"observation[_ ]?(\d+)", source)
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


def _rewrite_turn(text: str, regions: list[Region], i: int) -> str:
    """Replace every call in one assistant turn; appends each call's region to ``regions``."""

    def one(match: re.Match[str]) -> str:
        args = _arguments(match.group(2), match.group(1), i)
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

    return _CALL.sub(one, text)


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
            content = _rewrite_turn(content, regions, i)
        elif role == "user" and seen_user and content.strip().replace("<image>", "") == "":
            role = "observation"
        seen_user = seen_user or role == "user"
        out.append((role, content))
    return {
        "messages": assemble_turns(out, protocol, i),
        "images": image_paths(row.get("images"), i),
        "meta": carry_meta(row, "mini-o3"),
    }
