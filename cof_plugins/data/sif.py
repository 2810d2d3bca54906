"""SIFThinker data: SFT rows for LLaMA-Factory and single-turn RL rows for verl.

Sources are grounded questions with a depth map: the synthetic scenes of
``testbed.depth_scenes`` (depth known by construction) or your own annotations (``--from``:
one JSON object per row with ``image``, ``depth_image``, ``question``, ``answer`` and
``gt_boxes`` as fractions of the image; a Depth-Anything-V2 map, gray or Spectral_r, fits).

- **SFT row** (sharegpt, the shipped ``cof_sft`` dataset entry): system, the user turn
  "Original image:" RGB "Depth image:" map + question + suffix, and the assistant reply
  built by reverse expansion (``sif_chain``); ``images`` = [RGB, depth map]; ``meta``
  keeps the release's row fields (dataset, image, depth_image, problem,
  normalized_solution = target boxes with depth, answer, key).
- **RL row** (verl ``RLHFDataset``, ``agent_name: single_turn_agent``): system + user turn
  with the RGB only (the release's GRPO prompt; ``rl_depth_image`` adds the map), the
  images embedded as PNG bytes with the recipe's pixel bounds, ``reward_model.ground_truth``
  = the answer, and ``extra_info`` = index, key, question, answer, kind, options,
  gt_boxes, depth_map (absolute path of the map the depth reward decodes).
"""

from __future__ import annotations

import io
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from cof_plugins.core.depth import BoxMeans, load_depth
from cof_plugins.core.frame import PixelBudget
from cof_plugins.core.sif import prompt_messages
from cof_plugins.data.sif_chain import ChainConfig, Step, build_chain, chain_reply

DATA_SOURCE = "sifthinker"
DEPTH_IMAGES = ("color", "gray")
_SUBJECT = "what the question asks about"


@dataclass(frozen=True)
class SifSource:
    """One grounded question; paths are relative to the data root (or absolute)."""

    key: str
    image: str
    depth: str
    question: str
    answer: str
    boxes: list[tuple[float, float, float, float]]
    subject: str = _SUBJECT
    kind: str = "open"
    options: list[str] = field(default_factory=list)
    dataset: str = "sif_synthetic"


@dataclass(frozen=True)
class SifDataConfig:
    chain: ChainConfig = field(default_factory=ChainConfig)
    rl_depth_image: bool = False
    budget: PixelBudget = field(default_factory=PixelBudget)
    seed: int = 0


def scene_subject(scene: Any) -> str:
    """What a synthetic scene's question is about, for the template sentences."""
    objs = [scene.objects[i] for i in scene.targets]
    if scene.kind == "closer":
        return f"the {objs[0].name} and the {objs[1].name}"
    if scene.kind == "nearest_colour":
        return "the nearest object"
    if scene.kind == "shape":
        return f"the {objs[0].colour} object"
    return "the farthest object"


def sources_from_scenes(scenes: Sequence[Any], depth_image: str = "color") -> list[SifSource]:
    if depth_image not in DEPTH_IMAGES:
        raise ValueError(f"depth image {depth_image!r}: use one of {', '.join(DEPTH_IMAGES)}")
    return [
        SifSource(
            key=s.id,
            image=s.image,
            depth=s.depth_color if depth_image == "color" else s.depth_gray,
            question=s.question,
            answer=s.answer,
            boxes=[tuple(b) for b in s.gt_boxes()],
            subject=scene_subject(s),
        )
        for s in scenes
    ]


def sources_from_rows(rows: Sequence[Any]) -> tuple[list[SifSource], list[str]]:
    """Annotations -> sources; each bad row is reported as ``row N: ... Fix: ...``."""
    sources, problems = [], []
    for i, row in enumerate(rows):
        try:
            sources.append(_source(i, row))
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"row {i}: {exc}")
    return sources, problems


def _source(i: int, row: Mapping[str, Any]) -> SifSource:
    if not isinstance(row, Mapping):
        raise ValueError("not a JSON object. Fix: one object per row")
    missing = [
        k for k in ("image", "depth_image", "question", "answer", "gt_boxes") if k not in row
    ]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}. Fix: add them (gt_boxes as fractions)")
    boxes = [tuple(float(v) for v in b) for b in row["gt_boxes"]]
    for b in boxes:
        if len(b) != 4 or not (0 <= b[0] < b[2] <= 1 and 0 <= b[1] < b[3] <= 1):
            raise ValueError(
                f"gt_boxes entry {list(b)} is not [x1, y1, x2, y2] with 0 <= x1 < x2 <= 1 and "
                "0 <= y1 < y2 <= 1. Fix: divide pixel boxes by the image width and height"
            )
    if not boxes:
        raise ValueError("gt_boxes is empty. Fix: give at least one target box")
    return SifSource(
        key=str(row.get("key") or row.get("id") or i),
        image=str(row["image"]),
        depth=str(row["depth_image"]),
        question=str(row["question"]),
        answer=str(row["answer"]),
        boxes=boxes,
        subject=str(row.get("subject") or _SUBJECT),
        dataset=str(row.get("dataset") or "annotations"),
    )


def _chain(src: SifSource, root: Path, cfg: SifDataConfig) -> list[Step]:
    means = BoxMeans(load_depth(root / src.depth))
    rng = random.Random(f"{cfg.seed}:{src.key}")
    chain, _ = build_chain(src.boxes, means, rng, cfg.chain)
    return chain


def sft_row(src: SifSource, root: Path, cfg: SifDataConfig) -> dict[str, Any]:
    """A LLaMA-Factory sharegpt row (system, user, assistant; RGB then depth map)."""
    chain = _chain(src, root, cfg)
    reply = chain_reply(chain, src.subject, src.answer)
    messages = prompt_messages(src.question, with_depth=True)
    target = chain[-1]
    return {
        "messages": [*messages, {"role": "assistant", "content": reply}],
        "images": [src.image, src.depth],
        "meta": {
            "dataset": src.dataset,
            "image": src.image,
            "depth_image": src.depth,
            "problem": src.question,
            "answer": src.answer,
            "normalized_solution": [
                [*box, d] for box, d in zip(target.boxes, target.depths, strict=True)
            ],
            "chain": [step.role for step in chain],
            "key": src.key,
        },
    }


def _png(path: Path) -> bytes:
    with Image.open(path) as image:
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="PNG", compress_level=1)
        return buf.getvalue()


def rl_record(
    index: int, src: SifSource, root: Path, final_root: Path, cfg: SifDataConfig
) -> dict[str, Any]:
    """A verl RLHFDataset row; ``final_root`` is where the data will live (absolute)."""
    bounds = {"min_pixels": cfg.budget.min_pixels, "max_pixels": cfg.budget.max_pixels}
    images = [{"bytes": _png(root / src.image), **bounds}]
    if cfg.rl_depth_image:
        images.append({"bytes": _png(root / src.depth), **bounds})
    return {
        "data_source": DATA_SOURCE,
        "prompt": prompt_messages(src.question, with_depth=cfg.rl_depth_image),
        "images": images,
        "reward_model": {"style": "rule", "ground_truth": src.answer},
        "extra_info": {
            "index": index,
            "key": src.key,
            "question": src.question,
            "answer": src.answer,
            "kind": src.kind,
            "options": list(src.options),
            "gt_boxes": [list(b) for b in src.boxes],
            "depth_map": str((final_root / src.depth).resolve()),
        },
        "agent_name": "single_turn_agent",
    }


def rl_schema():
    import pyarrow as pa

    image = pa.struct(
        [("bytes", pa.binary()), ("min_pixels", pa.int64()), ("max_pixels", pa.int64())]
    )
    extra = pa.struct(
        [
            ("index", pa.int64()),
            ("key", pa.string()),
            ("question", pa.string()),
            ("answer", pa.string()),
            ("kind", pa.string()),
            ("options", pa.list_(pa.string())),
            ("gt_boxes", pa.list_(pa.list_(pa.float64()))),
            ("depth_map", pa.string()),
        ]
    )
    return pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("images", pa.list_(image)),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
            ("extra_info", extra),
            ("agent_name", pa.string()),
        ]
    )


def write_rl_parquet(records: Sequence[Mapping[str, Any]], path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(list(records), schema=rl_schema()), path)
    return len(records)
