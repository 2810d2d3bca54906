"""SIFThinker's single-turn format: prompts, the reply parser and the area writer.

A reply interleaves areas and text inside the thinking, then answers::

    <think><area>[{"bbox_2d":[x1,y1,x2,y2],"depth":d},...]</area><text>...</text>
    <area>...</area><text>...</text></think><answer>...</answer>

It starts with an area and ends with a text; boxes are fractions of the ORIGINAL image's
width and height (resize-proof, unlike Qwen2.5-VL's absolute frame pixels), x2 > x1,
y2 > y1; d in [0, 1] is the mean depth inside the box (``core.depth``: 0 = nearest); every
number has at most three decimals. An area may hold several boxes. Nothing is cropped or
fed back: the boxes are text.

``parse_sif`` reads model text, which is untrusted: it never raises, runs in time linear
in the text (one forward scan; each area is one ``json.loads``) and returns what it could
read plus a list of problems, so the rewards can score boxes even in a reply whose format
is wrong (the release's rewards are independent terms in the same way).

Prompts come from the ``sifthinker`` protocol preset: SFT data and evaluation show
"Original image:", the RGB, "Depth image:", the depth map, the question and the depth
suffix; RL prompts show the RGB, the question and the plain suffix (see ``user_turn``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cof_plugins.core.protocol import IMAGE_PLACEHOLDER, Protocol, load_protocol

PROTOCOL = "sifthinker"
THINK, THINK_END = "<think>", "</think>"
AREA, AREA_END = "<area>", "</area>"
TEXT, TEXT_END = "<text>", "</text>"
ANSWER, ANSWER_END = "<answer>", "</answer>"
TAGS = (THINK, THINK_END, AREA, AREA_END, TEXT, TEXT_END, ANSWER, ANSWER_END)
MAX_DECIMALS = 3
# Boxes kept per area: bounds the matching work a reply can ask of the reward.
MAX_BOXES = 32
MAX_PROBLEMS = 20
_SPACE = re.compile(r"\s*")
_KEYS = {"bbox_2d", "depth"}


# ----- prompts ------------------------------------------------------------------------


def user_turn(
    question: str,
    *,
    with_depth: bool,
    options: Sequence[str] | None = None,
    kind: str | None = None,
    protocol: Protocol | None = None,
) -> str:
    """The one user turn: "Original image:" RGB "Depth image:" map, or the RGB alone."""
    protocol = protocol or load_protocol(PROTOCOL)
    extra = protocol.extra
    if not with_depth:
        return IMAGE_PLACEHOLDER + "\n" + protocol.question_text(question, options, kind)
    shown = replace(protocol, user_suffix=str(extra["depth_user_suffix"]).strip())
    return (
        f"{extra['original_label']}{IMAGE_PLACEHOLDER}\n"
        f"{extra['depth_label']}{IMAGE_PLACEHOLDER}\n"
        + shown.question_text(question, options, kind)
    )


def prompt_messages(
    question: str,
    *,
    with_depth: bool,
    options: Sequence[str] | None = None,
    kind: str | None = None,
    protocol: Protocol | None = None,
) -> list[dict[str, str]]:
    """System and user message; the images follow in placeholder order (RGB, then depth)."""
    protocol = protocol or load_protocol(PROTOCOL)
    turn = user_turn(question, with_depth=with_depth, options=options, kind=kind, protocol=protocol)
    return [{"role": "system", "content": protocol.system}, {"role": "user", "content": turn}]


# ----- writing --------------------------------------------------------------------------


def number(value: float) -> float:
    """A coordinate or depth as written: rounded to three decimals (``0.5``, ``0.125``)."""
    return round(float(value), MAX_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def format_area(boxes: Sequence[tuple[Sequence[float], float]]) -> str:
    """``<area>[...]</area>`` for (box, depth) pairs, numbers rounded to three decimals."""
    items = [{"bbox_2d": [number(v) for v in box], "depth": number(d)} for box, d in boxes]
    return AREA + json.dumps(items, separators=(",", ":")) + AREA_END


def format_reply(steps: Sequence[tuple[str, str]], answer: str) -> str:
    """A whole reply from (area text, explanation) steps and the answer."""
    body = "".join(f"{area}{TEXT}{text}{TEXT_END}" for area, text in steps)
    return f"{THINK}{body}{THINK_END}{ANSWER}{answer}{ANSWER_END}"


# ----- reading --------------------------------------------------------------------------


@dataclass(frozen=True)
class SifBox:
    """One entry of an area; ``bbox``/``depth`` are None when unreadable."""

    bbox: tuple[float, float, float, float] | None
    depth: float | None
    valid: bool


@dataclass(frozen=True)
class SifArea:
    boxes: tuple[SifBox, ...]

    @property
    def valid_boxes(self) -> list[tuple[float, float, float, float]]:
        return [b.bbox for b in self.boxes if b.valid and b.bbox is not None]


@dataclass(frozen=True)
class SifParse:
    """What a reply holds; ``problems`` is empty exactly when the format is right."""

    areas: tuple[SifArea, ...]
    texts: tuple[str, ...]
    answer: str | None
    problems: tuple[str, ...]

    @property
    def well_formed(self) -> bool:
        return not self.problems


class _Problems(list):
    """Problem messages, at most ``MAX_PROBLEMS`` kept (plus a count of the rest)."""

    dropped = 0

    def add(self, message: str) -> None:
        if len(self) < MAX_PROBLEMS:
            self.append(message)
        else:
            self.dropped += 1

    def final(self) -> tuple[str, ...]:
        more = [f"... and {self.dropped} more problem(s)"] if self.dropped else []
        return (*self, *more)


def parse_sif(text: object) -> SifParse:
    """Parse a SIFThinker reply; never raises, linear in ``len(text)``."""
    problems = _Problems()
    if not isinstance(text, str):
        problems.add(f"the reply is not text ({type(text).__name__})")
        return SifParse((), (), None, problems.final())
    s = text.strip()
    start = s.find(THINK)
    if start != 0:
        problems.add("the reply must start with <think>" if start > 0 else "no <think> block")
    body_start = start + len(THINK) if start >= 0 else 0
    end = s.find(THINK_END, body_start)
    if end < 0:
        problems.add("no </think> closes the thinking")
        answer_at = s.find(ANSWER, body_start)
        body_end = answer_at if answer_at >= 0 else len(s)
        tail = s[body_end:]
    else:
        body_end, tail = end, s[end + len(THINK_END) :]
    areas, texts = _blocks(s[body_start:body_end], problems)
    answer = _answer(tail, problems)
    return SifParse(tuple(areas), tuple(texts), answer, problems.final())


def _blocks(body: str, problems: _Problems) -> tuple[list[SifArea], list[str]]:
    """Areas and texts of the thinking, in one forward scan; checks their order."""
    areas: list[SifArea] = []
    texts: list[str] = []
    kinds: list[str] = []
    pos, n = 0, len(body)
    while True:
        pos = _SPACE.match(body, pos).end()
        if pos >= n:
            break
        block = _block_at(body, pos)
        if block is None:
            nxt = body.find("<", pos + 1)
            stop = n if nxt < 0 else nxt
            problems.add(f"text outside <area>/<text> blocks: {body[pos:stop][:40]!r}")
            pos = stop
            continue
        open_tag, close_tag, kind = block
        close = body.find(close_tag, pos + len(open_tag))
        content = body[pos + len(open_tag) : n if close < 0 else close]
        if close < 0:
            problems.add(f"{open_tag} block {len(kinds) + 1} is never closed with {close_tag}")
        kinds.append(kind)
        if kind == "area":
            areas.append(_area(content, len(areas) + 1, problems))
        else:
            _check_text(content, len(texts) + 1, problems)
            texts.append(content.strip())
        if close < 0:
            break
        pos = close + len(close_tag)
    _check_order(kinds, problems)
    return areas, texts


def _block_at(body: str, pos: int) -> tuple[str, str, str] | None:
    for block in ((AREA, AREA_END, "area"), (TEXT, TEXT_END, "text")):
        if body.startswith(block[0], pos):
            return block
    return None


def _check_order(kinds: list[str], problems: _Problems) -> None:
    if not kinds:
        problems.add("the thinking holds no <area> or <text> block")
        return
    if kinds[0] != "area":
        problems.add("the thinking must start with an <area>")
    if kinds[-1] != "text":
        problems.add("the thinking must end with a <text>")
    for i in range(1, len(kinds)):
        if kinds[i] == kinds[i - 1]:
            problems.add(f"blocks {i} and {i + 1} are both <{kinds[i]}>: alternate area and text")
            break


def _check_text(content: str, index: int, problems: _Problems) -> None:
    if not content.strip():
        problems.add(f"<text> block {index} is empty")
    for tag in TAGS:
        if tag in content:
            problems.add(f"<text> block {index} contains the tag {tag}")
            return


def _answer(tail: str, problems: _Problems) -> str | None:
    """The answer after the thinking; found anywhere in ``tail`` even when misplaced."""
    at = tail.find(ANSWER)
    if at < 0:
        problems.add("no <answer> block after </think>")
        return None
    if tail[:at].strip():
        problems.add(f"text between </think> and <answer>: {tail[:at].strip()[:40]!r}")
    close = tail.find(ANSWER_END, at + len(ANSWER))
    if close < 0:
        problems.add("<answer> is never closed with </answer>")
        return tail[at + len(ANSWER) :].strip() or None
    answer = tail[at + len(ANSWER) : close].strip()
    if not answer:
        problems.add("the <answer> block is empty")
    if tail[close + len(ANSWER_END) :].strip():
        problems.add("text after </answer>")
    return answer or None


class _Num(float):
    """A JSON number that remembers how many decimals it was written with."""

    decimals: int = 0


def _number(token: str) -> _Num:
    value = _Num(token)
    lowered = token.lower()
    # Exponent notation counts as too many decimals: the format asks for plain decimals.
    value.decimals = 99 if "e" in lowered else len(lowered.partition(".")[2])
    return value


def _no_constant(token: str) -> float:
    raise ValueError(f"{token} is not a number here")


def _area(content: str, index: int, problems: _Problems) -> SifArea:
    where = f"area {index}"
    try:
        data = json.loads(
            content, parse_float=_number, parse_int=_number, parse_constant=_no_constant
        )
    except (ValueError, RecursionError) as exc:
        problems.add(f"{where} is not a JSON list: {str(exc)[:80]}")
        return SifArea(())
    if not isinstance(data, list) or not data:
        problems.add(f'{where} must be a non-empty JSON list of {{"bbox_2d": [...], "depth": d}}')
        return SifArea(())
    if len(data) > MAX_BOXES:
        problems.add(f"{where} holds {len(data)} boxes; at most {MAX_BOXES} are read")
        data = data[:MAX_BOXES]
    return SifArea(
        tuple(_box(item, f"{where}, box {k}", problems) for k, item in enumerate(data, 1))
    )


def _box(item: object, where: str, problems: _Problems) -> SifBox:
    if not isinstance(item, dict):
        problems.add(f'{where} must be an object {{"bbox_2d": [...], "depth": d}}')
        return SifBox(None, None, False)
    before = len(problems) + problems.dropped
    if set(item) != _KEYS:
        problems.add(f"{where} must have exactly the keys bbox_2d and depth, got {sorted(item)}")
    bbox = _coords(item.get("bbox_2d"), where, problems)
    depth = _fraction(item.get("depth"), f"{where} depth", problems)
    valid = len(problems) + problems.dropped == before
    return SifBox(bbox, depth, valid and bbox is not None and depth is not None)


def _coords(raw: object, where: str, problems: _Problems) -> tuple[float, ...] | None:
    if not (isinstance(raw, list) and len(raw) == 4 and all(isinstance(v, _Num) for v in raw)):
        problems.add(f"{where}: bbox_2d must be four numbers [x1, y1, x2, y2]")
        return None
    for v, name in zip(raw, ("x1", "y1", "x2", "y2"), strict=True):
        _fraction(v, f"{where} {name}", problems)
    x1, y1, x2, y2 = (float(v) for v in raw)
    if not x2 > x1:
        problems.add(f"{where}: x2 ({x2}) must be greater than x1 ({x1})")
    if not y2 > y1:
        problems.add(f"{where}: y2 ({y2}) must be greater than y1 ({y1})")
    return x1, y1, x2, y2


def _fraction(v: object, where: str, problems: _Problems) -> float | None:
    if not isinstance(v, _Num):
        problems.add(f"{where} must be a number")
        return None
    if not 0.0 <= v <= 1.0:
        problems.add(f"{where} = {float(v)} is outside [0, 1]")
    if v.decimals > MAX_DECIMALS:
        problems.add(f"{where} = {float(v)} has more than {MAX_DECIMALS} decimals")
    return float(v)
