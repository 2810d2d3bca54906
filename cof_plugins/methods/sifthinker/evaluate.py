"""Evaluate a SIFThinker model on depth scenes: format, answers, boxes and depth.

Each held-out scene is asked once with the SFT/evaluation prompt ("Original image:" RGB,
"Depth image:" map, question, suffix), greedily, through any ``cof eval`` backend
(transformers, OpenAI-compatible, vLLM). Each reply is scored with the same functions as
the RL reward (``rewards.sif``), minus the progress bonus:

- ``well_formed``: the whole reply parses with no problem (the format reward);
- ``areas_well_formed``: the thinking holds at least one area and every box of every area
  is valid (JSON, four coordinates in [0, 1] with x2 > x1 and y2 > y1, a depth, at most
  three decimals): the "well-formed areas" rate the quickstart aims at;
- ``answer_accuracy``: the rule judge on the ``<answer>`` (one-word answers);
- ``iou``: GRPO-SIF's hierarchical IoU term (0-2); ``last_area_iou``: IoU* of the last area;
- ``depth``: the depth term (share of boxes whose d is within 10 % of the map).

Writes ``predictions.jsonl`` and ``summary.json`` (atomically) into the run folder.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from statistics import mean
from typing import Any

from PIL import Image

from cof_plugins.core.depth import BoxMeans, load_depth
from cof_plugins.core.sif import SifParse, parse_sif, prompt_messages
from cof_plugins.rewards.answer_judge import RuleJudge
from cof_plugins.rewards.geometry import hierarchical_iou
from cof_plugins.rewards.sif import depth_reward, format_reward, iou_reward
from cof_plugins.testbed.depth_scenes import DepthScene, read_scenes

RATES = ("well_formed", "areas_well_formed", "answer_accuracy")
MEANS = ("iou", "last_area_iou", "depth")


def areas_well_formed(parsed: SifParse) -> bool:
    """At least one area, and every entry of every area valid."""
    return bool(parsed.areas) and all(
        area.boxes and all(box.valid for box in area.boxes) for area in parsed.areas
    )


def score_reply(text: str, scene: DepthScene, means: BoxMeans) -> dict[str, Any]:
    """Every per-sample figure of one reply."""
    parsed = parse_sif(text)
    gt = scene.gt_boxes()
    areas = [a.valid_boxes for a in parsed.areas if a.valid_boxes]
    verdict = asyncio.run(RuleJudge().score(scene.question, parsed.answer, scene.answer))
    return {
        "well_formed": format_reward(parsed) == 1.0,
        "areas_well_formed": areas_well_formed(parsed),
        "answer_accuracy": verdict.score == 1.0,
        "iou": iou_reward(parsed, gt),
        "last_area_iou": hierarchical_iou(areas[-1], gt) if areas else 0.0,
        "depth": depth_reward(parsed, means),
        "areas": [[list(b) for b in a] for a in areas],
        "answer": parsed.answer,
        "problems": list(parsed.problems[:5]),
    }


def _requests(scenes: list[DepthScene], root: Path, depth_image: str):
    from cof_plugins.eval.backends import Request

    out = []
    for scene in scenes:
        depth = scene.depth_color if depth_image == "color" else scene.depth_gray
        images = [Image.open(root / p).convert("RGB") for p in (scene.image, depth)]
        out.append(Request(prompt_messages(scene.question, with_depth=True), images))
    return out


def evaluate(
    backend: Any,
    scenes_dir: str | Path,
    run_dir: str | Path,
    *,
    max_new_tokens: int = 384,
    batch_size: int = 8,
    depth_image: str = "color",
    limit: int | None = None,
) -> dict[str, Any]:
    """Score ``backend`` on ``scenes_dir/scenes.jsonl``; returns (and writes) the summary."""
    root = Path(scenes_dir)
    scenes = read_scenes(root / "scenes.jsonl")[:limit]
    if not scenes:
        raise ValueError(f"{root / 'scenes.jsonl'} holds no scenes")
    records = []
    for start in range(0, len(scenes), batch_size):
        part = scenes[start : start + batch_size]
        replies = backend.generate(_requests(part, root, depth_image), max_new_tokens)
        for scene, reply in zip(part, replies, strict=True):
            means = BoxMeans(load_depth(root / scene.depth_gray))
            scores = score_reply(reply.text, scene, means)
            records.append(
                {
                    "id": scene.id,
                    "question": scene.question,
                    "truth": scene.answer,
                    "gt_boxes": scene.gt_boxes(),
                    "reply": reply.text,
                    **scores,
                }
            )
    summary = summarise(records)
    summary["model"] = backend.describe()
    _write(Path(run_dir), records, summary)
    return summary


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Rates (share of samples) and means over the records."""
    out: dict[str, Any] = {"n": len(records)}
    for key in RATES:
        out[key] = round(mean(float(r[key]) for r in records), 4)
    for key in MEANS:
        out[key] = round(mean(float(r[key]) for r in records), 4)
    return out


def _write(run_dir: Path, records: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    for name, text in (
        ("predictions.jsonl", lines),
        ("summary.json", json.dumps(summary, indent=1) + "\n"),
    ):
        tmp = run_dir / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, run_dir / name)
