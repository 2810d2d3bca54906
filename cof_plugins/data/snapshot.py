"""Shared steps for turning a local dataset snapshot into this project's layout.

Images are never copied by default: ``DIR/images`` becomes a symlink to the snapshot's image
folder (a 5K-image dataset costs nothing to prepare twice). Embedded images (base64 in TSV,
bytes in parquet) are written out once as files.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from cof_plugins.data.rows import write_rows

_EXT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}


class SnapshotError(ValueError):
    """A snapshot folder that does not hold what the dataset should; says what was expected."""


def find_file(src: Path, patterns: Iterable[str], what: str) -> list[Path]:
    """Files in ``src`` (or ``src`` itself) matching ``patterns``, or a clear error."""
    if src.is_file():
        return [src]
    found = sorted({p for pat in patterns for p in src.glob(pat) if p.is_file()})
    found = [p for p in found if not p.name.endswith("provenance.json")]
    if not found:
        raise SnapshotError(
            f"{src} holds no {what} (looked for {', '.join(patterns)}); see the download note "
            "in `cof data prepare --help`"
        )
    return found


def link_images(out: Path, source: Path, copy: bool = False) -> Path:
    """Make ``out/images`` point at ``source`` (symlink, or a copy with ``copy``)."""
    target = out / "images"
    source = source.resolve()
    if target.is_symlink() and target.resolve() == source:
        return target
    if target.exists() or target.is_symlink():
        raise SnapshotError(f"{target} already exists; remove it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    if copy:
        shutil.copytree(source, target)
    else:
        os.symlink(source, target, target_is_directory=True)
    return target


def save_image_bytes(data: bytes | str, folder: Path, stem: str) -> str:
    """Write encoded image bytes (or base64 text) as ``folder/stem.<ext>``; returns the name."""
    raw = base64.b64decode(data) if isinstance(data, str) else data
    with Image.open(io.BytesIO(raw)) as img:
        ext = _EXT.get(img.format or "", ".png")
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{stem}{ext}"
    (folder / name).write_bytes(raw)
    return name


def first(record: Mapping[str, Any], *keys: str) -> Any:
    """The first present, non-empty value among ``keys`` (field names differ per release)."""
    for key in keys:
        value = record.get(key)
        if value is not None and not (isinstance(value, str) and not value.strip()):
            return value
    return None


def write_annotations(out: Path, records: list[dict]) -> Path:
    return write_rows(out / "annotations.jsonl", records)


def progress(items: Iterable[Any], desc: str) -> Iterable[Any]:
    """A tqdm bar over a snapshot's rows (preparing thousands of rows takes a while)."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="row", mininterval=1.0)
