"""Format probe: did SFT teach the CoF turn format? Greedy first turns on held-out prompts.

A fine-tuned model should open every answer with ``<think>...</think>`` and then either one
readable ``<tool_call>`` (a zoom with a box) or an ``<answer>``. This probe splits a
trajectory file into train / held-out rows, and scores a checkpoint by the share of
held-out first turns that parse that way (``core.parser.parse_turn``). It measures format
only, not accuracy: a tiny random model can learn the format, not the task.

    python -m cof_plugins.llamafactory.probe split DATA/train.json --eval 20
    python -m cof_plugins.llamafactory.probe score DATA/probe_eval.json --model MERGED
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cof_plugins.core.families import family_of_model_type, get_family
from cof_plugins.core.parser import parse_turn


def split(data: str | Path, n_eval: int) -> tuple[Path, Path]:
    """Write ``probe_train.json`` and ``probe_eval.json`` beside ``data`` (same image root)."""
    path = Path(data)
    rows = json.loads(path.read_text(encoding="utf-8"))
    if not 0 < n_eval < len(rows):
        raise ValueError(f"--eval must be between 1 and {len(rows) - 1}, got {n_eval}")
    train, held = path.with_name("probe_train.json"), path.with_name("probe_eval.json")
    train.write_text(json.dumps(rows[:-n_eval], ensure_ascii=False), encoding="utf-8")
    held.write_text(json.dumps(rows[-n_eval:], ensure_ascii=False), encoding="utf-8")
    return train, held


def well_formed(text: str) -> bool:
    """``<think>`` then exactly one of: a readable zoom call with a box, or an answer."""
    turn = parse_turn(text)
    if turn.think is None or turn.errors:
        return False
    calls_ok = len(turn.tool_calls) == 1 and turn.tool_calls[0].bbox is not None
    return calls_ok != (turn.answer is not None)


def first_turns(
    model_dir: str | Path, rows: Sequence[dict[str, Any]], image_root: Path, max_new_tokens: int
) -> list[str]:
    """Greedy first assistant turn for each row's system + first user message."""
    import torch
    import transformers

    from cof_plugins.core.zoom import load_image

    processor = transformers.AutoProcessor.from_pretrained(model_dir)
    model = transformers.AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    spec = family_of_model_type(model.config.model_type) or get_family("qwen2_5_vl")
    end = processor.tokenizer.convert_tokens_to_ids(spec.tokens.end_of_turn)
    texts = []
    for row in rows:
        prompt = row["messages"][:2]
        text = processor.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        n_images = sum(m["content"].count("<image>") for m in prompt)
        images = [load_image(image_root / p) for p in row["images"][:n_images]]
        inputs = processor(text=[text], images=images, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(
                **inputs, do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=end
            )
        new = out[0, inputs["input_ids"].shape[1] :]
        texts.append(processor.tokenizer.decode(new, skip_special_tokens=True))
    return texts


def score(data: str | Path, model_dir: str | Path, max_new_tokens: int = 160) -> dict[str, Any]:
    """Rate of well-formed first turns on the rows of ``data``, with examples."""
    path = Path(data)
    rows = json.loads(path.read_text(encoding="utf-8"))
    texts = first_turns(model_dir, rows, path.parent, max_new_tokens)
    flags = [well_formed(t) for t in texts]
    zooms = sum(bool(parse_turn(t).tool_calls) for t in texts)
    return {
        "n": len(texts),
        "well_formed": sum(flags),
        "rate": sum(flags) / len(texts),
        "zoom_calls": zooms,
        "examples": texts[:3],
        "bad_examples": [t for t, ok in zip(texts, flags, strict=True) if not ok][:3],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cof_plugins.llamafactory.probe")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("split", help="write probe_train.json / probe_eval.json beside DATA")
    p.add_argument("data")
    p.add_argument("--eval", type=int, default=20)
    p = sub.add_parser("score", help="rate of well-formed greedy first turns")
    p.add_argument("data")
    p.add_argument("--model", required=True, help="merged checkpoint (cof export)")
    p.add_argument("--max-new-tokens", type=int, default=160)
    args = parser.parse_args(argv)
    if args.cmd == "split":
        train, held = split(args.data, args.eval)
        print(f"wrote {train} and {held}")
    else:
        print(json.dumps(score(args.data, args.model, args.max_new_tokens), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
