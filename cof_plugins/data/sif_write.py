"""``cof data sif``: write a SIFThinker dataset folder atomically.

``OUT/`` receives ``train.json`` (SFT rows; ``dataset_dir=cof:OUT``), ``rl.parquet`` (verl
rows), ``mix.json`` (how many chains had a distractor, a wider area, ...) and, for
synthetic scenes, ``images/``, ``depth/`` and ``scenes.jsonl``. Everything is built in a
hidden temporary folder beside ``OUT`` and renamed into place at the end, so a failure
leaves nothing half-written; an existing non-empty ``OUT`` is only replaced with
``overwrite``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cof_plugins.data.sif import (
    SifDataConfig,
    SifSource,
    rl_record,
    sft_row,
    sources_from_rows,
    sources_from_scenes,
    write_rl_parquet,
)


class OutputExists(ValueError):
    """The output folder exists and holds files; the message names the flag to pass."""


@dataclass(frozen=True)
class SifDataResult:
    out: Path
    rows: int
    mix: dict[str, int]
    problems: list[str]


@contextmanager
def atomic_dir(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``out`` when the block succeeds."""
    out = Path(out).resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise OutputExists(f"{out} already exists; pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-")) / "old"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old.parent, ignore_errors=True)


def _write(
    sources: Sequence[SifSource], root: Path, tmp: Path, final: Path, cfg: SifDataConfig
) -> dict[str, int]:
    rows = [sft_row(src, root, cfg) for src in sources]
    (tmp / "train.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
    records = [rl_record(i, src, root, final, cfg) for i, src in enumerate(sources)]
    write_rl_parquet(records, tmp / "rl.parquet")
    mix = Counter(role for row in rows for role in row["meta"]["chain"])
    counts = {"rows": len(rows), **{f"with_{role}": mix[role] for role in sorted(mix)}}
    (tmp / "mix.json").write_text(json.dumps(counts, indent=1) + "\n")
    return counts


def write_synthetic(
    out: str | Path,
    n: int,
    cfg: SifDataConfig | None = None,
    *,
    depth_image: str = "color",
    overwrite: bool = False,
) -> SifDataResult:
    """Render ``n`` depth scenes (seed ``cfg.seed``) and write both datasets from them."""
    from cof_plugins.testbed.depth_scenes import write_scenes

    cfg = cfg or SifDataConfig()
    if n <= 0:
        raise ValueError(f"-n must be positive, got {n}")
    final = Path(out).resolve()
    with atomic_dir(final, overwrite) as tmp:
        scenes = write_scenes(tmp, n, cfg.seed)
        mix = _write(sources_from_scenes(scenes, depth_image), tmp, tmp, final, cfg)
    return SifDataResult(final, n, mix, [])


def write_from_rows(
    rows: Sequence[object],
    out: str | Path,
    root: str | Path,
    cfg: SifDataConfig | None = None,
    *,
    overwrite: bool = False,
) -> SifDataResult:
    """Both datasets from annotations whose image paths are relative to ``root``.

    Bad rows are reported and skipped; paths in ``train.json`` become absolute so the rows
    work from ``out``.
    """
    cfg = cfg or SifDataConfig()
    root = Path(root).resolve()
    sources, problems = sources_from_rows(rows)
    usable = []
    for src in sources:
        lost = [p for p in (src.image, src.depth) if not (root / p).is_file()]
        if lost:
            problems.append(f"row key {src.key}: file(s) not found under {root}: {lost}")
            continue
        usable.append(_absolute(src, root))
    if not usable:
        raise ValueError(f"no usable rows ({len(problems)} problem(s)); first: {problems[:1]}")
    final = Path(out).resolve()
    with atomic_dir(final, overwrite) as tmp:
        mix = _write(usable, root, tmp, final, cfg)
    return SifDataResult(final, len(usable), mix, problems)


def _absolute(src: SifSource, root: Path) -> SifSource:
    from dataclasses import replace

    return replace(src, image=str(root / src.image), depth=str(root / src.depth))
