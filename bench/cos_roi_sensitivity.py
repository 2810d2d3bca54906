"""Does a model's Chain-of-Spot ROI depend on where the target is?

Shows the model the protocol's ROI request (turn 1, as ``cof eval --method chain-of-spot``
asks it) over plain grey frames (like the quickstart scenes' muted backgrounds) with one
purple square, moved over a 3 x 3 grid of spots, and
prints, per spot, the greedy ROI reply and the log-probabilities of the reply's first number
after ``[0.``; then the largest change of those log-probabilities between any two spots. A
model that localises changes them by nats and writes different boxes; one that ignores the
image changes them by almost nothing. The reference is the model itself on the same
question: only the square's place differs between the frames.

    python bench/cos_roi_sensitivity.py --model runs/quickstart-cos/model/sft
    python bench/cos_roi_sensitivity.py --model OUT/model/sft --protocol OUT/protocol.yaml
    python bench/cos_roi_sensitivity.py --model CKPT --size 1344x1008 --side 40 \\
        --min-pixels 3136 --max-pixels 1003520   # a real checkpoint, at its own budget
"""

from __future__ import annotations

import argparse
import itertools

from PIL import Image, ImageDraw

from cof_plugins.core.chat_template import render
from cof_plugins.core.cos import load_cos_protocol
from cof_plugins.core.frame import PixelBudget
from cof_plugins.core.zoom_step import make_frame
from cof_plugins.eval.backends import Request
from cof_plugins.testbed.tiny_model import TINY_BUDGET

QUESTION = "What is the colour of the small square?"
BACKGROUND, TARGET = (182, 182, 182), (140, 40, 180)  # the scenes' grey range, their purple


def frames(width: int, height: int, side: int) -> dict[str, Image.Image]:
    """One grey frame per grid spot, a purple square of ``side`` pixels centred on it."""
    out = {}
    for (row, ry), (col, cx) in itertools.product(
        enumerate((1 / 6, 1 / 2, 5 / 6)), enumerate((1 / 6, 1 / 2, 5 / 6))
    ):
        image = Image.new("RGB", (width, height), BACKGROUND)
        x, y = round(cx * width - side / 2), round(ry * height - side / 2)
        ImageDraw.Draw(image).rectangle((x, y, x + side - 1, y + side - 1), fill=TARGET)
        out[f"row {row} col {col}"] = image
    return out


def frame_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` in pixels, each 28 or more (argparse reports a bad one)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 224x168") from None
    if min(width, height) < 28:
        raise argparse.ArgumentTypeError(f"{text!r}: each side must be 28 pixels or more")
    return width, height


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="checkpoint folder (transformers layout)")
    p.add_argument("--protocol", default="chain-of-spot", help="preset or YAML file")
    p.add_argument(
        "--size",
        type=frame_size,
        default="224x168",
        help="frame WIDTHxHEIGHT (default: %(default)s)",
    )
    p.add_argument("--side", type=int, default=12, help="the square's side in pixels")
    p.add_argument("--min-pixels", type=int, default=TINY_BUDGET.min_pixels)
    p.add_argument("--max-pixels", type=int, default=TINY_BUDGET.max_pixels)
    p.add_argument("--max-new-tokens", type=int, default=24)
    args = p.parse_args(argv)
    import torch

    from cof_plugins.eval.backends.transformers import TransformersBackend

    width, height = args.size
    budget = PixelBudget(args.min_pixels, args.max_pixels)
    backend = TransformersBackend(args.model, budget=budget, device="cpu")
    cos = load_cos_protocol(args.protocol)
    # The ROI request exactly as `cof eval --method chain-of-spot` sends it (turn 1).
    messages = [*cos.system_messages(), {"role": "user", "content": cos.roi_turn(QUESTION)}]
    prompt = render(messages, add_generation_prompt=True, family=backend.family)
    logps, replies = {}, {}
    for spot, image in frames(width, height, args.side).items():
        frame = make_frame(image, backend.family or "qwen2_5_vl", budget)
        reply = backend.generate([Request(messages, [frame])], args.max_new_tokens)[0]
        replies[spot] = reply.text
        enc = backend.processor(text=[prompt + "[0."], images=[frame], return_tensors="pt")
        with torch.inference_mode():
            logits = backend.model(**enc.to(backend.device)).logits[0, -1].float()
        logps[spot] = torch.log_softmax(logits, -1)
    tok = backend.processor.tokenizer
    for spot, lp in logps.items():
        top = lp.topk(3)
        first = ", ".join(f"{tok.decode([int(i)])!r} {v:.2f}" for v, i in zip(*top, strict=True))
        print(f"{spot}: reply {replies[spot]!r}; first number after '[0.': {first}")
    spread = max((a - b).abs().max().item() for a, b in itertools.combinations(logps.values(), 2))
    print(f"largest change of the first number's log-probabilities between spots: {spread:.4f}")
    print(f"distinct replies over the 9 spots: {len(set(replies.values()))}")


if __name__ == "__main__":
    main()
