"""Run a conversion over a file's rows: read each row in its style, then rewrite box conventions.

The per-style readers (``data.styles``) only restructure a row; this step also needs the
images, because the frame of each row, on which boxes are rewritten, comes from its first
image's size. Boxes move from ``coords_from`` (default: the style's own: abs for deepeyes,
rel1 for mini-o3, the family's for the others) to the family's convention on the row's frame,
or to ``to_family``'s frame when swapping base models (28- vs 32-pixel grids).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cof_plugins.core.coords import convert as convert_box
from cof_plugins.core.frame import PixelBudget, frame_size, get_family
from cof_plugins.core.protocol import load_protocol
from cof_plugins.data.boxes import rewrite_calls
from cof_plugins.data.frames import first_image_size
from cof_plugins.data.styles import STYLES, Style
from cof_plugins.data.styles.common import ConvertError


@dataclass(frozen=True)
class ConvertConfig:
    style: str
    family: str = "qwen2_5_vl"
    to_family: str | None = None  # swap base models: boxes move to this family's frame
    budget: PixelBudget = field(default_factory=PixelBudget)
    coords_from: str | None = None  # default: the style's own convention
    coords_to: str | None = None  # default: the (target) family's convention
    protocol: str = "unified"

    def __post_init__(self) -> None:
        STYLES.get(self.style)  # an unknown style raises here, listing the registered ones
        get_family(self.family)
        if self.to_family:
            get_family(self.to_family)

    @property
    def reader(self) -> Style:
        return STYLES.get(self.style)

    @property
    def src(self) -> str:
        return self.coords_from or self.reader.coords or get_family(self.family).coords

    @property
    def dst(self) -> str:
        return self.coords_to or get_family(self.to_family or self.family).coords


def convert_row(row: Any, i: int, cfg: ConvertConfig, image_dir: str | Path) -> dict:
    """One row in ``cfg.style`` -> canonical, boxes in the target convention and frame."""
    out = cfg.reader.read(row, i, load_protocol(cfg.protocol))
    to_family = cfg.to_family or cfg.family
    if cfg.src == cfg.dst and to_family == cfg.family:
        return out
    try:
        size = first_image_size(out, image_dir)
    except ValueError as exc:
        raise ConvertError(f"row {i}: {exc}; the frame is needed to rewrite boxes") from None
    src_frame = frame_size(size, cfg.family, cfg.budget)
    dst_frame = frame_size(size, to_family, cfg.budget)
    out, _ = rewrite_coords(out, cfg.src, cfg.dst, src_frame, dst_frame)
    return out


def convert_rows(
    rows: Sequence[Any], cfg: ConvertConfig, image_dir: str | Path, progress: bool = False
) -> tuple[list[dict], list[str]]:
    """Converted rows and one message per row that failed (``row N: ...``); none are dropped
    silently."""
    from tqdm import tqdm

    good, bad = [], []
    for i, row in enumerate(tqdm(rows, desc="convert", unit="row", disable=not progress)):
        try:
            good.append(convert_row(row, i, cfg, image_dir))
        except ConvertError as exc:
            bad.append(str(exc))
    return good, bad


def rewrite_coords(
    row: Mapping[str, Any],
    src: str,
    dst: str,
    src_frame: tuple[int, int],
    dst_frame: tuple[int, int] | None = None,
) -> tuple[dict, int]:
    """Rewrite the box of every assistant zoom call between conventions; returns (row, count)."""

    def mapping(box):
        return list(convert_box(box, src, dst, src_frame, dst_frame))

    return _map_assistant(row, mapping)


def _map_assistant(row: Mapping[str, Any], mapping: Callable) -> tuple[dict, int]:
    messages, total = [], 0
    for m in row["messages"]:
        content = m["content"]
        if m["role"] == "assistant":
            content, n = rewrite_calls(content, mapping)
            total += n
        messages.append({**m, "content": content})
    return {**row, "messages": messages}, total
