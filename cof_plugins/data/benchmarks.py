"""Benchmarks -> annotation records (``data.annotations``) for ``cof data prepare``.

The files are read by ``eval.benchmarks``, the one reader ``cof eval`` uses too, so a
prepared question has the same id, text, options, answer and category as in an eval run
(that module's docstring lists the formats and the decisions). This module only places the
images and writes the records:

- file images (V*, MME-RealWorld): ``OUT/images`` links to the benchmark's image folder
  (``--copy-images`` copies it), and records say ``images/<path as released>``;
- embedded images (HR-Bench): each distinct image is written once, as stored, to
  ``OUT/images/<file stem>/<id>.<ext>``. They are written to a temporary folder first and
  moved into place only when every row succeeded, so a failure leaves no half-written set.

Where to download each benchmark (no network here; download, then copy the folder over):

- V* Bench: ``craigwu/vstar_bench`` -> ``DIR/test_questions.jsonl`` and its image folders
- HR-Bench: ``DreamMr/HR-Bench`` -> ``hr_bench_4k.tsv``, ``hr_bench_8k.tsv`` (prepare each)
- MME-RealWorld: ``yifanzhang114/MME-RealWorld`` -> ``MME_RealWorld.json`` and the unzipped
  images its "Image" paths point to

    huggingface-cli download --repo-type dataset <name> --local-dir DIR
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from cof_plugins.core.zoom import ImageLoadError
from cof_plugins.data.snapshot import link_images
from cof_plugins.eval.benchmarks import (
    BENCHMARK_FORMATS,
    Benchmark,
    BenchmarkError,
    Sample,
    format_errors,
    load_benchmark,
)

_EXT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}


def benchmark_names() -> list[str]:
    """The formats ``cof data prepare`` accepts besides the training sets."""
    return BENCHMARK_FORMATS.names()


def data_source(bench: Benchmark) -> str:
    """The ``data_source`` of a benchmark's records: "vstar", "hrbench_4k", ..."""
    if bench.format == "hrbench":
        return bench.name.replace("hr_bench", "hrbench")
    if bench.format == "jsonl":
        return bench.name
    return bench.format.replace("-", "_")


def prepare_benchmark(
    fmt: str,
    src: Path,
    out: Path,
    *,
    image_dir: Path | None = None,
    copy: bool = False,
    skip_bad_rows: bool = False,
) -> tuple[list[dict], list[str], list[Path]]:
    """(records, skipped rows, input files); raises ``BenchmarkError`` on any bad row.

    With ``skip_bad_rows`` the bad rows are left out and listed instead.
    """
    bench = load_benchmark(src, fmt, image_root=image_dir, skip_bad_rows=skip_bad_rows)
    out.mkdir(parents=True, exist_ok=True)
    writer = _EmbeddedImages(out, bench.name)
    records, problems = [], list(bench.skipped)
    try:
        for sample in bench.samples:
            try:
                image = _place(sample, bench, writer)
            except (ImageLoadError, OSError, ValueError) as exc:
                problems.append(f"row {sample.index}: image: {exc}")
                continue
            records.append(_record(sample, image, data_source(bench)))
        if len(problems) > len(bench.skipped) and not skip_bad_rows:
            raise BenchmarkError(
                f"{bench.path}: {len(problems)} bad row(s) (0-based):\n  "
                f"{format_errors(problems)}\nFix them, or pass --skip-bad-rows to use the rest."
            )
        writer.commit()
    finally:
        writer.discard()
    if any(s.image.kind == "path" for s in bench.samples):
        link_images(out, Path(bench.image_root), copy)
    return records, sorted(problems, key=_row_number), [Path(bench.path)]


def _row_number(problem: str) -> int:
    head = problem.split(":", 1)[0].removeprefix("row ")
    return int(head) if head.isdigit() else -1


def _record(sample: Sample, image: str, source: str) -> dict:
    return {
        "id": sample.id, "image": image, "question": sample.question,
        "options": list(sample.options or []), "answer": sample.answer, "kind": sample.kind,
        "category": sample.category, "data_source": source,
    }  # fmt: skip


def _place(sample: Sample, bench: Benchmark, writer: _EmbeddedImages) -> str:
    """The record's image path, relative to OUT (where ``images`` is)."""
    if sample.image.kind != "path":
        return writer.write(sample)
    rel = os.path.relpath(sample.image.path, bench.image_root)
    return sample.image.path if rel.startswith("..") else f"images/{Path(rel).as_posix()}"


class _EmbeddedImages:
    """Writes embedded images to a temporary folder, moved to OUT/images/<stem> on commit."""

    def __init__(self, out: Path, stem: str) -> None:
        self.final = out / "images" / stem
        self.temp: Path | None = None
        self.names: dict[tuple, str] = {}
        self.used: set[str] = set()
        self.out = out

    def write(self, sample: Sample) -> str:
        ref = sample.image
        key = (ref.kind, ref.path, ref.offset, ref.row, ref.column)
        if key not in self.names:
            data = ref.read_bytes()
            try:
                with Image.open(io.BytesIO(data)) as img:
                    ext = _EXT.get(img.format or "", ".png")
            except UnidentifiedImageError:
                raise ImageLoadError(f"{ref.describe()} is not an image") from None
            if self.temp is None:
                self.temp = Path(tempfile.mkdtemp(prefix=".images-", dir=self.out))
            name = f"{_safe(sample.id)}{ext}"
            if name in self.used:  # two ids that clean to one name ("a/b", "a_b")
                name = f"{_safe(sample.id)}-row{sample.index}{ext}"
            self.used.add(name)
            (self.temp / name).write_bytes(data)
            self.names[key] = name
        return f"images/{self.final.name}/{self.names[key]}"

    def commit(self) -> None:
        if self.temp is None:
            return
        if self.final.parent.is_symlink():
            raise BenchmarkError(
                f"{self.final.parent} links to another folder (an earlier prepare of a "
                "benchmark with image files); choose another --out"
            )
        self.final.parent.mkdir(parents=True, exist_ok=True)
        if self.final.is_symlink() or self.final.is_file():
            raise BenchmarkError(f"{self.final} exists and is not a folder; remove it")
        if self.final.exists():
            shutil.rmtree(self.final)  # the images of an earlier prepare into this OUT
        os.replace(self.temp, self.final)
        self.temp = None

    def discard(self) -> None:
        if self.temp is not None:
            shutil.rmtree(self.temp, ignore_errors=True)
            self.temp = None


def _safe(name: str) -> str:
    """A file name from an id ("perception/3" -> "perception_3")."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".") or "_"
