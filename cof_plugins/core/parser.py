"""Read one assistant turn: its thinking, answer, boxed answer and every tool call.

Only the assistant's own text is ever parsed (see ``assistant_segments``): user and tool turns
carry the instruction suffix, whose example ``<tool_call>`` would otherwise count as a call.

Models write tool calls loosely, so a call is read in stages, strictest first: strict JSON,
then the first JSON object in the tag (trailing text, e.g. when ``</tool_call>`` is missing),
then with trailing commas removed, then as a Python literal (single quotes, ``True``) that
also knows ``true``/``false``/``null``. ``arguments`` may itself be a JSON string. Boxes are
read by ``extract_bbox``. What cannot be read becomes a ``ToolCallError`` whose message is
written for the model: what was wrong and the form expected. ``parse_turn`` never raises on
a string.

Decisions: ``think`` is the first complete ``<think>...</think>``, ``answer`` the last
complete ``<answer>...</answer>`` (``first_answer`` the first), ``boxed`` the last
``\\boxed{...}`` in the answer (else in the text). ``attempts`` holds every call, readable
or not, in text order, for hosts that run only the first call of a turn. Tool calls inside
``<think>`` are read too: the turn is the unit, as in the agent loop. A ``<tool_call>``
without its closing tag runs to the next ``<tool_call>`` or to the end of the text. Box
markers some families wrap boxes and answers in (GLM-4.1V's ``<|begin_of_box|>``) are
dropped before reading.

Model text is untrusted, so reading it is linear in its length and bounded: ``str.find`` and
slices find the tags; a call body longer than ``MAX_CALL_CHARS`` is an error without being
parsed; a turn's calls after the first ``MAX_CALLS`` are not read (one error says so); a
``\\boxed{`` is matched over at most ``MAX_BOXED_CHARS`` and the last ``MAX_BOXED_TRIES``
openers. No regex here has nested or adjacent unbounded quantifiers.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# BOX_KEYS and extract_bbox are part of this module's interface too (the tool and the data
# styles import them from here); they live in core.bbox with the number handling.
from cof_plugins.core.bbox import BOX_KEYS, extract_bbox, show, snip
from cof_plugins.core.families import strip_box_markers

ZOOM_TOOL = "image_zoom_in_tool"

# A real call is about 100 characters; the bounds leave room for verbose models.
MAX_CALL_CHARS = 4096
MAX_CALLS = 32
MAX_BOXED_CHARS = 2048
MAX_BOXED_TRIES = 16
MAX_LITERAL_CHARS = 1024

log = logging.getLogger(__name__)
_OPEN, _CLOSE = "<tool_call>", "</tool_call>"
_FENCE = "```"
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_LITERAL_NAMES = {"true": True, "false": False, "null": None, "none": None}


@dataclass(frozen=True)
class ToolCall:
    """One readable tool call; ``bbox`` is the normalised box when the arguments hold one."""

    name: str
    arguments: dict
    bbox: tuple[float, float, float, float] | None
    raw: str


@dataclass(frozen=True)
class ToolCallError:
    """A tool-call attempt that could not be used; ``message`` is meant for the model."""

    raw: str
    message: str


@dataclass(frozen=True)
class ParsedTurn:
    """Everything the reward and the agent loop need from one assistant turn."""

    think: str | None
    answer: str | None
    boxed: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    errors: list[ToolCallError] = field(default_factory=list)
    text: str = ""
    # Every attempt, readable or not, in the order the text holds them.
    attempts: list[ToolCall | ToolCallError] = field(default_factory=list)
    # The first complete <answer>...</answer> (what the release's evaluation scores).
    first_answer: str | None = None

    @property
    def attempted_tool(self) -> bool:
        """True when the turn holds any tool-call attempt, readable or not."""
        return bool(self.tool_calls or self.errors)


def parse_turn(text: str, *, tool_names: Sequence[str] = (ZOOM_TOOL,)) -> ParsedTurn:
    """Parse one assistant turn; never raises for a ``str`` input."""
    if not isinstance(text, str):
        raise TypeError(f"parse_turn expects the turn's text as str, got {type(text).__name__}")
    clean = strip_box_markers(text)
    answer = _last_between(clean, "<answer>", "</answer>")
    attempts = _attempts(clean, tuple(tool_names))
    calls = [a for a in attempts if isinstance(a, ToolCall)]
    errors = [a for a in attempts if isinstance(a, ToolCallError)]
    boxed = last_boxed(answer) if answer is not None else None
    return ParsedTurn(
        think=_first_between(clean, "<think>", "</think>"),
        answer=answer,
        boxed=boxed if boxed is not None else last_boxed(clean),
        tool_calls=calls,
        errors=errors,
        text=text,
        attempts=attempts,
        first_answer=_first_between(clean, "<answer>", "</answer>"),
    )


def _attempts(text: str, tool_names: tuple[str, ...]) -> list[ToolCall | ToolCallError]:
    """Every call of the turn in text order; past ``MAX_CALLS``, one error instead of more."""
    attempts: list[ToolCall | ToolCallError] = []
    for n, (start, end) in enumerate(tool_call_spans(text)):
        if n == MAX_CALLS:
            attempts.append(ToolCallError(text[start:end], _too_many(tool_names)))
            break
        body_end = end - len(_CLOSE) if text.endswith(_CLOSE, start + len(_OPEN), end) else end
        attempts.append(_read_call(text[start + len(_OPEN) : body_end], tool_names))
    return attempts


def _first_between(text: str, start: str, end: str) -> str | None:
    i = text.find(start)
    if i < 0:
        return None
    j = text.find(end, i + len(start))
    return None if j < 0 else text[i + len(start) : j].strip()


def _last_between(text: str, start: str, end: str) -> str | None:
    j = text.rfind(end)
    if j < 0:
        return None
    i = text.rfind(start, 0, j)
    return None if i < 0 else text[i + len(start) : j].strip()


def last_boxed(text: str) -> str | None:
    """Content of the last closed ``\\boxed{...}`` in ``text``, braces matched.

    An unclosed box can only be preceded by a box that closes before it starts, so each
    earlier candidate is scanned up to the later one. The scan is bounded: a box whose
    content runs past ``MAX_BOXED_CHARS`` counts as unclosed, and only the last
    ``MAX_BOXED_TRIES`` openers are tried.
    """
    limit = len(text)
    start = text.rfind("\\boxed{")
    for _ in range(MAX_BOXED_TRIES):
        if start < 0:
            return None
        depth = 0
        stop = min(limit, start + len("\\boxed{") + MAX_BOXED_CHARS + 1)
        for i in range(start + len("\\boxed"), stop):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                return text[start + len("\\boxed{") : i].strip()
        limit = start
        start = text.rfind("\\boxed{", 0, start)
    return None


def tool_call_spans(text: str) -> Iterable[tuple[int, int]]:
    """(start, end) of each ``<tool_call>`` block, tags included; an unclosed block runs to
    the next opener or to the end of the text. The agent loop removes these spans from the
    content, so what it removes is exactly what ``parse_turn`` read."""
    i = text.find(_OPEN)
    close = -1
    while i >= 0:
        body_start = i + len(_OPEN)
        nxt = text.find(_OPEN, body_start)
        if close < body_start:
            close = text.find(_CLOSE, body_start)
            if close < 0:
                close = len(text) + 1  # no closing tag anywhere after this point
        if close <= len(text) and (nxt < 0 or close < nxt):
            yield i, close + len(_CLOSE)
        else:
            yield i, nxt if nxt >= 0 else len(text)
        i = nxt


def _read_call(raw: str, tool_names: tuple[str, ...]) -> ToolCall | ToolCallError:
    try:
        return read_call(raw, tool_names)
    except Exception as exc:  # last guard only: tests run ``read_call`` without it
        log.warning("tool-call reader failed on model text: %r", exc)
        return ToolCallError(raw, _unreadable(raw, f"{type(exc).__name__}: {exc}", tool_names))


def read_call(raw: str, tool_names: Sequence[str] = (ZOOM_TOOL,)) -> ToolCall | ToolCallError:
    """One call body (the text between the tags) as a call, or an error for the model.

    Every failure that model text can cause is handled here, so ``parse_turn``'s guard
    around it is never reached; the fuzz tests call this function directly to keep it so.
    """
    names = tuple(tool_names)
    if len(raw) > MAX_CALL_CHARS:
        return ToolCallError(raw, _too_long(len(raw), names))
    obj, json_error = load_lenient(raw)
    if json_error is not None:
        return ToolCallError(raw, _unreadable(raw, json_error, names))
    return _to_call(obj, raw, names)


def load_lenient(raw: str) -> tuple[Any, str | None]:
    """Load a JSON-ish value; returns (value, None) or (None, the strict JSON error).

    Text longer than ``MAX_CALL_CHARS`` is not parsed at all (an error says so). JSON is
    read by the C decoder; Python's own parser, slower and not linear on every input, only
    sees a ``{...}`` or ``[...]`` of at most ``MAX_LITERAL_CHARS``.
    """
    if len(raw) > MAX_CALL_CHARS:
        return None, f"text of {len(raw)} characters; at most {MAX_CALL_CHARS} are read"
    body = _strip_fence(raw.strip())
    try:
        return json.loads(body), None
    except (ValueError, RecursionError) as exc:
        strict_error = _describe_json_error(exc)
    start = body.find("{")
    if start >= 0:
        try:  # the first JSON object, e.g. when text follows it
            return json.JSONDecoder().raw_decode(body, start)[0], None
        except (ValueError, RecursionError):
            pass
    for candidate in _literal_candidates(body, start):
        try:
            return _literal(candidate), None
        except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
            continue
    return None, strict_error


def _strip_fence(body: str) -> str:
    """Drop a markdown code fence around the body: "```json ... ```"."""
    if body.startswith(_FENCE):
        end_of_tag = len(_FENCE)
        while end_of_tag < len(body) and (body[end_of_tag].isalnum() or body[end_of_tag] in "_-"):
            end_of_tag += 1
        body = body[end_of_tag:]
    if body.endswith(_FENCE):
        body = body[: -len(_FENCE)]
    return body.strip()


def _literal_candidates(body: str, start: int) -> Iterable[str]:
    """Texts to read as Python literals: the body, then its first "{" to its last "}",
    trailing commas removed; only containers short enough for ``ast.parse``."""
    candidates = [body] if start < 0 else [body, body[start : body.rfind("}") + 1]]
    for candidate in candidates:
        text = candidate.strip()
        if text[:1] in ("{", "[") and len(text) <= MAX_LITERAL_CHARS:
            yield _TRAILING_COMMA.sub(r"\1", text)


def _literal(text: str) -> Any:
    """Evaluate a JSON or Python literal safely (no names but true/false/null/None)."""
    return _eval_node(ast.parse(text.strip(), mode="eval").body)


def _eval_node(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int | float | type(None)):
        return node.value
    if isinstance(node, ast.Name) and node.id.lower() in _LITERAL_NAMES:
        return _LITERAL_NAMES[node.id.lower()]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _eval_node(node.operand)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval_node(e) for e in node.elts]
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_eval_node(k): _eval_node(v) for k, v in zip(node.keys, node.values, strict=True)}
    raise ValueError(f"not a literal: {type(node).__name__}")


def _describe_json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"JSON error at char {exc.pos}: {exc.msg}"
    if isinstance(exc, RecursionError):
        return "JSON error: nested too deeply"
    if "integer string conversion" in str(exc):
        return "JSON error: a number with too many digits"
    return f"JSON error: {type(exc).__name__}"


def _to_call(obj: Any, raw: str, tool_names: tuple[str, ...]) -> ToolCall | ToolCallError:
    if not isinstance(obj, dict):
        return ToolCallError(raw, _wrong_shape(f"a JSON {type(obj).__name__}", tool_names))
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return ToolCallError(raw, _wrong_shape('an object without a "name" string', tool_names))
    if name not in tool_names:
        return ToolCallError(raw, _unknown_tool(name, tool_names))
    arguments = obj.get("arguments", {})
    if isinstance(arguments, str):
        arguments, error = load_lenient(arguments)
        if error is not None:
            return ToolCallError(
                raw, _wrong_shape(f'"arguments" as unreadable text ({error})', tool_names)
            )
    if not isinstance(arguments, dict):
        return ToolCallError(raw, _wrong_shape('"arguments" that is not an object', tool_names))
    return _with_box(name, arguments, raw, tool_names)


def call_from_arguments(
    name: str, arguments: Any, *, tool_names: Sequence[str] = (ZOOM_TOOL,)
) -> ToolCall | ToolCallError:
    """The call a host hands over as (name, arguments), read exactly as ``parse_turn`` reads it.

    verl parses the turn itself and gives a tool only the decoded arguments; this rebuilds
    the same ``ToolCall`` (or error) the evaluation loop gets from ``parse_turn``.
    """
    names = tuple(tool_names)
    raw = show({"name": name, "arguments": arguments})
    if name not in names:
        return ToolCallError(raw, _unknown_tool(str(name), names))
    if not isinstance(arguments, dict):
        return ToolCallError(raw, _wrong_shape('"arguments" that is not an object', names))
    try:
        return _with_box(name, arguments, raw, names)
    except Exception as exc:  # last guard only, as in _read_call
        log.warning("box reader failed on model text: %r", exc)
        return ToolCallError(raw, _unreadable(raw, f"{type(exc).__name__}: {exc}", names))


def _with_box(
    name: str, arguments: dict, raw: str, tool_names: tuple[str, ...]
) -> ToolCall | ToolCallError:
    needs_box = name == ZOOM_TOOL
    if not needs_box and not any(key in arguments for key in BOX_KEYS):
        return ToolCall(name, arguments, None, raw)
    box, error = extract_bbox(arguments)
    if error is not None:
        return ToolCallError(raw, f"Your {name} call has {error}. Expected {_example(tool_names)}.")
    return ToolCall(name, arguments, tuple(box), raw)  # type: ignore[arg-type]


def format_tool_call(name: str, arguments: Mapping[str, Any]) -> str:
    """The canonical tool-call text the data engine writes; ``parse_turn`` reads it back.

    Integral floats in the box are written as ints (``12.0`` -> ``12``): models emit
    integer pixels, and coords.from_frame_pixels returns floats.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"tool name must be a non-empty string, got {name!r}")
    if not isinstance(arguments, Mapping):
        raise ValueError(f"tool arguments must be a mapping, got {type(arguments).__name__}")
    args = dict(arguments)
    for key in BOX_KEYS:
        if isinstance(args.get(key), list | tuple):
            args[key] = [_int_if_integral(v) for v in args[key]]
    try:
        body = json.dumps({"name": name, "arguments": args}, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"tool arguments {arguments!r} are not JSON-serialisable: {exc}") from None
    return f"{_OPEN}\n{body}\n{_CLOSE}"


def _int_if_integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def assistant_segments(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """The assistant contents of a chat, in order; user/tool/system turns are dropped.

    Accepts OpenAI-style ``{"role", "content"}`` (content a string or a list of parts, whose
    text parts are joined) and ShareGPT-style ``{"from": "gpt", "value"}`` messages.
    """
    out = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ValueError(f"message {index} must be a mapping, got {type(message).__name__}")
        role = message.get("role", message.get("from"))
        if role in ("assistant", "gpt"):
            out.append(_content_text(message.get("content", message.get("value")), index))
    return out


def _content_text(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text", "") for p in content if isinstance(p, Mapping)]
        return "".join(t for t in texts if isinstance(t, str))
    raise ValueError(
        f"message {index}: content must be a string or a list of parts, "
        f"got {type(content).__name__}"
    )


def _example(tool_names: Sequence[str]) -> str:
    name = tool_names[0] if tool_names else ZOOM_TOOL
    return (
        f'JSON like {{"name": "{name}", "arguments": {{"bbox_2d": [x1, y1, x2, y2]}}}} '
        f"inside {_OPEN}{_CLOSE}"
    )


def _unreadable(raw: str, reason: str, tool_names: Sequence[str]) -> str:
    got = snip(raw.strip()) or "nothing"
    return (
        f"Your tool call could not be read: expected {_example(tool_names)}; "
        f"got {got!r} ({reason})."
    )


def _too_long(length: int, tool_names: Sequence[str]) -> str:
    return (
        f"Your tool call could not be read: it is {length} characters long; expected "
        f"{_example(tool_names)}, at most {MAX_CALL_CHARS} characters."
    )


def _too_many(tool_names: Sequence[str]) -> str:
    return (
        f"Your turn holds more than {MAX_CALLS} tool calls; only the first {MAX_CALLS} were "
        f"read. Make one call per turn: {_example(tool_names)}."
    )


def _wrong_shape(what: str, tool_names: Sequence[str]) -> str:
    return f"Your tool call could not be used: expected {_example(tool_names)}; got {what}."


def _unknown_tool(name: str, tool_names: Sequence[str]) -> str:
    if not tool_names:
        return f"Your tool call names {snip(name)!r}, but no tools are available in this turn."
    known = ", ".join(tool_names)
    noun = "the known tool is" if len(tool_names) == 1 else "the known tools are"
    return (
        f"Your tool call names an unknown tool {snip(name)!r}; {noun} {known}. "
        f"Expected {_example(tool_names)}."
    )
