"""Chain-of-Spot SFT rows from grounded annotations (``cof data chain-of-spot``).

Each row is one LLaMA-Factory sharegpt conversation with two images, the original and the
ROI's crop cut here in advance (``core.cos.RoiFrame.crop``, the cut evaluation makes):

    user       <image> ROI request for the question          (image 1: the original)
    assistant  [x1, y1, x2, y2]                               (trained)
    user       <image> "here is the ROI" + question + options (image 2: the crop)
    assistant  the answer                                     (trained)
    user/assistant  the image's other questions, as plain turns (trained answers)

Both assistant turns are trained: the CoF templates train every assistant turn and mask
every user turn (``tests/sft/test_sft_cos_labels.py`` decodes the labels LLaMA-Factory builds).

Decided here (the release is silent or does otherwise):

- **The ROI** is the annotation's target box, or a mined one (``methods.cos_attention``),
  grown by ``core.cos.roi_from_box`` into the release's square shape with ``RoiShape``'s
  margin and least side. A question without a box gets the whole image (``[0.0, 0.0, 1.0,
  1.0]`` in the padded frame), as the release does for a missing key, and is counted;
  ``missing_box="error"`` refuses it instead.
- **One conversation per image** (the release's LLaVA rows hold all of an image's
  questions): annotations naming the same image file are grouped in file order. The release
  draws the Chain-of-Spot question at random on every read; here it is drawn once per row
  from ``(seed, image)``, so a data file is one fixed dataset. Only questions with a box are
  drawn when any has one.
- **Images** are referenced where they are (paths relative to the output folder); crops are
  PNGs in ``OUT/crops``. A reply is checked by reading it back as evaluation will.

Output: ``OUT/train.json`` (rows), ``OUT/crops/``, ``OUT/rois.jsonl`` (per row: ids, ROI
in original pixels, target box, its source, the reply), ``OUT/summary.json`` (counts) and
``OUT/provenance.json``. The folder is written beside its destination and renamed into place
at the end, so a failed run leaves no half-written output; an existing folder is replaced
only with ``overwrite``.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from cof_plugins.core.cos import (
    Box,
    CosProtocol,
    RoiFrame,
    RoiShape,
    load_cos_protocol,
    overlaps,
    parse_roi,
    roi_from_box,
)
from cof_plugins.core.frame import PixelBudget, get_family
from cof_plugins.data.annotations import Annotation, normalize_all
from cof_plugins.data.rows import read_rows, resolve, write_rows

MISSING_BOX = ("whole", "error")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class CosDataConfig:
    protocol: str = "chain-of-spot"
    family: str = "qwen2_5_vl"
    budget: PixelBudget = field(default_factory=PixelBudget)
    shape: RoiShape = field(default_factory=RoiShape)
    seed: int = 0
    missing_box: str = "whole"

    def __post_init__(self) -> None:
        get_family(self.family)
        load_cos_protocol(self.protocol)  # a wrong preset or file fails before any row
        if self.missing_box not in MISSING_BOX:
            raise ValueError(f"missing_box must be one of {MISSING_BOX}, got {self.missing_box!r}")


@dataclass
class CosData:
    rows: list[dict[str, Any]]
    rois: list[dict[str, Any]]
    problems: list[str]
    counts: Counter = field(default_factory=Counter)


def convert(
    annotations: Sequence[Any],
    image_dir: str | Path,
    out_dir: str | Path,
    cfg: CosDataConfig,
    *,
    mined: Mapping[str, Box] | None = None,
) -> CosData:
    """Rows for every image group; crops are written into ``out_dir/crops``.

    ``mined`` maps an annotation id to a box (original pixels) that replaces its target box as
    the ROI's source (the attention miner's output).
    """
    cos = load_cos_protocol(cfg.protocol)
    good, problems = normalize_all(annotations)
    out = Path(out_dir)
    (out / "crops").mkdir(parents=True, exist_ok=True)
    data = CosData([], [], problems)
    for image, group in _groups(good).items():
        try:
            row, roi = _row(image, group, Path(image_dir), out, cos, cfg, mined or {})
        except (OSError, ValueError) as exc:
            data.problems.append(f"row {group[0].index}: {exc}")
            continue
        data.rows.append(row)
        data.rois.append(roi)
        data.counts[roi["source"]] += 1
        data.counts["questions"] += len(group)
    return data


def _groups(annotations: list[Annotation]) -> dict[str, list[Annotation]]:
    groups: dict[str, list[Annotation]] = {}
    for ann in annotations:
        groups.setdefault(ann.image, []).append(ann)
    return groups


def _row(
    image: str,
    group: list[Annotation],
    image_dir: Path,
    out: Path,
    cos: CosProtocol,
    cfg: CosDataConfig,
    mined: Mapping[str, Box],
) -> tuple[dict, dict]:
    path = resolve(image_dir, image)
    with Image.open(path) as handle:
        picture = handle.convert("RGB")
    pick = _pick(group, image, cfg.seed, mined)
    source, target = _source(pick, mined)
    if source == "whole" and cfg.missing_box == "error":
        raise ValueError(f"{pick.id}: no box to grow the ROI from (missing_box=error)")
    frame = RoiFrame.of(cos, picture.size, cfg.family, cfg.budget)
    w, h = picture.size
    whole = (0.0, 0.0, float(w), float(h))
    roi = whole if target is None else roi_from_box(target, picture.size, cfg.shape)
    if source == "whole" and frame.kind == "padded":
        roi = _whole_square(picture.size)
    reply = frame.write(roi)
    read, problem = frame.read(parse_roi(reply).values or (0, 0, 0, 0))
    if read is None:
        raise ValueError(f"{pick.id}: the ROI reply {reply} reads back as {problem}")
    crop_name = f"crops/{_SAFE.sub('_', pick.id)}.png"
    frame.crop(picture, read).save(out / crop_name, compress_level=1)
    messages = [*cos.system_messages(), *_turns(cos, pick, reply, group)]
    original = os.path.relpath(path.resolve(), out.resolve())
    row = {"messages": messages, "images": [original, crop_name]}
    truth = pick.bbox
    info = {
        "id": pick.id,
        "image": original,
        "size": [w, h],
        "roi": [round(v, 2) for v in read],
        "reply": reply,
        "source": source,
        "target": truth,
        "covers_target": None if truth is None else overlaps(read, tuple(truth)),
    }
    return row, info


def _pick(group: list[Annotation], image: str, seed: int, mined: Mapping[str, Box]):
    """The Chain-of-Spot question, drawn once per (seed, image) among those with a box."""
    boxed = [a for a in group if a.bbox is not None or a.id in mined] or group
    return random.Random(f"{seed}:{image}").choice(boxed)


def _source(ann: Annotation, mined: Mapping[str, Box]) -> tuple[str, Box | None]:
    if ann.id in mined:
        return "attention", tuple(mined[ann.id])  # type: ignore[return-value]
    if ann.bbox is not None:
        return "annotation", tuple(ann.bbox)  # type: ignore[return-value]
    return "whole", None


def _whole_square(size: tuple[int, int]) -> Box:
    """The padded square itself in original pixels: written as [0.0, 0.0, 1.0, 1.0]."""
    from cof_plugins.core.cos import padded_square

    side, ox, oy = padded_square(size)
    return (-ox, -oy, side - ox, side - oy)


def _turns(cos: CosProtocol, pick: Annotation, reply: str, group: list[Annotation]) -> list:
    turns = [
        {"role": "user", "content": cos.roi_turn(pick.question)},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": cos.answer_turn(pick.question, pick.options, pick.kind)},
        {"role": "assistant", "content": _answer(pick)},
    ]
    others = [a for a in group if a is not pick]
    for k, ann in enumerate(others):
        text = cos.plain_turn(ann.question, ann.options, ann.kind, first=k == 0)
        turns += [{"role": "user", "content": text}, {"role": "assistant", "content": _answer(ann)}]
    return turns


def _answer(ann: Annotation) -> str:
    """The option letter for multiple choice (the wrapper asks for it), else the text."""
    return ann.answer if ann.options else ann.answer_text


# ---------------------------------------------------------------- writing


def write(
    src: str | Path,
    out_dir: str | Path,
    cfg: CosDataConfig,
    *,
    image_dir: str | Path | None = None,
    mined: Mapping[str, Box] | None = None,
    overwrite: bool = False,
    limit: int | None = None,
) -> CosData:
    """Convert ``src`` into the folder ``out_dir`` (built aside, renamed into place)."""
    from cof_plugins.core.atomic import OutputError, check_output, replace_dir, write_json

    folder = Path(image_dir) if image_dir else Path(src).resolve().parent
    out = check_output(out_dir, arg="--out", inputs=[src], overwrite=overwrite, folder=True)
    if out.resolve() in (folder.resolve(), *folder.resolve().parents):
        raise OutputError(
            f"--out {out} holds the image folder {folder}; replacing it would delete the "
            "images; choose an --out outside it"
        )
    records = read_rows(src)[:limit] if limit else read_rows(src)
    # The staging folder sits beside the final one: image paths relative to it stay true.
    with replace_dir(out) as staging:
        data = convert(records, folder, staging, cfg, mined=mined)
        write_rows(staging / "train.json", data.rows)
        write_rows(staging / "rois.jsonl", data.rois)
        summary = {
            "rows": len(data.rows),
            "problems": len(data.problems),
            **data.counts,
            "covers_target": _coverage(data.rois),
        }
        write_json(staging / "summary.json", summary, indent=1)
        from cof_plugins.data.provenance import write_provenance

        write_provenance(staging, inputs=[src], seed=cfg.seed, extra={"config": _plain(cfg)})
    return data


def _coverage(rois: list[dict]) -> float | None:
    """Share of rows whose ROI overlaps the known target (1.0 for boxes from annotations)."""
    known = [r["covers_target"] for r in rois if r["covers_target"] is not None]
    return round(sum(known) / len(known), 4) if known else None


def _plain(cfg: CosDataConfig) -> dict[str, Any]:
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(cfg), default=str))
