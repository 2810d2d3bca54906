"""Adaptive CoF trajectories from grounded annotations (``cof data synthesize``).

For each annotation: the original is smart-resized to the FRAME (``core.frame.frame_size`` for
the family and pixel budget) and saved at exactly that size as the first image, so every later
resize (LLaMA-Factory's prescale, the HF processor, verl) is the identity and box coordinates
mean the same in SFT, RL and eval. ``data.policy`` decides direct / one zoom / two zooms;
each call's box is written in the family's convention (outwards-snapped), read back the way
the tool reads it, and cropped from the ORIGINAL with ``core.zoom``. The original's absolute
path stays in ``meta.original`` so RL can zoom at full resolution.

Output: ``DIR/train.json`` (canonical rows), ``DIR/images/<id>/{frame,crop1,crop2}.png``,
``DIR/mix.json`` and ``DIR/mix.txt`` (direct / one zoom / two zooms per resolution bucket).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image

from cof_plugins.core.atomic import check_output, replace_dir, write_json, write_text
from cof_plugins.core.frame import FamilySpec, PixelBudget, frame_size, get_family
from cof_plugins.core.protocol import Protocol, load_protocol
from cof_plugins.core.zoom import RESAMPLE, ZoomConfig, load_image, zoom
from cof_plugins.data import thinking
from cof_plugins.data.annotations import Annotation, box_problem, clip_box, normalize_all
from cof_plugins.data.boxes import read_box, write_box, zoom_call
from cof_plugins.data.ids import IdIndex, folder_name
from cof_plugins.data.layout import assemble, check_layout
from cof_plugins.data.policy import (
    PolicyConfig,
    legible,
    plan_zooms,
    short_side,
    side_in_crop,
    to_frame,
)
from cof_plugins.data.report import table
from cof_plugins.data.rows import read_rows, resolve, write_rows

BUCKETS = (224, 448, 1024, 1920, 3840)
# zlib level 1: ~5x faster than PIL's default 6 on photo-like frames, ~7% larger files.
PNG_LEVEL = 1


class SynthesizeError(ValueError):
    """Annotations that cannot be synthesized together; ``problems`` names every row."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s); first: {problems[0]}")


@dataclass(frozen=True)
class SynthConfig:
    family: str = "qwen2_5_vl"
    budget: PixelBudget = field(default_factory=PixelBudget)
    layout: str = "next-user"
    protocol: str = "unified"
    seed: int = 0
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    zoom: ZoomConfig | None = None  # default: ZoomConfig.for_family(family)
    context_jitter: float = 0.5  # first-call context drawn from context +- this
    thinking: str = "varied"  # data.thinking.WORDINGS

    def __post_init__(self) -> None:
        get_family(self.family)
        thinking.phrasings(self.thinking)  # a bad wording fails before any row
        check_layout(self.layout)
        load_protocol(self.protocol)  # a bad preset name or file fails before any row

    @property
    def spec(self) -> FamilySpec:
        return get_family(self.family)

    def zoom_config(self) -> ZoomConfig:
        return self.zoom or ZoomConfig.for_family(self.family)


def bucket(size: tuple[int, int]) -> str:
    """Resolution bucket of an original: the nearest of 224..4K by long side, in log scale."""
    long_side = max(size)
    best = min(BUCKETS, key=lambda b: abs(math.log(long_side / b)))
    return "4K" if best == 3840 else str(best)


@dataclass
class Mix:
    """How many trajectories answer directly, zoom once or zoom twice, per bucket."""

    counts: dict[str, Counter] = field(default_factory=dict)

    def add(self, bucket_name: str, zooms: int) -> None:
        self.counts.setdefault(bucket_name, Counter())[zooms] += 1

    def rows(self) -> list[list[Any]]:
        order = [b if b != "3840" else "4K" for b in map(str, BUCKETS)]
        out = []
        for name in sorted(self.counts, key=lambda b: order.index(b) if b in order else 99):
            c = self.counts[name]
            n = sum(c.values())
            out.append([name, n, c[0], c[1], c[2] + c[3], sum(k * v for k, v in c.items()) / n])
        return out

    def table(self) -> str:
        return table(["bucket", "n", "direct", "one zoom", "two zooms", "mean zooms"], self.rows())

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {b: {str(k): v for k, v in sorted(c.items())} for b, c in self.counts.items()}


def frame_boxes(ann: Annotation, size: tuple[int, int], frame: tuple[int, int]) -> list:
    """The annotation's target boxes (the box, then any extra ones) in frame pixels."""
    return [to_frame(b, size, frame) for b in [ann.bbox, *ann.extra_boxes]]


def trajectory(
    ann: Annotation, original: Image.Image, cfg: SynthConfig, protocol: Protocol
) -> tuple[list[dict], list[Image.Image], int]:
    """Messages, images (frame first, then crops) and the number of zoom calls for one sample."""
    frame = frame_size(original.size, cfg.spec, cfg.budget)
    boxes = frame_boxes(ann, original.size, frame)
    rng = thinking.rng_for(ann, cfg.seed)
    jitter = rng.uniform(-cfg.context_jitter, cfg.context_jitter)
    zcfg = cfg.zoom_config()
    calls = plan_zooms(boxes, frame, zcfg, cfg.policy, max(1.0, cfg.policy.context + jitter))
    turns, crops = [], []
    for k, call in enumerate(calls):
        px = short_side(boxes) if k == 0 else side_in_crop(boxes, calls[k - 1], frame, zcfg)
        written = write_box(call, cfg.spec.coords, frame)
        result = zoom(original, frame, read_box(written, cfg.spec.coords, frame), zcfg)
        if not result.ok:
            raise RuntimeError(f"planned zoom {written} failed: {result.message}")
        crops.append(result.crop)
        think = thinking.think_zoom(ann, rng, k, px, cfg.thinking)
        turns.append(f"<think>{think}</think>\n{zoom_call(written, ann.label)}")
    final = (
        thinking.think_answer(ann, rng, cfg.thinking)
        if calls
        else thinking.think_direct(ann, rng, cfg.thinking)
    )
    head = protocol.prompt_messages(ann.question, ann.options or None, ann.kind)
    messages = assemble(
        head, turns, thinking.answer_turn(ann, final), cfg.layout, protocol.crop_user_turn
    )
    framed = original.resize(frame, RESAMPLE) if original.size != frame else original
    return messages, [framed, *crops], len(calls)


def _meta(ann: Annotation, original: Path, size: tuple[int, int], frame, zooms: int, cfg) -> dict:
    boxes = frame_boxes(ann, size, frame)
    return {
        "id": ann.id,
        "question": ann.question,
        "answer": ann.answer,
        "answer_text": ann.answer_text,
        "options": ann.options,
        "kind": ann.kind,
        "category": ann.category or ann.task,
        "bbox": ann.bbox,
        "extra_boxes": ann.extra_boxes,
        "original": str(original.resolve()),
        "original_size": list(size),
        "frame_size": list(frame),
        "family": cfg.family,
        "zooms": zooms,
        # The policy's verdict, kept so evaluation can split its rates the same way.
        "legible": legible(boxes, cfg.policy),
        "target_side": round(short_side(boxes), 2),
        "layout": cfg.layout,
        "source": ann.data_source or "synthesize",
    }


@dataclass
class Sample:
    """One synthesized sample before it is written: its row, images and where they go."""

    row: dict
    images: list[Image.Image]
    bucket: str
    zooms: int

    def save(self, out_dir: Path) -> None:
        """Write the images; a failure here (a full disk) is the run's, not the row's."""
        for rel, img in zip(self.row["images"], self.images, strict=True):
            (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            img.save(out_dir / rel, compress_level=PNG_LEVEL)


def synthesize_row(ann: Annotation, ann_dir: Path, cfg: SynthConfig, protocol: Protocol) -> Sample:
    """One annotation's trajectory and images; raises ValueError/OSError for a bad row."""
    path = resolve(ann_dir, ann.image)
    original = load_image(path)
    ann = _fit_boxes(ann, original.size)
    messages, images, zooms = trajectory(ann, original, cfg, protocol)
    folder = Path("images") / folder_name(ann.id, ann.index)
    names = ["frame.png", *(f"crop{k}.png" for k in range(1, len(images)))]
    row = {
        "messages": messages,
        "images": [(folder / n).as_posix() for n in names],
        "meta": _meta(ann, path, original.size, images[0].size, zooms, cfg),
    }
    return Sample(row, images, bucket(original.size), zooms)


def _fit_boxes(ann: Annotation, size: tuple[int, int]) -> Annotation:
    """The annotation with its boxes clipped to the image; a box far outside is an error."""
    boxes = [ann.bbox, *ann.extra_boxes]
    for box in boxes:
        problem = box_problem(box, size)  # type: ignore[arg-type]
        if problem:
            raise ValueError(f"{problem}; fix the annotation")
    bbox, *extra = [clip_box(b, size) for b in boxes]  # type: ignore[arg-type]
    return replace(ann, bbox=bbox, extra_boxes=extra)


def id_collisions(anns: list[Annotation]) -> list[str]:
    """One ``row N: ...`` message per annotation whose id clashes with an earlier row's."""
    index, problems = IdIndex(ids={}), []
    for ann in anns:
        clash = index.add(ann.index, ann.id)
        if clash:
            problems.append(f"row {ann.index}: {clash}; give every annotation its own id")
    return problems


@dataclass
class SynthResult:
    rows: list[dict]
    mix: Mix
    errors: list[str]
    path: Path


def synthesize(
    annotations: str | Path,
    out_dir: str | Path,
    cfg: SynthConfig = SynthConfig(),
    progress: bool = True,
    limit: int | None = None,
    *,
    overwrite: bool = False,
) -> SynthResult:
    """Build ``out_dir/train.json`` from an annotation file; bad annotations are reported.

    The folder appears complete or not at all (``core.atomic.replace_dir``); an existing
    one is replaced only with ``overwrite``. Ids that collide raise ``SynthesizeError``
    before anything is written.
    """
    from tqdm import tqdm

    annotations = Path(annotations)
    out = check_output(out_dir, arg="--out", inputs=[annotations], overwrite=overwrite, folder=True)
    records = read_rows(annotations)[:limit]
    anns, errors = normalize_all(records, require_bbox=True)
    collisions = id_collisions(anns)
    if collisions:
        raise SynthesizeError(collisions)
    protocol, mix, rows = load_protocol(cfg.protocol), Mix(), []
    with replace_dir(out) as stage:
        for ann in tqdm(anns, desc="synthesize", unit="sample", disable=not progress):
            try:
                sample = synthesize_row(ann, annotations.parent, cfg, protocol)
            except (OSError, ValueError, RuntimeError) as exc:
                errors.append(f"row {ann.index}: {exc}")
                continue
            sample.save(stage)
            rows.append(sample.row)
            mix.add(sample.bucket, sample.zooms)
        write_rows(stage / "train.json", rows)
        write_json(stage / "mix.json", mix.to_dict())
        write_text(stage / "mix.txt", mix.table() + "\n")
    errors.sort(key=_row_number)
    return SynthResult(rows, mix, errors, out / "train.json")


def _row_number(problem: str) -> int:
    head = problem.split(":", 1)[0].removeprefix("row ")
    return int(head) if head.isdigit() else -1
