"""Depth scenes: deterministic, RGB and depth painted by the same masks, known answers."""

from __future__ import annotations

import numpy as np
import pytest

from cof_plugins.core.depth import load_depth
from cof_plugins.testbed.depth_scenes import (
    FAR,
    KINDS,
    _mask,
    make_scene,
    read_scenes,
    write_scenes,
)
from cof_plugins.testbed.synth import COLOURS


def test_scenes_are_deterministic_by_seed():
    a, b, c = make_scene(5, seed=1), make_scene(5, seed=1), make_scene(5, seed=2)
    assert np.array_equal(np.asarray(a[0]), np.asarray(b[0])) and np.array_equal(a[1], b[1])
    assert a[2].to_dict() == b[2].to_dict() and a[2].to_dict() != c[2].to_dict()


@pytest.mark.parametrize("index", range(8))
def test_occlusion_agrees_between_rgb_and_depth(index):
    rgb, depth, scene = make_scene(index, seed=4)
    pixels = np.asarray(rgb)
    levels = np.rint(depth * FAR).astype(int)
    for obj in scene.objects:
        shown = (pixels == COLOURS[obj.colour]).all(-1)
        assert shown.any()
        # Wherever the object's colour shows, the depth map holds the object's depth.
        assert (levels[shown] == obj.level).all()
    # The wall is the farthest thing and the floor's bottom row the nearest.
    assert levels.max() == FAR and levels[-1].min() == 0


def test_nearer_shapes_hide_farther_ones():
    overlaps = 0
    for index in range(16):
        _, depth, scene = make_scene(index, seed=4)
        levels = np.rint(depth * FAR).astype(int)
        h, w = levels.shape
        for obj in scene.objects:
            mask = _mask(obj.shape, obj.box, w, h)
            # Inside a shape only it or something nearer can show; never the floor behind.
            assert (levels[mask] <= obj.level).all()
            overlaps += int((levels[mask] < obj.level).any())
    assert overlaps >= 3  # the scenes do overlap, so the check above bites


def test_answers_follow_the_depths():
    for index in range(16):
        _, _, s = make_scene(index, seed=0)
        assert s.kind == KINDS[index % len(KINDS)]
        objs = s.objects
        if s.kind == "closer":
            a, b = (objs[i] for i in s.targets)
            assert s.answer == min((a, b), key=lambda o: o.level).colour
        elif s.kind == "nearest_colour":
            assert s.answer == min(objs, key=lambda o: o.level).colour
        elif s.kind == "farthest_shape":
            assert s.answer == max(objs, key=lambda o: o.level).shape
        else:
            assert s.answer == objs[s.targets[0]].shape
        for box in s.gt_boxes():
            assert 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1


def test_written_maps_decode_to_the_rendered_depth(tmp_path):
    scenes = write_scenes(tmp_path, 3, seed=2)
    assert [s.id for s in read_scenes(tmp_path / "scenes.jsonl")] == [s.id for s in scenes]
    for i, scene in enumerate(scenes):
        _, depth, _ = make_scene(i, seed=2)
        for path in (scene.depth_color, scene.depth_gray):
            assert np.abs(load_depth(tmp_path / path) - depth).max() < 1e-12
