"""Synthetic grounded samples: boxes really contain the target, deterministic by seed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cof_plugins.testbed.synth import (
    COLOURS,
    KINDS,
    LARGE_TARGET,
    iter_sizes,
    make_sample,
    read_dataset,
)


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


def test_large_targets_share_off_leaves_every_pixel_as_before(tmp_path):
    from cof_plugins.testbed.synth import write_dataset

    a = write_dataset(tmp_path / "a", 6, (224, 1024), seed=3, progress=False)
    b = write_dataset(tmp_path / "b", 6, (224, 1024), seed=3, progress=False, large_targets=0.0)
    assert a.read_text() == b.read_text()
    for row in read_dataset(a):
        pa, pb = Image.open(a.parent / row.image), Image.open(b.parent / row.image)
        assert np.array_equal(np.asarray(pa), np.asarray(pb))


@pytest.mark.parametrize("kind", KINDS)
def test_large_targets_span_a_tenth_of_the_short_side(kind):
    from cof_plugins.testbed.synth import LARGE_TARGET

    for i in range(4):
        img, s = make_sample(i, 1024, seed=4, kind=kind, large=True)
        short = min(s.width, s.height)
        x1, y1, x2, y2 = s.bbox
        assert LARGE_TARGET[0] * short - 1 <= min(x2 - x1, y2 - y1) <= LARGE_TARGET[1] * short
        assert _colour_share(_patch(img, s.bbox), s.target_colour) > 0.25


def test_large_share_is_drawn_per_sample(tmp_path):
    from cof_plugins.testbed.synth import write_dataset

    path = write_dataset(tmp_path, 40, (1024,), seed=0, progress=False, large_targets=0.5)
    sides = [min(s.bbox[2] - s.bbox[0], s.bbox[3] - s.bbox[1]) for s in read_dataset(path)]
    large = sum(side >= LARGE_TARGET[0] * 768 - 1 for side in sides)
    assert 10 <= large <= 30  # about half, drawn, not alternating with the kind
    with pytest.raises(ValueError, match="share in"):
        write_dataset(tmp_path / "x", 1, (224,), large_targets=1.5, progress=False)


@pytest.mark.parametrize("kind", KINDS)
def test_grid_scenes_are_landscape_with_targets_on_nine_spots(kind):
    from cof_plugins.testbed.synth import GRID

    for i in range(12):
        img, s = make_sample(i, 672, seed=6, kind=kind, large=i % 2 == 0, grid=True)
        assert (s.width, s.height) == (672, 504)
        for x1, y1, x2, y2 in [s.bbox, *s.extra_boxes]:
            assert 0 < x1 < x2 < s.width and 0 < y1 < y2 < s.height
            for centre, extent, span in (((x1 + x2) / 2, s.width, x2 - x1),
                                         ((y1 + y2) / 2, s.height, y2 - y1)):  # fmt: skip
                if span > extent / GRID:
                    continue  # a box wider than a cell (a large sign) is clamped into the image
                cell = centre * GRID / extent
                assert abs(cell - (int(cell) + 0.5)) <= 0.1 + 1 / extent * GRID
        assert _colour_share(_patch(img, s.bbox), s.target_colour) > 0.25
        if kind == "relative_position":
            left = s.bbox[0] < s.extra_boxes[0][0]
            assert s.answer_text == ("left" if left else "right")


def test_cli_scene_options(tmp_path, capsys):
    from cof_plugins.cli import main

    out = tmp_path / "s"
    assert main(["data", "scenes", str(out), "-n", "2", "--sizes", "448", "--grid",
                 "--large-targets", "1"]) == 0  # fmt: skip
    rows = read_dataset(out / "annotations.jsonl")
    assert all((r.width, r.height) == (448, 336) for r in rows)
    assert all(
        min(r.bbox[2] - r.bbox[0], r.bbox[3] - r.bbox[1]) >= LARGE_TARGET[0] * 336 - 1 for r in rows
    )
    with pytest.raises(SystemExit, match="--large-targets"):
        main(["data", "scenes", str(tmp_path / "t"), "--large-targets", "-0.1"])
