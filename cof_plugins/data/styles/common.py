"""What every trajectory style shares: reading messages, crop turns, images and metadata.

Each style module turns one source row into the canonical structure with these helpers, so
role names, ``<image>`` parts, observation turns and carried metadata mean the same thing
whichever project the data came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cof_plugins.core.protocol import Protocol
from cof_plugins.data.rows import IMAGE

_ROLE = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "function_call": "call",
    "observation": "observation",
    "tool": "observation",
    "function": "observation",
    "ipython": "observation",
}
_META_KEYS = ("id", "answer", "ground_truth", "options", "kind", "category", "data_source")


class ConvertError(ValueError):
    """One row that cannot be converted; the message starts with ``row N:``."""


def read_message(m: Any, i: int, j: int) -> tuple[str, str]:
    """(normalised role, text) of message ``j`` of row ``i``; unknown roles are errors."""
    if not isinstance(m, Mapping):
        raise ConvertError(f"row {i}: message {j} is a {type(m).__name__}, not an object")
    role = m.get("role", m.get("from"))
    if role not in _ROLE:
        raise ConvertError(
            f"row {i}: message {j} has unknown role {role!r}; known: {sorted(_ROLE)}"
        )
    return _ROLE[role], _text(m.get("content", m.get("value")), i, j)


def _text(content: Any, i: int, j: int) -> str:
    """String content as is; OpenAI part lists become text with ``<image>`` per image part."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind in ("image", "image_url"):
                out.append(IMAGE)
            elif kind == "text":
                out.append(str(part.get("text", "")))
        return "".join(out)
    raise ConvertError(f"row {i}: message {j} content must be text or a list of parts")


def image_paths(images: Any, i: int) -> list[str]:
    """Image entries as path strings: strings, or dicts with image/path/url (file:// stripped)."""
    out = []
    for k, item in enumerate(images or []):
        if isinstance(item, Mapping):
            item = item.get("image") or item.get("path") or item.get("url")
        if not isinstance(item, str):
            raise ConvertError(
                f"row {i}: images[{k}] is not a path (embedded bytes are not supported here; "
                "write the images to files first)"
            )
        out.append(item.removeprefix("file://"))
    return out


def _is_observation(role: str, content: str, seen_user: bool) -> bool:
    return role == "observation" or (
        role == "user" and seen_user and content.lstrip().startswith("<tool_response>")
    )


def assemble_turns(turns: Sequence[tuple[str, str]], protocol: Protocol, i: int) -> list[dict]:
    """Map roles to system/user/assistant, crop turns to the protocol's, merge neighbours."""
    out: list[dict] = []
    seen_user = False
    for role, content in turns:
        if _is_observation(role, content, seen_user):
            n = content.count(IMAGE)
            role, content = "user", protocol.crop_user_turn(n) if n else content
        role = "assistant" if role == "call" else role
        if out and out[-1]["role"] == role and role != "system":
            out[-1]["content"] += "\n" + content
            continue
        seen_user = seen_user or role == "user"
        out.append({"role": role, "content": content})
    if not out or out[0]["role"] != "system":
        out.insert(0, {"role": "system", "content": protocol.system})
    return out


def carry_meta(row: Mapping[str, Any], source: str) -> dict:
    """The row's ``meta`` plus its known top-level fields; ``source`` names the style."""
    meta = dict(row.get("meta") or {})
    meta.update({k: row[k] for k in _META_KEYS if k in row and k not in meta})
    meta.setdefault("source", source)
    return meta
