"""Can a model learn Chain-of-Spot's ROI turn from the image? A plain training loop.

Trains a checkpoint on turn 1 of ``cof data chain-of-spot`` rows only (the ROI request and
the ROI reply, loss on the reply) with AdamW and a cosine schedule, and every
``--eval-every`` steps reads, teacher-forced, the first number of the reply on held-out rows:
the share it gets right next to the share the most frequent value would get (a model that
ignores the image can reach that share and no more). The frames are the ones ``cof eval``
makes (the family's template and pixel budget). The oracles replace each training and held-out
image by an easier one, to find what the model can read:

- ``square``: a white square on black where the target is (the target's own size);
- ``roi``: a white square on black where the ROI is (the reply drawn, several tokens wide);
- ``column``: a uniform frame, black, grey or white by the target's third of the width;
- ``tint``: the image blended half with a coordinate ramp (red grows rightwards, blue
  downwards), so every token's colour says where it is;
- ``fade``: a curriculum: training images blended with the ``roi`` oracle, its weight falling
  from 0.8 to 0 over the first 60% of the steps; held-out images as they are.

    python bench/cos_roi_readout.py --model OUT/model/base --rows OUT/data/rows \\
        --heldout HELD_ROWS --steps 600
    python bench/cos_roi_readout.py ... --oracle square --lr 1e-3

``HELD_ROWS`` is ``cof data chain-of-spot`` run on held-out annotations (the quickstart's
``data/heldout/annotations.jsonl``), with the same ``--protocol``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from cof_plugins.core.chat_template import render
from cof_plugins.core.frame import PixelBudget
from cof_plugins.core.zoom_step import make_frame
from cof_plugins.hf_checkpoint import set_image_budget
from cof_plugins.testbed.tiny_model import TINY_BUDGET

ORACLES = ("none", "square", "roi", "column", "tint", "fade")
BOXED = ("square", "roi", "column", "fade")  # the oracles drawn from a box
FADE_START, FADE_END = 0.8, 0.6  # --oracle fade: hint weight at step 0; share of steps to 0


def load_rows(folder: Path, oracle: str) -> list[dict[str, Any]]:
    """Turn 1 of every row: messages, the original image (or its oracle), the reply."""
    for name in ("rois.jsonl", "train.json"):
        if not (folder / name).is_file():
            raise SystemExit(f"{folder}: no {name}; give a `cof data chain-of-spot` output folder")
    targets, rois = {}, {}
    for line in (folder / "rois.jsonl").read_text(encoding="utf-8").splitlines():
        info = json.loads(line)
        targets[info["image"]] = info["target"]
        rois[info["image"]] = info["roi"]
    out = []
    for row in json.loads((folder / "train.json").read_text(encoding="utf-8")):
        path = row["images"][0]
        with Image.open(folder / path) as handle:
            image = handle.convert("RGB")
        target = targets.get(path)
        if oracle in ("roi", "fade"):
            target = rois.get(path)
        if oracle in BOXED and target is None:
            raise SystemExit(f"{folder / 'rois.jsonl'}: no target for {path}; --oracle needs one")
        out.append(
            {
                "messages": row["messages"][:1],
                "reply": row["messages"][1]["content"],
                "image": image if oracle == "fade" else draw_oracle(image, target, oracle),
                "hint": draw_oracle(image, target, "roi") if oracle == "fade" else None,
            }
        )
    return out


def draw_oracle(image: Image.Image, target: list[float] | None, oracle: str) -> Image.Image:
    if oracle == "tint":
        return tint(image)
    if oracle == "none" or target is None:
        return image
    w, h = image.size
    if oracle in ("square", "roi"):
        frame = Image.new("RGB", (w, h), (0, 0, 0))
        ImageDraw.Draw(frame).rectangle(tuple(target), fill=(255, 255, 255))
        return frame
    column = min(2, int(3 * (target[0] + target[2]) / 2 / w))
    return Image.new("RGB", (w, h), [(0, 0, 0), (128, 128, 128), (255, 255, 255)][column])


def tint(image: Image.Image, strength: float = 0.5) -> Image.Image:
    """The image blended with a coordinate ramp (red grows to the right, blue downwards)."""
    w, h = image.size
    ramp = np.zeros((h, w, 3), dtype=np.float32)
    ramp[..., 0] = np.linspace(0, 255, w)[None, :]
    ramp[..., 2] = np.linspace(0, 255, h)[:, None]
    ramp[..., 1] = 128
    arr = np.asarray(image, dtype=np.float32) * (1 - strength) + ramp * strength
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def hint_weight(step: int, steps: int) -> float:
    """``--oracle fade``: the ROI hint's weight at ``step`` of ``steps`` (FADE_START at step 0,
    none from FADE_END of the steps on)."""
    return max(0.0, FADE_START * (1 - step / (FADE_END * steps)))


def training_frame(row: dict[str, Any], weight: float) -> Image.Image:
    """A row's frame with its hint (if any) blended in at ``weight``."""
    if weight > 0 and row.get("hint") is not None:
        return Image.blend(row["frame"], row["hint"], weight)
    return row["frame"]


def first_number(reply: str) -> str:
    """The reply's first number as written ("0.4" of "[0.4, 0.6, 0.6, 0.9]")."""
    return reply.lstrip("[ ").split(",")[0].strip()


def positive(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="checkpoint to train (it is not written back)")
    p.add_argument("--rows", required=True, type=Path, help="cof data chain-of-spot output")
    p.add_argument("--heldout", required=True, type=Path, help="the same for held-out scenes")
    p.add_argument("--family", default="qwen2_5_vl")
    p.add_argument("--steps", type=positive, default=600)
    p.add_argument("--batch-size", type=positive, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--eval-every", type=positive, default=100)
    p.add_argument("--oracle", choices=ORACLES, default="none")
    p.add_argument("--min-pixels", type=int, default=TINY_BUDGET.min_pixels)
    p.add_argument("--max-pixels", type=int, default=TINY_BUDGET.max_pixels)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    # held-out rows are read as they are under --oracle fade: the hint is for training only
    held_oracle = "none" if args.oracle == "fade" else args.oracle
    train, held = load_rows(args.rows, args.oracle), load_rows(args.heldout, held_oracle)
    if args.batch_size > len(train):
        p.error(f"--batch-size {args.batch_size} is more than the {len(train)} training rows")
    if not held:
        p.error(f"--heldout {args.heldout}: no rows")
    import torch
    import transformers

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    budget = PixelBudget(args.min_pixels, args.max_pixels)
    processor = transformers.AutoProcessor.from_pretrained(args.model)
    set_image_budget(processor.image_processor, budget)
    model = transformers.AutoModelForImageTextToText.from_pretrained(args.model)
    for row in (*train, *held):
        row["frame"] = make_frame(row["image"], args.family, budget)
        if row["hint"] is not None:
            row["hint"] = make_frame(row["hint"], args.family, budget)
        prompt = render(row["messages"], add_generation_prompt=True, family=args.family)
        full = render(
            [*row["messages"], {"role": "assistant", "content": row["reply"]}], family=args.family
        )
        row["full"] = full.rstrip("\n")
        # where the reply starts: the prompt's tokens depend on the frame's size, which the
        # hint shares, not on its pixels, so once per row
        row["start"] = len(processor(text=[prompt], images=[row["frame"]])["input_ids"][0])
    tok = processor.tokenizer
    tok.padding_side = "right"

    def batch(rows: list[dict[str, Any]], hint: float = 0.0) -> dict[str, Any]:
        frames = [training_frame(r, hint) for r in rows]
        enc = processor(
            text=[r["full"] for r in rows], images=frames,
            padding=True, return_tensors="pt",
        )  # fmt: skip
        labels = torch.full_like(enc["input_ids"], -100)
        for i, r in enumerate(rows):
            end = int(enc["attention_mask"][i].sum())
            labels[i, r["start"] : end] = enc["input_ids"][i, r["start"] : end]
        return {**enc, "labels": labels}

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    sched = transformers.get_cosine_schedule_with_warmup(opt, max(1, args.steps // 33), args.steps)
    truth = [first_number(r["reply"]) for r in held]
    majority = Counter(truth).most_common(1)[0][1] / len(truth)
    print(f"{len(train)} training rows, {len(held)} held-out; majority first number {majority:.2f}")

    def evaluate() -> tuple[float, Counter]:
        model.eval()
        said = []
        with torch.no_grad():
            for r in held:
                enc = batch([r])
                logits = model(**{k: v for k, v in enc.items() if k != "labels"}).logits[0]
                keep = enc["labels"][0, 1:] != -100
                said.append(tok.decode(logits[:-1].argmax(-1)[keep]))
        model.train()
        firsts = [first_number(s) for s in said]
        right = sum(a == b for a, b in zip(firsts, truth, strict=True)) / len(truth)
        return right, Counter(firsts)

    model.train()
    step, start = 0, time.perf_counter()
    while step < args.steps:
        rng.shuffle(train)
        for i in range(0, len(train) - args.batch_size + 1, args.batch_size):
            hint = hint_weight(step, args.steps) if args.oracle == "fade" else 0.0
            loss = model(**batch(train[i : i + args.batch_size], hint)).loss
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % args.eval_every == 0 or step == args.steps:
                right, said = evaluate()
                print(
                    f"step {step}: loss {loss.item():.3f}, held-out first number right "
                    f"{right:.2f} (majority {majority:.2f}), said {dict(said.most_common(3))}, "
                    f"{time.perf_counter() - start:.0f} s",
                    flush=True,
                )
            if step >= args.steps:
                break


if __name__ == "__main__":
    main()
