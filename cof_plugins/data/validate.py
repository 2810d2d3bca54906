"""Every check a canonical row must pass before SFT or RL sees it (``cof data validate``).

Each problem becomes a ``Finding`` naming its 0-based row, what is wrong and how to fix it;
nothing is dropped silently. Errors break training (LLaMA-Factory raises on an image-count
mismatch, drops rows with a bad turn order, truncates over-long rows into a crash); warnings
are data that trains but probably not as intended (a first image that is not its own frame,
a trajectory that never answers).

Boxes in assistant tool calls are read with ``core.parser`` in the family's convention and
checked against the frame of the row's first image (``core.frame.frame_size``); a row's own
target box (``meta.bbox``) against its original's size.

Rows are checked one at a time (``iter_findings``): memory is one row and its image headers,
plus a bounded cache of image sizes and one short entry per id (to find ids that repeat or
would share an image folder, ``data.ids``).
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from cof_plugins.core.frame import (
    MAX_ASPECT_RATIO,
    FamilySpec,
    PixelBudget,
    frame_size,
    get_family,
    image_tokens,
)
from cof_plugins.core.parser import ZOOM_TOOL, parse_turn
from cof_plugins.core.zoom import validate_box
from cof_plugins.data.annotations import box_problem
from cof_plugins.data.boxes import read_box
from cof_plugins.data.ids import IdIndex
from cof_plugins.data.report import table
from cof_plugins.data.rows import IMAGE, ROLES, resolve

CHARS_PER_TOKEN = 3.5
SIZE_CACHE = 16384  # image sizes remembered (rows often share frames); bounds the memory
TOKENS_PER_MESSAGE = 5  # <|im_start|>role\n ... <|im_end|>\n
# code -> (level, how to fix it)
_CALL_FORM = (
    '<tool_call>\\n{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [x1, y1, x2, y2]}}'
    "\\n</tool_call>"
)
CHECKS: dict[str, tuple[str, str]] = {
    "bad-row": ("error", "give each row a 'messages' list and an 'images' list of path strings"),
    "bad-message": ("error", "each message needs 'role' (system/user/assistant) and str 'content'"),
    "turn-order": (
        "error",
        "use an optional system turn, then user/assistant alternating, ending on assistant",
    ),
    "image-count": ("error", "make len(images) equal the number of <image> placeholders"),
    "missing-image": ("error", "fix the path or pass --image-dir (paths are relative to it)"),
    "unreadable-image": ("error", "re-export the file as PNG/JPEG or drop the row"),
    "image-aspect": (
        "error",
        f"crop or pad the image below {MAX_ASPECT_RATIO}:1 (the Qwen-VL processors refuse it)",
    ),
    "duplicate-id": ("error", "give every row its own meta.id (ids name the image folders)"),
    "bad-tool-call": ("error", f"write {_CALL_FORM}"),
    "bad-box": (
        "error",
        "write boxes inside the frame in the family's convention "
        "(rewrite them with cof data convert --coords-from/--coords-to)",
    ),
    "too-long": ("error", "raise --cutoff-len, lower --max-pixels, or drop the row"),
    "frame-size": (
        "warning",
        "save the first image at its frame size (cof data synthesize does) so no stage resizes it",
    ),
    "crop-count": ("warning", "return one crop <image> per zoom call"),
    "no-answer": ("warning", "end on an assistant turn with <answer>...</answer> and no tool call"),
    "empty": ("error", "the file has no rows; check --from"),
}


@dataclass(frozen=True)
class Finding:
    row: int | None
    code: str
    message: str

    @property
    def level(self) -> str:
        return CHECKS[self.code][0]

    @property
    def fix(self) -> str:
        return CHECKS[self.code][1]

    def __str__(self) -> str:
        where = "file" if self.row is None else f"row {self.row}"
        return f"{where}: [{self.level} {self.code}] {self.message} Fix: {self.fix}."


@dataclass
class Context:
    image_dir: Path
    spec: FamilySpec
    budget: PixelBudget
    cutoff_len: int | None = None
    count_tokens: Callable[[str], int] | None = None
    decode: bool = False
    sizes: OrderedDict[str, tuple[int, int] | str] = field(default_factory=OrderedDict)
    ids: IdIndex = field(default_factory=IdIndex)


def validate_rows(
    rows: Iterable[Any],
    *,
    image_dir: str | Path = ".",
    family: str = "qwen2_5_vl",
    budget: PixelBudget | None = None,
    cutoff_len: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
    decode: bool = False,
    progress: bool = False,
) -> list[Finding]:
    """Check canonical rows; returns every finding, in row order (see ``iter_findings``)."""
    return list(
        iter_findings(
            rows,
            image_dir=image_dir,
            family=family,
            budget=budget,
            cutoff_len=cutoff_len,
            count_tokens=count_tokens,
            decode=decode,
            progress=progress,
        )
    )


def iter_findings(
    rows: Iterable[Any],
    *,
    image_dir: str | Path = ".",
    family: str = "qwen2_5_vl",
    budget: PixelBudget | None = None,
    cutoff_len: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
    decode: bool = False,
    progress: bool = False,
) -> Iterator[Finding]:
    """Check canonical rows one at a time, yielding findings in row order.

    ``count_tokens`` counts text tokens (a tokenizer); without it text is chars / 3.5.
    ``decode`` fully decodes images instead of reading headers (slower, finds truncation).
    """
    ctx = Context(
        Path(image_dir),
        get_family(family),
        budget or PixelBudget(),
        cutoff_len,
        count_tokens,
        decode,
    )
    from tqdm import tqdm

    n = 0
    for n, row in enumerate(tqdm(rows, desc="validate", unit="row", disable=not progress), 1):
        yield from check_row(n - 1, row, ctx)
    if n == 0:
        yield Finding(None, "empty", "no rows to check.")


def check_row(i: int, row: Any, ctx: Context) -> list[Finding]:
    shape = _shape(i, row)
    if shape:
        return shape
    messages, images = row["messages"], row["images"]
    out = _turn_order(i, messages) + _image_count(i, messages, images) + _meta(i, row, ctx)
    sizes = [_size(i, p, ctx, out) for p in images]
    frame = None
    if sizes and sizes[0] is not None:
        frame = frame_size(sizes[0], ctx.spec, ctx.budget)
        if frame != sizes[0]:
            what = f"first image {images[0]!r} is {_wh(sizes[0])}, not its frame {_wh(frame)}"
            out.append(Finding(i, "frame-size", f"{what}; every stage will resize it."))
    out += _calls(i, messages, frame, ctx, len(images))
    out += _length(i, messages, [s for s in sizes if s is not None], ctx)
    return out


def _shape(i: int, row: Any) -> list[Finding]:
    if not isinstance(row, Mapping):
        return [Finding(i, "bad-row", f"row is a {type(row).__name__}, not an object.")]
    messages, images = row.get("messages"), row.get("images", [])
    if not isinstance(messages, list) or not messages:
        return [Finding(i, "bad-row", "'messages' is missing or not a non-empty list.")]
    if not isinstance(images, list) or not all(isinstance(p, str) for p in images):
        return [Finding(i, "bad-row", "'images' is not a list of path strings.")]
    for j, m in enumerate(messages):
        if not isinstance(m, Mapping) or m.get("role") not in ROLES:
            role = m.get("role") if isinstance(m, Mapping) else type(m).__name__
            return [Finding(i, "bad-message", f"message {j} has role {role!r}.")]
        if not isinstance(m.get("content"), str):
            return [Finding(i, "bad-message", f"message {j} content is not a string.")]
    return []


def _turn_order(i: int, messages: Sequence[Mapping[str, str]]) -> list[Finding]:
    roles = [m["role"] for m in messages]
    body = roles[1:] if roles[0] == "system" else roles
    expected = ["user" if k % 2 == 0 else "assistant" for k in range(len(body))]
    if body == expected and body and body[-1] == "assistant":
        return []
    if not body or body[-1] != "assistant":
        return [Finding(i, "turn-order", f"roles {_roles(roles)} do not end on an assistant turn.")]
    k = next(k for k, (a, b) in enumerate(zip(body, expected, strict=True)) if a != b)
    pos = k + (len(roles) - len(body))
    return [
        Finding(
            i,
            "turn-order",
            f"message {pos} is {body[k]!r} where {expected[k]!r} belongs (roles {_roles(roles)}).",
        )
    ]


def _roles(roles: Sequence[str]) -> str:
    short = [r[0] for r in roles]
    return "".join(short) if len(short) <= 40 else "".join(short[:40]) + "..."


def _image_count(i: int, messages, images) -> list[Finding]:
    n = sum(m["content"].count(IMAGE) for m in messages)
    if n == len(images):
        return []
    return [Finding(i, "image-count", f"{n} <image> placeholders but {len(images)} images.")]


def _size(i: int, path: str, ctx: Context, out: list[Finding]) -> tuple[int, int] | None:
    got = ctx.sizes.get(path)  # keyed by the row's text: one image dir for the whole file
    if got is None:
        got = ctx.sizes[path] = _probe(resolve(ctx.image_dir, path), ctx.decode)
        if len(ctx.sizes) > SIZE_CACHE:
            ctx.sizes.popitem(last=False)
    if isinstance(got, tuple):
        if max(got) / min(got) <= MAX_ASPECT_RATIO:
            return got
        what = f"image {path!r} is {_wh(got)}, an aspect ratio above {MAX_ASPECT_RATIO}:1."
        out.append(Finding(i, "image-aspect", what))
        return None
    code = "missing-image" if got == "missing" else "unreadable-image"
    out.append(Finding(i, code, f"image {path!r} ({resolve(ctx.image_dir, path)}) is {got}."))
    return None


def _meta(i: int, row: Mapping[str, Any], ctx: Context) -> list[Finding]:
    """The row's id (repeats and folder-name collisions) and its target box vs the original."""
    meta = row.get("meta")
    if not isinstance(meta, Mapping):
        return []
    out = []
    if meta.get("id") is not None:
        clash = ctx.ids.add(i, str(meta["id"]))
        if clash:
            out.append(Finding(i, "duplicate-id", f"meta.{clash}."))
    box, size = meta.get("bbox"), meta.get("original_size")
    problem = _meta_box_problem(box, size)
    if problem:
        out.append(Finding(i, "bad-box", f"meta.bbox: {problem}."))
    return out


def _meta_box_problem(box: Any, size: Any) -> str | None:
    if not (isinstance(box, list) and isinstance(size, list) and len(box) == 4 and len(size) == 2):
        return None
    try:
        values = [float(v) for v in box]
        w, h = int(size[0]), int(size[1])
    except (TypeError, ValueError, OverflowError):
        return f"box {box!r} or original_size {size!r} is not numeric"
    if not all(math.isfinite(v) for v in values) or w < 1 or h < 1:
        return f"box {box!r} or original_size {size!r} is not finite and positive"
    return box_problem(values, (w, h))


def _probe(path: Path, decode: bool) -> tuple[int, int] | str:
    if not path.is_file():
        return "missing"
    try:
        with Image.open(path) as img:
            if decode:
                img.load()
            return img.size
    except Exception as exc:  # any decoder failure means the trainer would fail too
        return f"unreadable ({type(exc).__name__}: {exc})"


def _calls(i: int, messages, frame, ctx: Context, n_images: int) -> list[Finding]:
    out, zooms = [], 0
    assistant = [m["content"] for m in messages if m["role"] == "assistant"]
    for k, text in enumerate(assistant):
        turn = parse_turn(text)
        out += [
            Finding(i, "bad-tool-call", f"assistant turn {k}: {e.message}") for e in turn.errors
        ]
        for call in turn.tool_calls:
            zooms += call.name == ZOOM_TOOL
            if frame is not None and call.bbox is not None:
                out += _box(i, k, call.bbox, frame, ctx)
    if zooms and n_images and zooms != n_images - 1:
        out.append(Finding(i, "crop-count", f"{zooms} zoom calls but {n_images - 1} crop images."))
    if assistant:
        last = parse_turn(assistant[-1].rsplit(IMAGE, 1)[-1])  # in-turn: after the last crop
        if last.answer is None or last.attempted_tool:
            out.append(
                Finding(
                    i,
                    "no-answer",
                    "the last assistant turn does not give "
                    "<answer>...</answer> without a tool call.",
                )
            )
    return out


def _box(i: int, turn: int, bbox, frame, ctx: Context) -> list[Finding]:
    absolute = read_box(bbox, ctx.spec.coords, frame)
    check = validate_box(list(absolute), frame)
    if check.ok:
        return []
    what = f"assistant turn {turn}: box {[round(v, 4) for v in bbox]} ({ctx.spec.coords}, "
    what += f"{ctx.spec.name}) is unusable on the {_wh(frame)} frame"
    return [Finding(i, "bad-box", f"{what}: {check.message}")]


def estimate_tokens(messages, sizes, ctx: Context) -> int:
    """Text tokens (tokenizer or chars / 3.5) + template overhead + every image's tokens."""
    text = "".join(m["content"].replace(IMAGE, "") for m in messages)
    n_text = ctx.count_tokens(text) if ctx.count_tokens else round(len(text) / CHARS_PER_TOKEN)
    n_images = sum(image_tokens(s, ctx.spec, ctx.budget) + 2 for s in sizes)  # + vision start/end
    return n_text + TOKENS_PER_MESSAGE * len(messages) + n_images


def _length(i: int, messages, sizes, ctx: Context) -> list[Finding]:
    if not ctx.cutoff_len:
        return []
    n = estimate_tokens(messages, sizes, ctx)
    if n <= ctx.cutoff_len:
        return []
    return [Finding(i, "too-long", f"about {n} tokens, over --cutoff-len {ctx.cutoff_len}.")]


def _wh(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def errors(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == "error"]


def bad_rows(findings: Sequence[Finding]) -> set[int]:
    return {f.row for f in errors(findings) if f.row is not None}


def summary(findings: Sequence[Finding], n_rows: int) -> str:
    """Counts per check, and how many rows carry at least one error."""
    tally = Tally()
    for f in findings:
        tally.add(f)
    return tally.summary(n_rows)


class Tally:
    """Counts findings as they stream past, for ``summary`` without keeping them."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.error_rows = 0
        self._last_error_row: int | None = None
        self.file_errors = 0

    def add(self, finding: Finding) -> None:
        self.counts[finding.code] += 1
        if finding.level != "error":
            return
        if finding.row is None:
            self.file_errors += 1
        elif finding.row != self._last_error_row:  # findings arrive in row order
            self.error_rows += 1
            self._last_error_row = finding.row

    @property
    def errors(self) -> int:
        return sum(n for code, n in self.counts.items() if CHECKS[code][0] == "error")

    def summary(self, n_rows: int) -> str:
        rows = [[code, level, self.counts.get(code, 0)] for code, (level, _) in CHECKS.items()]
        bad = self.error_rows
        footer = f"\n{n_rows} rows, {bad} with errors, {n_rows - bad} clean of errors"
        return table(["check", "level", "findings"], rows) + footer
