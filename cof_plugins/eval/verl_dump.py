"""Draw a rollout from verl's own dump (``trainer.rollout_data_dir`` / ``validation_data_dir``).

verl 0.9.1 writes ``DIR/STEP.jsonl`` with one line per rollout: ``input`` and ``output`` (the
prompt and the whole multi-turn response, decoded with special tokens skipped, so without
images), ``gts``, ``score``, ``step`` and a few extras (``RayPPOTrainer._write_generations``).
The pixels are not in the dump, so the row the rollout came from is found in the RL parquet
the run trained on (``--data``): the prompt text of that row appears in ``input``. The frame
and the original come from the row (``images``, ``extra_info.tools_kwargs``); boxes are read
from the assistant turns (``rewards.segments`` splits the tool turns back out, as the reward
does) and the crops recomputed with the zoom tool's own settings, as in RL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

DUMP_FIELDS = ("input", "output", "step")
STEP_FILE = re.compile(r"^(\d+)\.jsonl$")
TOOL = "image_zoom_in_tool"


def is_verl_dump_row(row: dict[str, Any]) -> bool:
    return all(key in row for key in DUMP_FIELDS)


def dump_steps(folder: Path) -> dict[int, Path]:
    """``{step: file}`` of a verl dump folder (empty when it is not one)."""
    found = {}
    for path in folder.iterdir():
        match = STEP_FILE.match(path.name)
        if match and path.is_file():
            found[int(match.group(1))] = path
    return found


def step_file(folder: Path, step: int | None) -> Path:
    """The dump of ``step`` (default: the latest) in a verl dump folder."""
    steps = dump_steps(folder)
    if not steps:
        raise ValueError(f"{folder} holds no STEP.jsonl files of a verl dump")
    if step is None:
        return steps[max(steps)]
    if step not in steps:
        raise ValueError(f"{folder} has no step {step}; steps: {_ranges(sorted(steps))}")
    return steps[step]


def _ranges(values: list[int]) -> str:
    return ", ".join(map(str, values)) if len(values) <= 8 else f"{values[0]}..{values[-1]}"


@dataclass(frozen=True)
class SourceRow:
    """What a parquet row says about the image a rollout saw."""

    index: int
    frame_image: Image.Image
    original: str | None
    frame: tuple[int, int]
    family: str


def _normal(text: str) -> str:
    return " ".join(str(text).split())


def _prompt_text(prompt: list[dict[str, Any]]) -> str:
    users = [m.get("content") or "" for m in prompt if m.get("role") == "user"]
    return _normal(users[-1].replace("<image>", " ")) if users else ""


def find_source_row(row: dict[str, Any], parquet: Path, pick: int | None = None) -> SourceRow:
    """The parquet row whose prompt the dumped ``input`` holds (and whose answer is ``gts``)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_table(parquet, columns=["prompt", "reward_model", "extra_info"])
    except (OSError, ValueError) as exc:
        raise ValueError(f"--data {parquet}: not a readable RL parquet ({exc})") from None
    records = meta.to_pylist()
    if pick is not None:
        if not 0 <= pick < len(records):
            raise ValueError(f"--data-row {pick}: {parquet} has rows 0..{len(records) - 1}")
        return _source(parquet, pick, records[pick])
    text = _normal(row["input"])
    hits = [i for i, r in enumerate(records) if _prompt_text(r["prompt"]) in text]
    if row.get("gts") is not None:
        hits = [
            i for i in hits if (records[i]["reward_model"] or {}).get("ground_truth") == row["gts"]
        ]
    images = {_create(records[i]).get("original_image") for i in hits}
    if not hits:
        raise ValueError(
            f"no row of {parquet} has this rollout's prompt; pass the parquet the run read "
            "(data.train_files for rollouts, data.val_files for validation dumps)"
        )
    if len(images) > 1:
        listed = ", ".join(map(str, hits[:10]))
        raise ValueError(
            f"{len(hits)} rows of {parquet} ask this question about different images "
            f"(rows {listed}); pick one with --data-row"
        )
    return _source(parquet, hits[0], records[hits[0]])


def _answer(record: dict[str, Any]) -> Any:
    return (record.get("reward_model") or {}).get("ground_truth")


def _create(record: dict[str, Any]) -> dict[str, Any]:
    tools = (record.get("extra_info") or {}).get("tools_kwargs") or {}
    return ((tools.get(TOOL) or {}).get("create_kwargs")) or {}


def _source(parquet: Path, index: int, record: dict[str, Any]) -> SourceRow:
    from cof_plugins.core.frame import frame_size
    from cof_plugins.core.zoom import RESAMPLE, load_image
    from cof_plugins.eval.images import decode_image_bytes

    create = _create(record)
    entry = _image_entry(parquet, index)
    if entry.get("bytes"):
        image = load_image(decode_image_bytes(entry, f"row {index} image"))
    else:
        image = load_image(entry.get("image") or entry.get("path") or "")
    family = str(create.get("family") or "qwen2_5_vl")
    frame = tuple(create.get("frame_size") or frame_size(image.size, family))
    frame_image = image if image.size == frame else image.resize(frame, RESAMPLE)
    return SourceRow(index, frame_image, create.get("original_image"), frame, family)


def _image_entry(parquet: Path, index: int) -> dict[str, Any]:
    """Row ``index`` of the images column, read batch by batch (frames can be large)."""
    import pyarrow.parquet as pq

    seen = 0
    for batch in pq.ParquetFile(parquet).iter_batches(columns=["images"], batch_size=64):
        if index < seen + batch.num_rows:
            images = batch.column(0)[index - seen].as_py() or []
            if not images:
                raise ValueError(f"{parquet} row {index} has no image")
            return images[0]
        seen += batch.num_rows
    raise ValueError(f"{parquet} has no row {index}")


def dump_drawing(row: dict[str, Any], source: SourceRow, tool_config: Path | None = None):
    """A ``viz.Drawn`` of a dumped rollout: boxes on the frame, crops as the tool made them."""
    from cof_plugins.core.coords import to_frame_pixels
    from cof_plugins.core.parser import parse_turn
    from cof_plugins.core.zoom import load_image, zoom
    from cof_plugins.eval.viz import Drawn
    from cof_plugins.rewards.segments import split_response

    settings = _tool_settings(source.family, tool_config)
    config = settings.zoom_config()
    image = source.frame_image
    if config.full_resolution and source.original and Path(source.original).is_file():
        image = load_image(source.original)
    drawn = Drawn(source.frame_image)
    turns = split_response(row["output"]).assistant
    for text in turns:
        for call in parse_turn(text).tool_calls:
            box = (
                to_frame_pixels(call.bbox, settings.convention, source.frame) if call.bbox else None
            )
            result = zoom(image, source.frame, list(box), config) if box else None
            drawn.boxes.append((list(box) if box else None, bool(result and result.ok)))
            if result is not None and result.ok:
                drawn.crops.append(result.crop)
    drawn.lines = [
        f"step {row.get('step')}  score={row.get('score')}  answer={row.get('gts')!r}  "
        f"parquet row {source.index}; crops recomputed with the zoom tool's settings",
        *(f"turn {i}: {' '.join(t.split())[:300]}" for i, t in enumerate(turns, 1)),
    ]
    return drawn


def _tool_settings(family: str, tool_config: Path | None):
    """The zoom tool's settings: from ``tool_config`` or the shipped YAML of the family."""
    import yaml

    from cof_plugins.assets import recipes_dir
    from cof_plugins.verl.tool_settings import parse_settings

    path = tool_config or recipes_dir() / "rl" / "tools" / f"zoom_{family}.yaml"
    try:
        tools = yaml.safe_load(Path(path).read_text(encoding="utf-8"))["tools"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise ValueError(f"tool config {path}: cannot read its tools list ({exc})") from None
    zoom_tools = [t for t in tools if str(t.get("class_name", "")).endswith("ZoomInTool")]
    if not zoom_tools:
        raise ValueError(f"tool config {path} has no ZoomInTool entry")
    return parse_settings(zoom_tools[0].get("config"))
