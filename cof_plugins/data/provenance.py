"""``provenance.json``: what made an output, so a dataset can be traced and rebuilt.

Folders get ``DIR/provenance.json``; single-file outputs get ``FILE.provenance.json`` beside
them, so two exports into one folder never overwrite each other's record.
"""

from __future__ import annotations

import hashlib
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cof_plugins.core.atomic import write_json


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def provenance_path(out: str | Path) -> Path:
    out = Path(out)
    return out / "provenance.json" if out.is_dir() else out.with_name(out.name + ".provenance.json")


def write_provenance(
    out: str | Path,
    *,
    inputs: Iterable[str | Path],
    seed: int | None = None,
    argv: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Record the command line, seed, package version and sha256 of every input file."""
    from cof_plugins import __version__

    record = {
        "command": ["cof", *(sys.argv[1:] if argv is None else argv)],
        "seed": seed,
        "cof_plugins_version": __version__,
        "python": platform.python_version(),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": {str(Path(p).resolve()): sha256_file(p) for p in inputs if Path(p).is_file()},
        **(dict(extra) if extra else {}),
    }
    return write_json(provenance_path(out), record, ensure_ascii=False)
