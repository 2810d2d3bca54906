"""The Chain-of-Spot report: rates per model and questions drawn with their ROI and target.

Written like ``cof report`` (the same blocks, Markdown with PNGs beside it and one
self-contained HTML page: ``eval.report.to_markdown``/``to_html``). Each drawing shows the
image with the target box (green, when known) and the model's ROI (red; none on a
fallback), the crop the model was given as its second image, and the replies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from cof_plugins.core.cos import RoiFrame, load_cos_protocol
from cof_plugins.eval.images import ImageRef

TARGET = (20, 170, 40)
ROI = (220, 30, 30)
SIDE = 320  # drawn image's longer side
RELEASE = (
    "Published reference points (Chain-of-Spot README, LLaVA-1.5-13B): VQAv2 80.0 -> 81.8, "
    "GQA 63.3 -> 64.8 with Chain-of-Spot. Those are LLaVA-13B figures on real benchmarks; a "
    "Qwen2.5-VL recipe's numbers compare with its own base model, and the tiny model here "
    "with nothing but itself: it shows the method's mechanics and that the ROI is learnt."
)
_ROWS = (
    ("n", "questions"),
    ("roi_overlap_rate", "ROI overlaps the target"),
    ("roi_iou_mean", "mean IoU of ROI and target"),
    ("fallback_rate", "fallback (unusable box)"),
    ("fallbacks", "fallbacks by problem"),
    ("accuracy", "accuracy"),
    ("errors", "errors"),
)


def write_report(
    runs: Mapping[str, str | Path],
    out_dir: str | Path,
    *,
    notes: list[str] = (),
    drawings: int = 4,
    protocol: str = "chain-of-spot",
    family: str = "qwen2_5_vl",
) -> tuple[Path, Path]:
    """Write ``report.md`` (+ PNGs) and ``report.html`` for named run directories."""
    from cof_plugins.eval.report import to_html, to_markdown

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    summaries = {name: _summary(Path(d)) for name, d in runs.items()}
    blocks: list[tuple] = [("h", 1, "Chain-of-Spot")]
    blocks += [("p", note) for note in notes]
    header = ["", *summaries]
    rows = [[label, *(_fmt(s.get(key)) for s in summaries.values())] for key, label in _ROWS]
    blocks += [("table", header, rows), ("p", RELEASE)]
    for name, run_dir in runs.items():
        blocks.append(("h", 2, f"{name}: questions with their ROI"))
        for i, record in enumerate(_records(Path(run_dir))[:drawings]):
            path = out / "images" / f"{name}_{i}.png"
            draw_record(record, protocol, family).save(path)
            blocks.append(("img", str(path), _caption(record)))
    md, page = out / "report.md", out / "report.html"
    _atomic_write(md, to_markdown(blocks, out))
    _atomic_write(page, to_html(blocks).replace("CoF evaluation report", "Chain-of-Spot report"))
    return md, page


def draw_record(record: dict[str, Any], protocol: str, family: str) -> Image.Image:
    """The image with target (green) and ROI (red) boxes, and the second image beside it."""
    image = ImageRef.from_dict(record["image"]).load()
    scale = SIDE / max(image.size)
    shown = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    draw = ImageDraw.Draw(shown)
    for box, colour in ((record.get("target"), TARGET), (record.get("roi"), ROI)):
        if box:
            draw.rectangle([v * scale for v in box], outline=colour, width=3)
    cos = load_cos_protocol(protocol)
    frame = RoiFrame(cos.box_frame, image.size, family, decimals=cos.decimals)
    second = frame.crop(image, tuple(record["roi"])) if record.get("roi") else image
    second.thumbnail((SIDE // 2, SIDE // 2))
    canvas = Image.new(
        "RGB", (shown.width + second.width + 30, max(shown.height, second.height) + 20), "white"
    )
    canvas.paste(shown, (10, 10))
    canvas.paste(second, (shown.width + 20, 10))
    return canvas


def _caption(record: dict[str, Any]) -> str:
    replies = record.get("replies") or []
    roi = replies[0] if replies else "-"
    fallback = f" -> fallback ({record['roi_problem']})" if record.get("fallback") else ""
    verdict = "right" if record.get("correct") else "wrong"
    return (
        f"{record['id']}: {record['question']} | ROI reply {roi!r}{fallback} | answer "
        f"{record.get('pred')!r} ({verdict}; truth {record['answer']}) | green: target, red: ROI; "
        "right: the second image"
    )


def _summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))


def _records(run_dir: Path) -> list[dict[str, Any]]:
    from cof_plugins.eval.store import ResultStore

    return ResultStore(run_dir, repair=False).records


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{100 * value:.1f} %" if 0 <= value <= 1 else f"{value:.3f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
    return str(value)


def _atomic_write(path: Path, text: str) -> None:
    from cof_plugins.core.atomic import write_text

    write_text(path, text)
