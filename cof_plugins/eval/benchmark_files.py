"""Finding a benchmark's data file and telling its format, before ``eval.benchmarks`` reads it.

Both ``cof eval --data`` and ``cof data prepare --from`` accept a file or the downloaded
folder; the rules for picking the file are here so the two commands pick the same one.
"""

from __future__ import annotations

import json
from pathlib import Path

VSTAR_FILE = "test_questions.jsonl"


class BenchmarkError(ValueError):
    """A benchmark file that cannot be used; the message lists the bad rows."""


def detect_format(path: Path) -> str:
    """vstar for a folder (or file) named like the release; else by extension and keys."""
    if path.is_dir():
        if (path / VSTAR_FILE).is_file():
            return "vstar"
        raise BenchmarkError(
            f"{path} is a folder without {VSTAR_FILE}; pass the data file, or --format"
        )
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".parquet"):
        return "hrbench"
    if suffix == ".json":
        return "mme-realworld"
    if suffix == ".jsonl":
        return "vstar" if path.name == VSTAR_FILE or _looks_like_vstar(path) else "jsonl"
    raise BenchmarkError(
        f"cannot tell the format of {path}; pass --format with one of {', '.join(_names())}"
    )


_PATTERNS = {
    "vstar": (VSTAR_FILE,),
    "hrbench": ("*.tsv", "*.parquet"),
    "mme-realworld": ("MME_RealWorld*.json", "*.json"),
    "jsonl": ("*.jsonl",),
}


def locate(path: Path, fmt: str) -> Path:
    """The data file of a benchmark: ``path`` itself, or the one file in the folder.

    Patterns are tried in order; the first that matches exactly one file wins, so
    ``MME_RealWorld.json`` is found beside other JSON files. Several candidates are an error
    naming them (HR-Bench 4K and 8K are two benchmarks with clashing ids).
    """
    if not path.is_dir():
        return path
    patterns = _PATTERNS.get(fmt, ("*",))
    found: list[Path] = []
    for pattern in patterns:
        found = sorted(p for p in path.glob(pattern) if p.is_file() and _is_data(p))
        if len(found) == 1:
            return found[0]
        if found:
            break
    if not found:
        raise BenchmarkError(
            f"{path} holds no {fmt} data file (looked for {', '.join(patterns)}); pass the "
            "file itself, or see `cof data prepare --help` for what the download holds"
        )
    names = ", ".join(p.name for p in found)
    raise BenchmarkError(
        f"{path} holds several {fmt} files ({names}); pass one file, e.g. {found[0]} "
        "(each is its own benchmark, with its own ids)"
    )


def _is_data(path: Path) -> bool:
    return path.name not in ("provenance.json", "annotations.jsonl")


def _looks_like_vstar(path: Path) -> bool:
    with open(path, encoding="utf-8") as handle:
        first = next((line for line in handle if line.strip()), "{}")
    try:
        row = json.loads(first)
    except json.JSONDecodeError:
        return False
    return isinstance(row, dict) and "text" in row and "label" in row and "question" not in row


def _names() -> list[str]:
    from cof_plugins.eval.benchmarks import BENCHMARK_FORMATS

    return BENCHMARK_FORMATS.names()
