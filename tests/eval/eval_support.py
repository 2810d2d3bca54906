"""Helpers for the eval-harness tests: benchmark files in each released layout (built from
the synthetic samples), readers of chat requests, a fake backend. The scripted
OpenAI-compatible server is ``cof_plugins.testbed.openai_server``.

Imported by the tests with this folder on sys.path (pytest runs with --import-mode=importlib).
"""

from __future__ import annotations

import base64
import io
import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from cof_plugins.eval.backends import Generation

# ---------------------------------------------------------------- benchmark writers


def _vstar_text(sample) -> str:
    lines = [sample.question]
    lines += [f"({string.ascii_uppercase[i]}) {o}" for i, o in enumerate(sample.options)]
    lines.append("Answer with the option's letter from the given choices directly.")
    return "\n".join(lines)


def write_vstar(folder: Path, samples, synth_dir: Path) -> Path:
    """V* release layout: images in category folders beside test_questions.jsonl."""
    rows = []
    for i, s in enumerate(samples):
        (folder / s.category).mkdir(parents=True, exist_ok=True)
        name = f"{s.category}/{Path(s.image).name}"
        (folder / name).write_bytes((synth_dir / s.image).read_bytes())
        rows.append({"image": name, "text": _vstar_text(s), "category": s.category,
                     "question_id": i, "label": s.answer})  # fmt: skip
    (folder / "test_questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def b64_file(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def hrbench_rows(samples, synth_dir: Path, cycles: int = 2) -> list[dict[str, Any]]:
    """HR-Bench rows: options cycled ``cycles`` times; repeats point at the first row's index."""
    rows = []
    for s in samples:
        n, first = len(s.options), None
        for c in range(cycles):
            order = [(k + c) % n for k in range(n)]
            row = {"index": str(len(rows)), "question": s.question, "category": s.category}
            row.update({"ABCD"[k]: s.options[order[k]] if k < n else "" for k in range(4)})
            row["answer"] = "ABCD"[order.index("ABCD".index(s.answer))]
            row["image"] = b64_file(synth_dir / s.image) if first is None else first
            first = first or row["index"]
            rows.append(row)
    return rows


def write_tsv(path: Path, rows: list[dict[str, Any]]) -> Path:
    import csv

    header = ["index", "question", "A", "B", "C", "D", "answer", "category", "image"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(k, "") for k in header])
    return path


def write_parquet(path: Path, rows: list[dict[str, Any]], synth_dir_images: dict) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    full = [dict(r, image=synth_dir_images[r["question"]]) for r in rows]
    table = pa.Table.from_pylist(full)
    pq.write_table(table, path, row_group_size=2)
    return path


def write_mme(path: Path, samples, synth_dir: Path) -> Path:
    rows = []
    for i, s in enumerate(samples):
        rows.append({
            "Question_id": f"perception/synth/{i}", "Image": s.image, "Text": s.question,
            "Question Type": "Multiple Choice",
            "Answer choices": [f"({'ABCD'[k]}) {o}" for k, o in enumerate(s.options)],
            "Ground truth": s.answer, "Task": "Perception", "Subtask": "Synth", "Category": s.kind,
        })  # fmt: skip
    path.write_text(json.dumps(rows))
    return path


def write_jsonl(path: Path, samples, extra: list[dict] | None = None) -> Path:
    rows = [{"id": s.id, "image": s.image, "question": s.question, "options": s.options,
             "answer": s.answer, "category": s.category} for s in samples]  # fmt: skip
    rows += extra or []
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ---------------------------------------------------------------- chat requests


def request_text(body: dict) -> str:
    """All text of a chat request, for checking what the model was told."""
    out = []
    for message in body["messages"]:
        content = message["content"]
        parts = [content] if isinstance(content, str) else [p.get("text", "") for p in content]
        out.extend(parts)
    return "\n".join(out)


def request_images(body: dict) -> list[Image.Image]:
    images = []
    for message in body["messages"]:
        if isinstance(message["content"], list):
            for part in message["content"]:
                if part.get("type") == "image_url":
                    data = part["image_url"]["url"].split(",", 1)[1]
                    images.append(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
    return images


def turn_of(body: dict) -> int:
    return sum(1 for m in body["messages"] if m["role"] == "assistant")


# ---------------------------------------------------------------- fake backend


class FakeBackend:
    """In-process backend: ``reply(request, turn) -> text``; records every request."""

    name = "fake"

    def __init__(self, reply: Callable[[Any, int], str]) -> None:
        self.reply = reply
        self.calls: list[list] = []

    def generate(self, requests, max_new_tokens):
        self.calls.append(list(requests))
        out = []
        for r in requests:
            turn = sum(1 for m in r.messages if m["role"] == "assistant")
            text = self.reply(r, turn)
            out.append(Generation(text, len(text.split())))
        return out

    def describe(self):
        return {"backend": self.name, "model": "fake"}

    def close(self):
        pass


def zoom_call(box) -> str:
    return (
        "<think>too small, zoom</think> <tool_call>"
        + json.dumps({"name": "image_zoom_in_tool", "arguments": {"bbox_2d": list(box)}})
        + "</tool_call>"
    )


def answer(letter: str) -> str:
    return f"<think>I can see it now</think> <answer>{letter}</answer>"
