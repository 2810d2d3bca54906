"""Run a conversion over a file's rows: dispatch on style, then rewrite box conventions.

Kept apart from the per-style readers (``convert``, ``mini_o3``) because only this step
needs the images: the frame of each row comes from its first image's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cof_plugins.core.frame import PixelBudget, frame_size, get_family
from cof_plugins.core.protocol import load_protocol
from cof_plugins.data.convert import (
    STYLE_COORDS,
    STYLES,
    ConvertError,
    from_deepeyes,
    from_function_call,
    rewrite_coords,
)
from cof_plugins.data.frames import first_image_size
from cof_plugins.data.mini_o3 import from_mini_o3


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
        if self.style not in STYLES:
            raise ValueError(f"unknown --style {self.style!r}; use one of {', '.join(STYLES)}")
        get_family(self.family)
        if self.to_family:
            get_family(self.to_family)
        load_protocol(self.protocol)  # a bad preset name or file fails before any row

    @property
    def src(self) -> str:
        return self.coords_from or STYLE_COORDS.get(self.style) or get_family(self.family).coords

    @property
    def dst(self) -> str:
        return self.coords_to or get_family(self.to_family or self.family).coords


def _structure(row: Any, i: int, cfg: ConvertConfig) -> dict:
    protocol = load_protocol(cfg.protocol)
    if cfg.style == "function-call":
        return from_function_call(row, i, protocol)
    if cfg.style == "deepeyes":
        return from_deepeyes(row, i, protocol)
    if cfg.style == "mini-o3":
        return from_mini_o3(row, i, protocol)
    if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
        raise ConvertError(f"row {i}: a canonical row needs a 'messages' list")
    return row


def convert_row(row: Any, i: int, cfg: ConvertConfig, image_dir: str | Path) -> dict:
    out = _structure(row, i, cfg)
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
