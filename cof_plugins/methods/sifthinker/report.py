"""The SIFThinker report section: rates per model, stage times, replies drawn on the images.

Markdown and self-contained HTML through the evaluation report's writers
(``eval.report.to_markdown`` / ``to_html``). Each drawn sample shows the RGB scene with the
target boxes in green and the reply's areas in order (first area thin, last area thick;
red when the answer is wrong, blue when right), next to its depth map.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from cof_plugins.methods.sifthinker.evaluate import MEANS, RATES

GREEN, RED, BLUE, GREY = (20, 170, 40), (230, 25, 75), (0, 110, 220), (150, 150, 150)
SCALE = 2
LEGEND = (
    "Green: target boxes. Grey: earlier areas. Thick: the last area (blue when the answer "
    "is right, red when wrong). Right: the depth map."
)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _rect(draw: ImageDraw.ImageDraw, box, size, colour, width: int) -> None:
    w, h = size
    draw.rectangle([box[0] * w, box[1] * h, box[2] * w, box[3] * h], outline=colour, width=width)


def draw_sample(record: dict[str, Any], rgb: Image.Image, depth: Image.Image) -> Image.Image:
    """RGB with targets and areas, the depth map, and the reply's first lines below."""
    size = (rgb.width * SCALE, rgb.height * SCALE)
    left = rgb.convert("RGB").resize(size)
    draw = ImageDraw.Draw(left)
    for box in record["gt_boxes"]:
        _rect(draw, box, size, GREEN, 3)
    areas = record.get("areas") or []
    colour = BLUE if record.get("answer_accuracy") else RED
    for k, area in enumerate(areas):
        last = k == len(areas) - 1
        for box in area:
            _rect(draw, box, size, colour if last else GREY, 4 if last else 1)
    lines = textwrap.wrap(record.get("reply", ""), 110)[:6] or ["(empty reply)"]
    canvas = Image.new("RGB", (size[0] * 2 + 12, size[1] + 16 * len(lines) + 12), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(depth.convert("RGB").resize(size), (size[0] + 12, 0))
    text = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        text.text((4, size[1] + 6 + 16 * i), line, fill=(30, 30, 30), font=_font(12))
    return canvas


def _summary_rows(runs: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for name, summary in runs.items():
        rates = [f"{100 * summary[k]:.0f}%" for k in RATES]
        means = [f"{summary[k]:.3f}" for k in MEANS]
        rows.append([name, str(summary["n"]), *rates, *means])
    return rows


def build_report(
    eval_dirs: dict[str, Path],
    scenes_dir: Path,
    out_dir: Path,
    *,
    stages: list[dict[str, Any]] | None = None,
    settings: list[tuple[str, str]] | None = None,
    rollouts: list[dict[str, Any]] | None = None,
    samples: int = 6,
) -> Path:
    """Write ``out_dir/report.md`` and ``report.html``; returns the HTML path."""
    from cof_plugins.eval.report import to_html, to_markdown

    out_dir.mkdir(parents=True, exist_ok=True)
    runs = {n: json.loads((d / "summary.json").read_text()) for n, d in eval_dirs.items()}
    blocks: list[tuple] = [("h", 1, "SIFThinker quickstart")]
    blocks.append(("h", 2, "Held-out synthetic depth scenes"))
    header = ["model", "n", *RATES, *MEANS]
    blocks.append(("table", header, _summary_rows(runs)))
    if settings:
        blocks += [("h", 2, "What it took"), ("table", ["setting", "value"], settings)]
    if rollouts:
        rows = [[str(r["step"]), str(r["rollouts"]), f"{r['mean_score']:.3f}",
                 f"{100 * r['areas_well_formed']:.0f}%"] for r in rollouts]  # fmt: skip
        header = ["GRPO step", "rollouts", "mean reward (sum of 4)", "well-formed areas"]
        blocks += [("h", 2, "GRPO rollouts (verl, CPU)"), ("table", header, rows)]
    if stages:
        rows = [[s["stage"], f"{s['seconds']:.1f}", "ok" if s["exit"] == 0 else str(s["exit"])]
                for s in stages]  # fmt: skip
        blocks += [("h", 2, "Stages"), ("table", ["stage", "seconds", "exit"], rows)]
    blocks += _drawings(eval_dirs, scenes_dir, out_dir, samples)
    (out_dir / "report.md").write_text(to_markdown(blocks, out_dir), encoding="utf-8")
    html = out_dir / "report.html"
    html.write_text(to_html(blocks), encoding="utf-8")
    return html


def _drawings(eval_dirs: dict[str, Path], scenes: Path, out_dir: Path, samples: int) -> list:
    from cof_plugins.testbed.depth_scenes import read_scenes

    by_id = {s.id: s for s in read_scenes(scenes / "scenes.jsonl")}
    blocks: list[tuple] = [("h", 2, "Replies drawn on the scenes")]
    blocks.append(("p", LEGEND))
    (out_dir / "images").mkdir(exist_ok=True)
    for name, run in eval_dirs.items():
        lines = (run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
        for record in map(json.loads, lines[:samples]):
            scene = by_id[record["id"]]
            with (
                Image.open(scenes / scene.image) as rgb,
                Image.open(scenes / scene.depth_color) as d,
            ):
                picture = draw_sample(record, rgb, d)
            path = out_dir / "images" / f"{name}_{record['id']}.png"
            picture.save(path)
            truth, answer = record["truth"], record["answer"]
            caption = f"{name}: {record['question']} (truth: {truth}; answer: {answer})"
            blocks.append(("img", str(path), caption))
    return blocks
