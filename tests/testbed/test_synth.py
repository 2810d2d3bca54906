"""Synthetic grounded samples: boxes really contain the target, deterministic by seed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cof_plugins.testbed.synth import COLOURS, KINDS, iter_sizes, make_sample, read_dataset


def _patch(img: Image.Image, box) -> np.ndarray:
    return np.asarray(img.crop(box), dtype=np.int16)


def _colour_share(arr: np.ndarray, colour, tol: int = 40) -> float:
    return float((np.abs(arr - np.array(colour)).max(-1) <= tol).mean())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [224, 1024, 3840])
def test_box_contains_target_colour(kind, size):
    img, s = make_sample(3, size, seed=1, kind=kind)
    assert max(img.size) == size and img.size == (s.width, s.height)
    inside = _colour_share(_patch(img, s.bbox), s.target_colour)
    assert inside > 0.25, f"target colour covers only {inside:.0%} of its box"
    # The same colour is essentially absent from the rest of the picture.
    mask = np.ones((s.height, s.width), bool)
    for x1, y1, x2, y2 in [s.bbox, *s.extra_boxes]:
        mask[y1:y2, x1:x2] = False
    outside = np.asarray(img, dtype=np.int16)[mask]
    assert _colour_share(outside, s.target_colour) < 0.001
    assert s.options[("ABCD").index(s.answer)] == s.answer_text


def test_target_is_small():
    for i in range(8):
        _img, s = make_sample(i, 3840, seed=2)
        x1, y1, x2, y2 = s.bbox
        assert (x2 - x1) * (y2 - y1) < 0.01 * s.width * s.height


def test_relative_position_answer_matches_geometry():
    for i in range(10):
        _, s = make_sample(i, 448, seed=5, kind="relative_position")
        left = s.bbox[0] < s.extra_boxes[0][0]
        assert s.answer_text == ("left" if left else "right")


def test_deterministic_by_seed():
    a_img, a = make_sample(4, 448, seed=9)
    b_img, b = make_sample(4, 448, seed=9)
    c_img, _c = make_sample(4, 448, seed=10)
    assert a == b and np.array_equal(np.asarray(a_img), np.asarray(b_img))
    assert not np.array_equal(np.asarray(a_img), np.asarray(c_img))


def test_cli_writes_dataset(tmp_path):
    from cof_plugins.cli import main

    assert (
        main(["data", "scenes", str(tmp_path), "-n", "5", "--sizes", "224,2100", "--seed", "3"])
        == 0
    )
    rows = read_dataset(tmp_path / "annotations.jsonl")
    assert len(rows) == 5
    for row in rows:
        img = Image.open(tmp_path / row.image)
        assert img.size == (row.width, row.height)
    line = json.loads((tmp_path / "annotations.jsonl").read_text().splitlines()[1])
    assert line["image"].endswith(".jpg")  # above 2048 px samples are stored as JPEG


def test_sizes_parse_and_reject():
    assert list(iter_sizes("224, 4K,8k")) == [224, 3840, 7680]
    with pytest.raises(ValueError, match="--sizes"):
        list(iter_sizes("huge"))


def test_colours_are_distinct():
    values = list(COLOURS.values())
    for i, a in enumerate(values):
        for b in values[i + 1 :]:
            assert max(abs(x - y) for x, y in zip(a, b, strict=False)) > 60


def test_vstar_layout_loads_in_eval(tmp_path):
    from cof_plugins.cli import main
    from cof_plugins.eval.benchmarks import load_benchmark

    assert main(["data", "scenes", str(tmp_path), "-n", "4", "--sizes", "224", "--vstar"]) == 0
    bench = load_benchmark(tmp_path / "test_questions.jsonl", "vstar")
    rows = read_dataset(tmp_path / "annotations.jsonl")
    samples = list(bench.samples) if hasattr(bench, "samples") else list(bench)
    assert len(samples) == 4
    for sample, row in zip(samples, rows, strict=True):
        assert sample.answer == row.answer
        assert list(sample.options) == row.options
        assert sample.question == row.question
