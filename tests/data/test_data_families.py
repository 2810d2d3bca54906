"""The data engine in every family's conventions: `synthesize --family`, `convert --to-family`.

Each family's boxes are written in its own convention (absolute frame pixels for Qwen2.5-VL,
0-1000 for the others) on its own frame; converting between any two families keeps every
box on the same region of the original image.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest

from cof_plugins.core.coords import to_frame_pixels
from cof_plugins.core.families import BUILTIN, get_family
from cof_plugins.core.frame import frame_size
from cof_plugins.core.parser import assistant_segments, parse_turn
from cof_plugins.data.convert import ConvertConfig, convert_rows
from cof_plugins.data.synthesize import SynthConfig, synthesize
from cof_plugins.data.validate import errors, validate_rows

# Box conventions as each model family grounds (its model card / processor docs).
CONVENTION = {"qwen2_5_vl": "abs", "qwen2_vl": "rel1000", "qwen3_vl": "rel1000",
              "qwen3_5": "rel1000", "glm4v": "rel1000"}  # fmt: skip


def _boxes(row) -> list[tuple[float, ...]]:
    turns = assistant_segments(row["messages"])
    return [c.bbox for t in turns for c in parse_turn(t).tool_calls]


def _on_original(box, convention: str, frame, original) -> tuple[float, ...]:
    x1, y1, x2, y2 = to_frame_pixels(box, convention, tuple(frame))
    sx, sy = original[0] / frame[0], original[1] / frame[1]
    return x1 * sx, y1 * sy, x2 * sx, y2 * sy


@pytest.fixture(scope="module")
def by_family(synth_dir, tmp_path_factory) -> dict:
    """The same 5 annotations synthesized for every family."""
    out = {}
    for family in BUILTIN:
        folder = tmp_path_factory.mktemp(f"syn_{family}")
        cfg = SynthConfig(family=family, seed=1)
        rows = synthesize(synth_dir / "annotations.jsonl", folder, cfg, progress=False, limit=5)
        out[family] = (rows.rows, folder)
    return out


@pytest.mark.parametrize("family", BUILTIN)
def test_synthesize_writes_the_familys_frame_and_convention(family, by_family):
    assert get_family(family).coords == CONVENTION[family]
    rows, folder = by_family[family]
    zoomed = 0
    for row in rows:
        meta = row["meta"]
        assert tuple(meta["frame_size"]) == frame_size(tuple(meta["original_size"]), family)
        for box in _boxes(row):
            if CONVENTION[family] == "rel1000":
                assert all(0 <= v <= 1000 for v in box)
            x1, y1, x2, y2 = _on_original(box, CONVENTION[family], meta["frame_size"],
                                          meta["original_size"])  # fmt: skip
            bx1, by1, bx2, by2 = meta["bbox"]
            assert x1 <= bx1 + 1e-6 and y1 <= by1 + 1e-6 and x2 >= bx2 - 1e-6 and y2 >= by2 - 1e-6
            zoomed += 1
    assert zoomed > 0
    assert errors(validate_rows(rows, image_dir=folder, family=family)) == []


@pytest.mark.parametrize(("src", "dst"), list(itertools.permutations(BUILTIN, 2)))
def test_convert_between_any_two_families_keeps_the_region(src, dst, by_family):
    rows, folder = by_family[src]
    cfg = ConvertConfig("canonical", family=src, to_family=dst)
    converted, bad = convert_rows(rows, cfg, folder)
    assert bad == [] and len(converted) == len(rows)
    moved = 0
    for before, after in zip(rows, converted, strict=True):
        frame = before["meta"]["frame_size"]  # the first image: src's frame
        dst_frame = frame_size(tuple(frame), dst)
        for a, b in zip(_boxes(before), _boxes(after), strict=True):
            region_a = _on_original(a, CONVENTION[src], frame, frame)
            region_b = _on_original(b, CONVENTION[dst], dst_frame, frame)
            # Rounding to integers on the target scale: within a pixel or 0.1 % of the side.
            tol = [max(1.0, frame[0] / 1000 + 1), max(1.0, frame[1] / 1000 + 1)] * 2
            assert all(abs(x - y) <= t for x, y, t in zip(region_a, region_b, tol, strict=True))
            moved += 1
    assert moved > 0


def test_cli_synthesize_and_convert_for_glm(synth_dir, tmp_path):
    """The commands users run: `--family glm4v`, then `--to-family qwen2_5_vl` and back."""

    def cof(*args):
        done = subprocess.run([sys.executable, "-m", "cof_plugins.cli", *args],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]

    out = tmp_path / "glm"
    cof("data", "synthesize", "--from", str(synth_dir / "annotations.jsonl"), "--out", str(out),
        "--family", "glm4v", "--limit", "4")  # fmt: skip
    rows = json.loads((out / "train.json").read_text())
    converted = tmp_path / "q.json"
    cof("data", "convert", "--from", str(out / "train.json"), "--style", "canonical",
        "--family", "glm4v", "--to-family", "qwen2_5_vl", "--out", str(converted))  # fmt: skip
    back = json.loads(converted.read_text())
    expected, got = [], []
    for glm_row, qwen_row in zip(rows, back, strict=True):
        frame = tuple(glm_row["meta"]["frame_size"])
        qwen_frame = frame_size(frame, "qwen2_5_vl")
        for box in _boxes(glm_row):  # 0-1000 of GLM's frame -> pixels of Qwen2.5-VL's frame
            expected.append(
                tuple(float(round(v)) for v in to_frame_pixels(box, "rel1000", qwen_frame))
            )
        got += _boxes(qwen_row)
    assert expected and got == expected
