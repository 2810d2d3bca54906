"""Fixtures for the data-engine tests: small PNGs and trajectories synthesized once."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from PIL import Image

from cof_plugins.core.protocol import load_protocol


def _make_png(path: Path, size: tuple[int, int], colour=(120, 140, 160)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def zoom_turn(box, think: str = "small") -> str:
    from cof_plugins.core.parser import format_tool_call

    return f"<think>{think}</think>\n" + format_tool_call("image_zoom_in_tool", {"bbox_2d": box})


_IDS = itertools.count()


def _good_row(box=(10, 10, 60, 60), images=("frame.png", "crop.png")) -> dict:
    """A valid one-zoom canonical row on a 224x224 frame (images made by ``image_dir``);
    each call's row has its own ``meta.id`` (a repeated id is a finding)."""
    p = load_protocol()
    return {
        "messages": [
            *p.prompt_messages("What colour is it?", ["red", "blue"]),
            {"role": "assistant", "content": zoom_turn(list(box))},
            {"role": "user", "content": p.crop_user_turn()},
            {"role": "assistant", "content": "<think>clear</think>\n<answer>A</answer>"},
        ],
        "images": list(images),
        "meta": {"id": f"r{next(_IDS)}", "answer": "A", "options": ["red", "blue"]},
    }


@pytest.fixture
def image_dir(tmp_path) -> Path:
    _make_png(tmp_path / "frame.png", (224, 224))
    _make_png(tmp_path / "crop.png", (112, 112))
    return tmp_path


@pytest.fixture
def make_png():
    """``make_png(path, (w, h))`` writes a flat PNG (test modules cannot import conftest)."""
    return _make_png


@pytest.fixture
def good_row():
    """``good_row(box=..., images=...)``: a valid one-zoom row on a 224x224 frame."""
    return _good_row


@pytest.fixture(scope="session")
def synthesized(synth_dir, tmp_path_factory):
    """The 12 synthetic samples as next-user trajectories (qwen2_5_vl, default budget)."""
    from cof_plugins.data.synthesize import SynthConfig, synthesize

    out = tmp_path_factory.mktemp("synthesized")
    return synthesize(synth_dir / "annotations.jsonl", out, SynthConfig(seed=3), progress=False)
