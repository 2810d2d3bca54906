"""Canonical rows or annotations -> verl ``RLHFDataset`` parquet (``cof data to-parquet``).

Columns (checked against verl 0.9.1's ``RLHFDataset``):

- ``data_source``: str;
- ``prompt``: list of {role, content}: the system turn and the FIRST user turn only (one
  ``<image>``); the agent loop generates the rest;
- ``images``: one {"bytes": frame PNG, "min_pixels", "max_pixels"} (``embed``) or
  {"image": absolute path of the original, "min_pixels", "max_pixels"} (``path``). The pixel
  bounds are the recipe's budget, so qwen-vl-utils inside verl reproduces the same frame
  instead of applying its own defaults (which shrink frames above 12.8 MP);
- ``reward_model``: {"style": "rule", "ground_truth": answer letter or text};
- ``extra_info``: {index, question, options, kind, answer, category, tools_kwargs:
  {"image_zoom_in_tool": {"create_kwargs": {original_image, frame_size, family}}}}: the tool
  zooms into the full-resolution original while boxes stay in frame pixels;
- ``agent_name``: the agent loop (``tool_agent``).

Rows are checked first (``data.validate`` for canonical rows, ``data.annotations`` for
annotations); with problems nothing is written unless ``drop_invalid``, which reports each
dropped row by index.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cof_plugins.core.atomic import check_output, replace_file
from cof_plugins.core.frame import PixelBudget, frame_size, get_family
from cof_plugins.core.parser import parse_turn
from cof_plugins.core.protocol import load_protocol
from cof_plugins.core.zoom import RESAMPLE, load_image
from cof_plugins.data.annotations import Annotation, box_problem, is_annotation, normalize_all
from cof_plugins.data.frames import image_header, image_size
from cof_plugins.data.rows import IMAGE, resolve
from cof_plugins.data.validate import bad_rows, errors, validate_rows

TOOL = "image_zoom_in_tool"
IMAGE_MODES = ("embed", "path")
BATCH = 128


class ParquetInputError(ValueError):
    """The input has rows that must be fixed first; ``problems`` holds one line per issue."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__(f"{len(problems)} problem(s) in the input; first: {problems[0]}")


@dataclass(frozen=True)
class ParquetConfig:
    family: str = "qwen2_5_vl"
    budget: PixelBudget = field(default_factory=PixelBudget)
    protocol: str = "unified"
    agent_name: str = "tool_agent"
    images: str = "embed"
    data_source: str = "cof"

    def __post_init__(self) -> None:
        get_family(self.family)
        load_protocol(self.protocol)  # a bad preset name or file fails before any row
        if self.images not in IMAGE_MODES:
            raise ValueError(f"images mode {self.images!r}: use one of {', '.join(IMAGE_MODES)}")


def schema(mode: str):
    import pyarrow as pa

    bounds = [("min_pixels", pa.int64()), ("max_pixels", pa.int64())]
    image = [("bytes", pa.binary())] if mode == "embed" else [("image", pa.string())]
    create = pa.struct(
        [
            ("original_image", pa.string()),
            ("frame_size", pa.list_(pa.int64())),
            ("family", pa.string()),
        ]
    )
    tools = pa.struct([(TOOL, pa.struct([("create_kwargs", create)]))])
    extra = pa.struct(
        [
            ("index", pa.int64()),
            ("question", pa.string()),
            ("options", pa.list_(pa.string())),
            ("kind", pa.string()),
            ("answer", pa.string()),
            ("category", pa.string()),
            ("tools_kwargs", tools),
        ]
    )
    return pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("images", pa.list_(pa.struct(image + bounds))),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
            ("extra_info", extra),
            ("agent_name", pa.string()),
        ]
    )


def _image_entry(original: Path, frame_file: Path, cfg: ParquetConfig) -> tuple[dict, list[int]]:
    """The frame as verl should load it, and its size. Files already at frame size that
    verl's loader reads right are embedded byte for byte; others are converted
    (``load_image``), resized to the frame and stored as PNG."""
    size, plain = image_header(frame_file)
    frame = frame_size(size, cfg.family, cfg.budget)
    bounds = {"min_pixels": cfg.budget.min_pixels, "max_pixels": cfg.budget.max_pixels}
    if cfg.images == "path":
        if original != frame_file:
            plain = image_header(original)[1]
        if not plain:
            raise ValueError(
                f"image {str(original)!r} is in a mode verl's loader converts wrongly (16-bit, "
                "float or transparent); use --images embed, which stores it converted"
            )
        return {"image": str(original.resolve()), **bounds}, list(frame)
    if size == frame and plain:
        return {"bytes": frame_file.read_bytes(), **bounds}, list(frame)
    buf = io.BytesIO()
    load_image(frame_file).resize(frame, RESAMPLE).save(buf, format="PNG", compress_level=1)
    return {"bytes": buf.getvalue(), **bounds}, list(frame)


def _record(
    index: int,
    prompt: list[dict],
    image: dict,
    frame: list[int],
    original: Path,
    info: dict,
    cfg: ParquetConfig,
    source: str | None,
) -> dict:
    create = {"original_image": str(original.resolve()), "frame_size": frame, "family": cfg.family}
    return {
        "data_source": source or cfg.data_source,
        "prompt": prompt,
        "images": [image],
        "reward_model": {"style": "rule", "ground_truth": info["answer"]},
        "extra_info": {"index": index, **info, "tools_kwargs": {TOOL: {"create_kwargs": create}}},
        "agent_name": cfg.agent_name,
    }


def from_annotation(ann: Annotation, base: Path, cfg: ParquetConfig) -> dict:
    original = resolve(base, ann.image)
    image, frame = _image_entry(original, original, cfg)
    prompt = load_protocol(cfg.protocol).prompt_messages(
        ann.question, ann.options or None, ann.kind
    )
    info = {
        "question": ann.question,
        "options": ann.options,
        "kind": ann.kind,
        "answer": ann.answer,
        "category": ann.category or ann.task,
    }
    return _record(ann.index, prompt, image, frame, original, info, cfg, ann.data_source)


def from_canonical(i: int, row: Mapping[str, Any], image_dir: Path, cfg: ParquetConfig) -> dict:
    messages, meta = row["messages"], row.get("meta") or {}
    k = next(j for j, m in enumerate(messages) if m["role"] == "user")
    prompt = [{"role": m["role"], "content": m["content"]} for m in messages[: k + 1]]
    frame_file = resolve(image_dir, row["images"][0])
    original = resolve(image_dir, meta["original"]) if meta.get("original") else frame_file
    image, frame = _image_entry(original, frame_file, cfg)
    answer = meta.get("answer") or parse_turn(messages[-1]["content"]).answer or ""
    question = meta.get("question") or messages[k]["content"].replace(IMAGE, "").strip()
    info = {
        "question": question,
        "options": list(meta.get("options") or []),
        "kind": meta.get("kind") or ("multiple_choice" if meta.get("options") else "open"),
        "answer": str(answer),
        "category": str(meta.get("category") or ""),
    }
    return _record(i, prompt, image, frame, original, info, cfg, meta.get("source"))


def check_rows(rows: Sequence[Any], image_dir: Path, cfg: ParquetConfig) -> tuple[list, list[str]]:
    """(usable rows as (index, row-or-Annotation), problems) after the same checks as validate."""
    if rows and all(is_annotation(r) for r in rows):
        anns, problems = normalize_all(rows)
        usable = []
        for ann in anns:
            problem = _annotation_image_problem(ann, image_dir)
            if problem:
                problems.append(f"row {ann.index}: {problem}")
            else:
                usable.append((ann.index, ann))
        return usable, sorted(problems, key=_row_number)
    findings = validate_rows(rows, image_dir=image_dir, family=cfg.family, budget=cfg.budget)
    bad = bad_rows(findings)
    problems = [str(f) for f in errors(findings)]
    for i, row in enumerate(rows):
        if i not in bad and _first_user(row).count(IMAGE) != 1:
            bad.add(i)
            problems.append(
                f"row {i}: the first user turn must hold exactly one <image> (the "
                "frame); RL prompts start from one image"
            )
    return [(i, r) for i, r in enumerate(rows) if i not in bad], problems


def _annotation_image_problem(ann: Annotation, image_dir: Path) -> str | None:
    """Why an annotation's image cannot be used (missing, unreadable, box outside it)."""
    path = resolve(image_dir, ann.image)
    if not path.is_file():
        return f"image {ann.image!r} not found under {image_dir}; fix the path or --image-dir"
    try:
        size = image_size(path)
    except ValueError as exc:
        return f"{exc}; re-export the file as PNG/JPEG or drop the row"
    if ann.bbox is not None:
        return box_problem(ann.bbox, size)
    return None


def _row_number(problem: str) -> int:
    head = problem.split(":", 1)[0].removeprefix("row ")
    return int(head) if head.isdigit() else -1


def _first_user(row: Mapping[str, Any]) -> str:
    return next((m["content"] for m in row["messages"] if m["role"] == "user"), "")


def write_parquet(
    rows: Sequence[Any],
    out: str | Path,
    image_dir: str | Path,
    cfg: ParquetConfig = ParquetConfig(),
    *,
    drop_invalid: bool = False,
    progress: bool = False,
    overwrite: bool = False,
) -> tuple[int, list[str]]:
    """Write ``out``; returns (rows written, problems reported). Raises ``ParquetInputError``
    when rows have problems (also an image that fails to decode while converting) and
    ``drop_invalid`` is off; then nothing is written.

    The file is written under a temporary name and renamed when complete
    (``core.atomic``): interrupted, ``out`` is as it was. An existing ``out`` is replaced
    only with ``overwrite``.
    """
    import pyarrow.parquet as pq
    from tqdm import tqdm

    image_dir = Path(image_dir)
    out = check_output(out, arg="--out", overwrite=overwrite)
    usable, problems = check_rows(rows, image_dir, cfg)
    if problems and not drop_invalid:
        raise ParquetInputError(problems)
    table_schema, batch, written, failed = schema(cfg.images), [], 0, []
    with replace_file(out) as temp, pq.ParquetWriter(temp, table_schema) as writer:
        for i, item in tqdm(usable, desc="to-parquet", unit="row", disable=not progress):
            try:
                record = _convert(i, item, image_dir, cfg)
            except (ValueError, OSError) as exc:  # a file that passed the header check
                failed.append(f"row {i}: {exc}; re-export the image or drop the row")
                continue
            if failed and not drop_invalid:
                continue  # nothing will be written: only the problems are still collected
            batch.append(record)
            if len(batch) >= BATCH:
                written += _flush(writer, batch, table_schema)
        if failed and not drop_invalid:
            raise ParquetInputError(failed)
        written += _flush(writer, batch, table_schema)
    return written, sorted(problems + failed, key=_row_number)


def _convert(i: int, item: Any, image_dir: Path, cfg: ParquetConfig) -> dict:
    if isinstance(item, Annotation):
        return from_annotation(item, image_dir, cfg)
    return from_canonical(i, item, image_dir, cfg)


def _flush(writer, batch: list[dict], table_schema) -> int:
    import pyarrow as pa

    if not batch:
        return 0
    writer.write_table(pa.Table.from_pylist(batch, schema=table_schema))
    n = len(batch)
    batch.clear()
    return n
