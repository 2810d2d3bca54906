"""Can a model learn Chain-of-Spot's ROI turn from the image? A plain training loop.

Trains a checkpoint on turn 1 of ``cof data chain-of-spot`` rows only (the ROI request and
the ROI reply, loss on the reply) with AdamW and a cosine schedule, and every
``--eval-every`` steps reads, teacher-forced, the first number of the reply on held-out rows:
the share it gets right next to the share the most frequent value would get (a model that
ignores the image can reach that share and no more). The frames are the ones ``cof eval``
makes (the family's template and pixel budget). ``--oracle square`` replaces each image by
a white square on black where its target is, ``--oracle column`` by a frame that is black,
grey or white by the target's third of the width: both say whether the model can read
the image at all when seeing is trivial.

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

from PIL import Image, ImageDraw

from cof_plugins.core.chat_template import render
from cof_plugins.core.frame import PixelBudget
from cof_plugins.core.zoom_step import make_frame
from cof_plugins.hf_checkpoint import set_image_budget
from cof_plugins.testbed.tiny_model import TINY_BUDGET

ORACLES = ("none", "square", "column")


def load_rows(folder: Path, oracle: str) -> list[dict[str, Any]]:
    """Turn 1 of every row: messages, the original image (or its oracle), the reply."""
    targets = {}
    for line in (folder / "rois.jsonl").read_text(encoding="utf-8").splitlines():
        info = json.loads(line)
        targets[info["image"]] = info["target"]
    out = []
    for row in json.loads((folder / "train.json").read_text(encoding="utf-8")):
        path = row["images"][0]
        with Image.open(folder / path) as handle:
            image = handle.convert("RGB")
        target = targets.get(path)
        if oracle != "none" and target is None:
            raise SystemExit(f"{folder / 'rois.jsonl'}: no target for {path}; --oracle needs one")
        out.append(
            {
                "messages": row["messages"][:1],
                "reply": row["messages"][1]["content"],
                "image": draw_oracle(image, target, oracle),
            }
        )
    return out


def draw_oracle(image: Image.Image, target: list[float] | None, oracle: str) -> Image.Image:
    if oracle == "none" or target is None:
        return image
    w, h = image.size
    if oracle == "square":
        frame = Image.new("RGB", (w, h), (0, 0, 0))
        ImageDraw.Draw(frame).rectangle(tuple(target), fill=(255, 255, 255))
        return frame
    column = min(2, int(3 * (target[0] + target[2]) / 2 / w))
    return Image.new("RGB", (w, h), [(0, 0, 0), (128, 128, 128), (255, 255, 255)][column])


def first_number(reply: str) -> str:
    """The reply's first number as written ("0.4" of "[0.4, 0.6, 0.6, 0.9]")."""
    return reply.lstrip("[ ").split(",")[0].strip()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="checkpoint to train (it is not written back)")
    p.add_argument("--rows", required=True, type=Path, help="cof data chain-of-spot output")
    p.add_argument("--heldout", required=True, type=Path, help="the same for held-out scenes")
    p.add_argument("--family", default="qwen2_5_vl")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--oracle", choices=ORACLES, default="none")
    p.add_argument("--min-pixels", type=int, default=TINY_BUDGET.min_pixels)
    p.add_argument("--max-pixels", type=int, default=TINY_BUDGET.max_pixels)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import torch
    import transformers

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    budget = PixelBudget(args.min_pixels, args.max_pixels)
    processor = transformers.AutoProcessor.from_pretrained(args.model)
    set_image_budget(processor.image_processor, budget)
    model = transformers.AutoModelForImageTextToText.from_pretrained(args.model)
    train, held = load_rows(args.rows, args.oracle), load_rows(args.heldout, args.oracle)
    for row in (*train, *held):
        row["frame"] = make_frame(row["image"], args.family, budget)
        prompt = render(row["messages"], add_generation_prompt=True, family=args.family)
        full = render(
            [*row["messages"], {"role": "assistant", "content": row["reply"]}], family=args.family
        )
        row["prompt"], row["full"] = prompt, full.rstrip("\n")
    tok = processor.tokenizer
    tok.padding_side = "right"

    def batch(rows: list[dict[str, Any]]) -> dict[str, Any]:
        enc = processor(
            text=[r["full"] for r in rows], images=[r["frame"] for r in rows],
            padding=True, return_tensors="pt",
        )  # fmt: skip
        labels = torch.full_like(enc["input_ids"], -100)
        for i, r in enumerate(rows):
            start = len(processor(text=[r["prompt"]], images=[r["frame"]])["input_ids"][0])
            end = int(enc["attention_mask"][i].sum())
            labels[i, start:end] = enc["input_ids"][i, start:end]
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
            loss = model(**batch(train[i : i + args.batch_size])).loss
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
