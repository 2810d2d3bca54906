"""Where a benchmark's image lives, and how to load it when the loop (or the report) needs it.

Benchmarks such as HR-Bench ship thousands of 4K-8K images base64-encoded inside one TSV or
parquet file; holding them all in memory would cost gigabytes. A sample therefore keeps an
``ImageRef``: a file path, or the byte offset of its TSV record, or its parquet row. The
reference is JSON-serialisable, so the result store can record it and the report can draw a
trajectory later without the benchmark loader.
"""

from __future__ import annotations

import base64
import binascii
import csv
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image

from cof_plugins.core.zoom import DEFAULT_MAX_IMAGE_PIXELS, ImageLoadError, load_image

KINDS = ("path", "tsv", "parquet")
# VLMEvalKit-style TSVs write a repeated image once and point later rows at its index.
_MAX_REFERENCE_CHARS = 64
# A base64 8K image is tens of megabytes, far above csv's default 128 KiB field limit.
_FIELD_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class ImageRef:
    """A lazily loaded image: ``path`` plus, for TSV and parquet, where in the file."""

    kind: str
    path: str
    offset: int = 0  # tsv: byte offset of the record
    row: int = 0  # parquet: global row index
    column: str = "image"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageRef:
        return cls(**data)

    def describe(self) -> str:
        if self.kind == "path":
            return self.path
        where = f"byte {self.offset}" if self.kind == "tsv" else f"row {self.row}"
        return f"{self.path} ({where}, column {self.column!r})"

    def load(self, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> Image.Image:
        """Decode the image to RGB; an unreadable one raises ``ImageLoadError`` naming it."""
        if self.kind == "path":
            return load_image(self.path, max_image_pixels=max_image_pixels)
        return load_image(self.read_bytes(), max_image_pixels=max_image_pixels)

    def read_bytes(self) -> bytes:
        """The encoded image as stored (``cof data prepare`` writes these bytes out as is)."""
        if self.kind == "path":
            return Path(self.path).read_bytes()
        if self.kind == "tsv":
            data = _tsv_field(self.path, self.offset, self.column)
        elif self.kind == "parquet":
            data = _parquet_cell(self.path, self.row, self.column)
        else:
            raise ValueError(f"unknown image reference kind {self.kind!r}; use one of {KINDS}")
        return decode_image_bytes(data, self.describe())


def decode_image_bytes(value: Any, where: str) -> bytes:
    """Image bytes from a cell: raw bytes, base64 text (data URL or bare), or {"bytes": ...}."""
    if isinstance(value, dict):
        value = value.get("bytes")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if not isinstance(value, str) or not value:
        raise ImageLoadError(f"{where}: no image data (got {type(value).__name__})")
    text = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ImageLoadError(f"{where}: image cell is not base64 ({exc})") from None


# ---------------------------------------------------------------- TSV


class _OffsetLines:
    """Decoded lines of a binary file that remember where the next line starts."""

    def __init__(self, handle: BinaryIO, start: int = 0) -> None:
        self.handle = handle
        self.position = start

    def __iter__(self) -> Iterator[str]:
        for raw in self.handle:
            self.position += len(raw)
            yield raw.decode("utf-8-sig" if self.position == len(raw) else "utf-8")


def iter_tsv(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """Yield (byte offset, fields) per TSV record; quoted fields may span lines."""
    csv.field_size_limit(_FIELD_LIMIT)
    with open(path, "rb") as handle:
        lines = _OffsetLines(handle)
        reader = csv.reader(lines, delimiter="\t")
        while True:
            offset = lines.position
            try:
                fields = next(reader)
            except StopIteration:
                return
            if fields:
                yield offset, fields


def tsv_header(path: str | Path) -> list[str]:
    for _, fields in iter_tsv(path):
        return fields
    raise ValueError(f"{path}: the TSV file is empty")


def _tsv_field(path: str, offset: int, column: str) -> str:
    csv.field_size_limit(_FIELD_LIMIT)
    header = _cached_header(path)
    if column not in header:
        raise ImageLoadError(f"{path}: no column {column!r} (columns: {', '.join(header)})")
    with open(path, "rb") as handle:
        handle.seek(offset)
        lines = _OffsetLines(handle, offset)
        fields = next(csv.reader(lines, delimiter="\t"), [])
    index = header.index(column)
    if len(fields) <= index:
        raise ImageLoadError(f"{path}: the record at byte {offset} has no {column!r} field")
    return fields[index]


@lru_cache(maxsize=8)
def _cached_header(path: str) -> list[str]:
    return tsv_header(path)


def is_image_reference(value: str) -> bool:
    """A short field in an image column names another row instead of holding pixels."""
    return len(value) <= _MAX_REFERENCE_CHARS


# ---------------------------------------------------------------- parquet


def parquet_groups(path: str | Path) -> list[int]:
    """Row counts of each row group, so a global row maps to (group, row in group)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def _parquet_cell(path: str, row: int, column: str) -> Any:
    group, local = _locate(tuple(parquet_groups(path)), row)
    table = _row_group(path, group, column)
    return table.column(column)[local].as_py()


def _locate(groups: tuple[int, ...], row: int) -> tuple[int, int]:
    for index, count in enumerate(groups):
        if row < count:
            return index, row
        row -= count
    raise ImageLoadError(f"parquet row {row} is past the end of the file")


@lru_cache(maxsize=2)
def _row_group(path: str, group: int, column: str):
    """One row group's image column; samples are read in order, so two cached groups suffice."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).read_row_group(group, columns=[column])
