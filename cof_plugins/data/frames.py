"""A row's first image size, read from the file header; ``core.frame`` turns it into a frame."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from cof_plugins.data.rows import resolve


def first_image_size(row: Mapping[str, Any], image_dir: str | Path) -> tuple[int, int]:
    """(width, height) of the row's first image; raises ValueError naming the file."""
    images = row.get("images") or []
    if not images:
        raise ValueError("row has no images, so it has no frame")
    return image_size(resolve(image_dir, images[0]))


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header; raises ValueError naming the file."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read image {str(path)!r}: {exc}") from None
