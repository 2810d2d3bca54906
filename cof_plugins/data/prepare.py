"""Released datasets (local snapshots) -> this project's layout (``cof data prepare``).

No network here: download on a connected machine, copy the folder over, then prepare it.

CoF-SFT (``xintongzhang/CoF-SFT-Data-5.4k`` on the Hugging Face hub)::

    DIR/*.json       JSON list of {"messages": [{"role", "content"}], "images": ["<qid>/0.jpg"]}
    DIR/images/...   (or the images beside the JSON); paths are relative to that folder

  Either crop layout is accepted (``data.layout``); ``layout`` can normalise it. Output:
  ``OUT/train.json`` (canonical, ``meta.source = "cof-sft"``) and ``OUT/images`` (a link).

CoF-RL (``xintongzhang/CoF-RL-Data`` on the Hugging Face hub)::

    DIR/*.parquet | *.jsonl | *.json   rows with question (or problem / prompt), answer (or
        ground_truth / solution / reward_model.ground_truth), image (or image_name / images),
        data_source; inline "(A) ..." option lines are split off the question
    DIR/images/...   when images are names rather than embedded bytes

  Output: ``OUT/annotations.jsonl`` (``data.annotations``), ready for ``cof data to-parquet``.

  download (both): ``huggingface-cli download --repo-type dataset <name> --local-dir DIR``

Benchmarks (V*, HR-Bench, MME-RealWorld, users' JSONL): read by ``eval.benchmarks``, the
reader ``cof eval`` uses, and written as ``OUT/annotations.jsonl`` by ``data.benchmarks``.
Every reader reports bad rows by 0-based index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cof_plugins.core.atomic import check_output, replace_dir
from cof_plugins.core.options import split_options
from cof_plugins.core.parser import parse_turn
from cof_plugins.core.protocol import load_protocol
from cof_plugins.data.benchmarks import prepare_benchmark
from cof_plugins.data.layout import LAYOUTS, detect_layout, to_in_turn, to_next_user
from cof_plugins.data.rows import image_count, read_rows, write_rows
from cof_plugins.data.snapshot import (
    find_file,
    first,
    link_images,
    progress,
    save_image_bytes,
    write_annotations,
)
from cof_plugins.data.sources import dataset_names


@dataclass
class Prepared:
    output: Path
    n_rows: int
    problems: list[str]
    inputs: list[Path]


def _image_root(src: Path, image_dir: Path | None, data_file: Path) -> Path:
    if image_dir is not None:
        return image_dir
    return (
        data_file.parent / "images" if (data_file.parent / "images").is_dir() else data_file.parent
    )


def _sft_row(raw: Any, i: int, layout: str | None, problems: list[str]) -> dict | None:
    ok = isinstance(raw, Mapping) and isinstance(raw.get("messages"), list)
    if not ok or not isinstance(raw.get("images", []), list):
        problems.append(f"row {i}: needs a 'messages' list and an 'images' list")
        return None
    messages = [dict(m) for m in raw["messages"]]
    n_tags, n_images = image_count(messages), len(raw.get("images", []))
    if n_tags != n_images:
        problems.append(f"row {i}: {n_tags} <image> tags but {n_images} images (kept; flagged)")
    found = detect_layout(messages)
    if layout and layout != found:
        suffix_turn = load_protocol().crop_user_turn
        messages = (
            to_in_turn(messages) if layout == "in-turn" else to_next_user(messages, suffix_turn)
        )
    last = next((m for m in reversed(messages) if m.get("role") == "assistant"), {})
    answer = parse_turn(str(last.get("content", ""))).answer
    meta = {
        **(raw.get("meta") or {}),
        "id": str(raw.get("id", i)),
        "source": "cof-sft",
        "layout": layout or found,
        "answer": answer,
    }
    # OUT/images links to the snapshot's image folder, so relative paths gain that prefix.
    images = [p if Path(p).is_absolute() else f"images/{p}" for p in raw.get("images", [])]
    return {"messages": messages, "images": images, "meta": meta}


def prepare_cof_sft(
    src: Path, out: Path, image_dir: Path | None, layout: str | None, copy: bool
) -> Prepared:
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"--layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    path = find_file(src, ["*.json", "*.jsonl"], "CoF-SFT JSON")[0]
    problems: list[str] = []
    raw = read_rows(path)
    rows = [_sft_row(r, i, layout, problems) for i, r in enumerate(progress(raw, "cof-sft"))]
    link_images(out, _image_root(src, image_dir, path), copy)
    kept = [r for r in rows if r is not None]
    return Prepared(write_rows(out / "train.json", kept), len(kept), problems, [path])


def _read_table(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict("records")
    return read_rows(path)


def _rl_question(raw: Mapping[str, Any]) -> str | None:
    q = first(raw, "question", "problem", "query")
    prompt = raw.get("prompt")
    if q is None and (isinstance(prompt, list | tuple) or hasattr(prompt, "tolist")):
        users = [m for m in prompt if isinstance(m, Mapping) and m.get("role") == "user"]
        q = users[-1].get("content") if users else None
    return None if q is None else str(q).replace("<image>", "").strip()


def _rl_answer(raw: Mapping[str, Any]) -> str | None:
    answer = first(raw, "answer", "ground_truth", "solution")
    reward = raw.get("reward_model")
    if answer is None and isinstance(reward, Mapping):
        answer = reward.get("ground_truth")
    return None if answer is None else str(answer).strip()


def _rl_image(raw: Mapping[str, Any], i: int, out: Path, root: Path) -> str | None:
    image = first(raw, "image", "image_name", "images", "image_path")
    if isinstance(image, list | tuple) or hasattr(image, "tolist"):
        image = next(iter(image), None)
    if isinstance(image, Mapping):
        if image.get("bytes") is not None:
            return "images/" + save_image_bytes(image["bytes"], out / "images", f"rl-{i:06d}")
        image = image.get("path") or image.get("image")
    if not isinstance(image, str) or not (root / image).is_file():
        return None
    return str((root / image).resolve())


def _rl_row(raw: Any, i: int, out: Path, root: Path, problems: list[str]) -> dict | None:
    if not isinstance(raw, Mapping):
        problems.append(f"row {i}: expected an object, got {type(raw).__name__}")
        return None
    question, answer = _rl_question(raw), _rl_answer(raw)
    try:
        image = _rl_image(raw, i, out, root)
    except (OSError, ValueError) as exc:  # embedded bytes that are not an image
        problems.append(f"row {i}: image: {exc}")
        return None
    if not (question and answer and image):
        missing = [
            k for k, v in (("question", question), ("answer", answer), ("image", image)) if not v
        ]
        problems.append(f"row {i}: missing or unreadable {', '.join(missing)}")
        return None
    try:
        text, options = split_options(question)
    except ValueError as exc:
        problems.append(f"row {i}: question: {exc}")
        return None
    return {
        "id": str(first(raw, "id", "index") or f"cof-rl-{i}"),
        "image": image,
        "question": text,
        "options": list(options),
        "answer": answer,
        "data_source": str(raw.get("data_source") or "cof-rl"),
    }


def prepare_cof_rl(src: Path, out: Path, image_dir: Path | None) -> Prepared:
    path = find_file(src, ["*.parquet", "*.jsonl", "*.json"], "CoF-RL parquet/JSON")[0]
    root = _image_root(src, image_dir, path)
    problems: list[str] = []
    out.mkdir(parents=True, exist_ok=True)
    table = progress(_read_table(path), "cof-rl")
    rows = [_rl_row(r, i, out, root, problems) for i, r in enumerate(table)]
    kept = [r for r in rows if r is not None]
    return Prepared(write_annotations(out, kept), len(kept), problems, [path])


def prepare(
    name: str,
    src: str | Path,
    out: str | Path,
    *,
    image_dir: str | Path | None = None,
    layout: str | None = None,
    copy: bool = False,
    skip_bad_rows: bool = False,
    overwrite: bool = False,
) -> Prepared:
    """Prepare one dataset; raises ``SnapshotError`` when the folder lacks the expected files.

    Training sets keep their good rows and list the bad ones; a benchmark is all or nothing
    unless ``skip_bad_rows`` (``eval.benchmarks`` says why), then its bad rows are listed.
    ``out`` appears complete or not at all (``core.atomic``); it may not be, hold or lie
    inside the snapshot or the image folder, and an existing one is replaced only with
    ``overwrite``.
    """
    src, final = Path(src), Path(out)
    images = Path(image_dir) if image_dir else None
    if name not in dataset_names():
        raise ValueError(f"unknown dataset {name!r}; use one of {', '.join(dataset_names())}")
    check_output(final, arg="--out", inputs=[src, images], overwrite=overwrite, folder=True)
    with replace_dir(final) as stage:
        result = _prepare_into(name, src, stage, images, layout, copy, skip_bad_rows)
    result.output = final / result.output.relative_to(stage)
    return result


def _prepare_into(
    name: str,
    src: Path,
    out: Path,
    images: Path | None,
    layout: str | None,
    copy: bool,
    skip_bad_rows: bool,
) -> Prepared:
    if name == "cof-sft":
        return prepare_cof_sft(src, out, images, layout, copy)
    if name == "cof-rl":
        return prepare_cof_rl(src, out, images)
    records, problems, inputs = prepare_benchmark(
        name, src, out, image_dir=images, copy=copy, skip_bad_rows=skip_bad_rows
    )
    return Prepared(write_annotations(out, records), len(records), problems, inputs)
