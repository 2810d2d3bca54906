"""A row's first image size, read from the file header; ``core.frame`` turns it into a frame."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from cof_plugins.core.pixels import converts_plainly
from cof_plugins.data.rows import resolve


def first_image_size(row: Mapping[str, Any], image_dir: str | Path) -> tuple[int, int]:
    """(width, height) of the row's first image; raises ValueError naming the file."""
    images = row.get("images") or []
    if not images:
        raise ValueError("row has no images, so it has no frame")
    return image_size(resolve(image_dir, images[0]))


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header; raises ValueError naming the file."""
    return image_header(path)[0]


def image_header(path: Path) -> tuple[tuple[int, int], bool]:
    """(size, whether a plain ``convert("RGB")`` reads it right) from the file header.

    The second tells whether the file may go to verl as it is: verl's loader converts with
    PIL alone, which turns 16-bit grayscale white and drops transparency
    (``core.pixels.converts_plainly``). Raises ValueError naming the file.
    """
    try:
        with Image.open(path) as img:
            return img.size, converts_plainly(img.mode, img.info)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read image {str(path)!r}: {exc}") from None
