"""The canonical row layout and its file formats.

A dataset is a JSON list (or JSONL) of rows::

    {"messages": [{"role": "system" | "user" | "assistant", "content": str}, ...],
     "images": ["rel/path.png", ...],
     "meta": {"id", "answer", "options", "kind", "bbox", "frame_size", "original", ...}}

Images are paths relative to an image folder (the file's own folder unless told otherwise);
``images[k]`` pairs with the k-th ``<image>`` over all turns. The same layout is LLaMA-Factory's
sharegpt format (role/content tags) and converts to verl parquet in ``data.parquet``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cof_plugins.core.atomic import open_atomic
from cof_plugins.data.stream import DataFileError, iter_rows

__all__ = [
    "IMAGE", "ROLES", "DataFileError", "assistant_texts", "default_image_dir", "image_count",
    "iter_rows", "read_rows", "resolve", "write_rows",
]  # fmt: skip

IMAGE = "<image>"
ROLES = ("system", "user", "assistant")


def read_rows(path: str | Path) -> list[Any]:
    """Read a JSON list or JSONL file; rows are returned as they are (validation is separate).

    ``iter_rows`` reads the same files one row at a time.
    """
    return list(iter_rows(path))


def write_rows(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write rows as JSONL (``.jsonl``) or as a JSON list with one row per line (otherwise).

    One row per line keeps multi-gigabyte files diffable and greppable while staying a plain
    JSON list that LLaMA-Factory loads. The file is replaced atomically (``core.atomic``):
    an interrupted write leaves the previous file, never a truncated one.
    """
    path = Path(path)
    jsonl = path.suffix == ".jsonl"
    with open_atomic(path, "w") as handle:
        first = True
        for row in rows:
            line = json.dumps(row, ensure_ascii=False)
            if jsonl:
                handle.write(line + "\n")
            else:
                handle.write(("[\n" if first else ",\n") + line)
            first = False
        if not jsonl:
            handle.write("[\n]\n" if first else "\n]\n")
    return path


def image_count(messages: Sequence[Mapping[str, Any]]) -> int:
    """Number of ``<image>`` placeholders over all turns."""
    return sum(str(m.get("content", "")).count(IMAGE) for m in messages)


def default_image_dir(data_file: str | Path, image_dir: str | Path | None) -> Path:
    """The folder image paths are relative to: ``image_dir`` or the data file's folder."""
    return Path(image_dir) if image_dir is not None else Path(data_file).resolve().parent


def resolve(image_dir: str | Path, path: str) -> Path:
    """An image path from a row, made usable: absolute paths stay, relative ones join the dir."""
    p = Path(path.removeprefix("file://"))
    return p if p.is_absolute() else Path(image_dir) / p


def assistant_texts(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(m.get("content", "")) for m in messages if m.get("role") == "assistant"]
