"""The zoom policy and box writing: legible targets answer directly, boxes contain targets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cof_plugins.core.zoom import ZoomConfig
from cof_plugins.data.boxes import read_box, rewrite_calls, write_box, zoom_call
from cof_plugins.data.policy import PolicyConfig, call_box, plan_zooms, side_in_crop

ZOOM = ZoomConfig()


def contains(outer, inner, tol: float = 1e-6) -> bool:
    return (
        outer[0] <= inner[0] + tol
        and outer[1] <= inner[1] + tol
        and outer[2] >= inner[2] - tol
        and outer[3] >= inner[3] - tol
    )


def test_legible_target_answers_directly():
    assert plan_zooms([(100, 100, 130, 140)], (1000, 800), ZOOM) == []


def test_small_target_zooms_once_when_the_crop_makes_it_legible():
    calls = plan_zooms([(500, 400, 520, 420)], (1000, 800), ZOOM)
    assert len(calls) == 1
    assert side_in_crop([(500, 400, 520, 420)], calls[0], (1000, 800), ZOOM) >= 28


def test_tiny_target_zooms_twice_and_the_second_call_is_tighter():
    boxes = [(100, 100, 106, 106)]
    calls = plan_zooms(boxes, (224, 224), ZOOM, PolicyConfig(context=4.0))
    assert len(calls) == 2
    first, second = calls
    assert contains(first, second) and (second[2] - second[0]) < (first[2] - first[0])
    assert side_in_crop(boxes, first, (224, 224), ZOOM) < 28


def test_threshold_and_max_zooms_are_honoured():
    boxes = [(100, 100, 110, 110)]
    assert plan_zooms(boxes, (224, 224), ZOOM, PolicyConfig(legible_side=8)) == []
    assert len(plan_zooms(boxes, (224, 224), ZOOM, PolicyConfig(max_zooms=1))) == 1


def test_bad_policy_is_refused_with_the_field_named():
    with pytest.raises(ValueError, match="context"):
        PolicyConfig(context=1.0, tight_context=2.0)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(200, 3000), st.integers(200, 3000),
    st.floats(0.0, 0.95), st.floats(0.0, 0.95), st.floats(0.002, 0.05),
)  # fmt: skip
def test_every_call_contains_the_target_and_stays_in_the_frame(w, h, fx, fy, fs):
    side = max(2.0, fs * min(w, h))
    x1, y1 = fx * (w - side), fy * (h - side)
    box = (x1, y1, x1 + side, y1 + side)
    for call in plan_zooms([box], (w, h), ZOOM):
        assert contains(call, box)
        assert 0 <= call[0] < call[2] <= w and 0 <= call[1] < call[3] <= h


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(["abs", "rel1000", "rel1"]),
    st.integers(28, 4000), st.integers(28, 4000), st.floats(0, 0.9), st.floats(0.01, 0.1),
)  # fmt: skip
def test_written_boxes_read_back_around_the_box(convention, w, h, f, s):
    box = (f * w, f * h, min(w, (f + s) * w), min(h, (f + s) * h))
    written = write_box(box, convention, (w, h))
    back = read_box(written, convention, (w, h))
    assert contains(back, box, tol=1e-3)
    assert all(0 <= v <= (1 if convention == "rel1" else max(w, h, 1000)) for v in written)


def test_call_box_is_clipped_to_the_frame():
    assert call_box((0, 0, 10, 10), 3.0, (100, 100)) == (0.0, 0.0, 20.0, 20.0)


def test_rewrite_calls_keeps_other_arguments_and_skips_bad_calls():
    text = zoom_call([10, 20, 30, 40], "sign") + "\n<tool_call>{broken</tool_call>"
    out, n = rewrite_calls(text, lambda b: [v * 2 for v in b])
    assert n == 1
    assert '"bbox_2d": [20, 40, 60, 80], "label": "sign"' in out
    assert out.endswith("<tool_call>{broken</tool_call>")


@given(
    x=st.floats(0, 300),
    y=st.floats(0, 200),
    side=st.floats(0.5, 40),
    scale=st.floats(1.0, 4.0),
    grid=st.sampled_from([1, 14, 28]),
)
@settings(max_examples=300, deadline=None)
def test_grid_boxes_sit_on_the_grid_and_still_contain_the_target(x, y, side, scale, grid):
    frame = (336, 252)
    region = (x, y, min(frame[0], x + side), min(frame[1], y + side))
    box = call_box(region, scale, frame, grid)
    assert contains(box, region)
    inside = [v for v, edge in zip(box, (0, 0, *frame), strict=True) if v != edge]
    assert all(v % grid == 0 for v in inside), box
    assert box[0] < box[2] and box[1] < box[3]


def test_box_grid_gives_few_distinct_boxes_where_whole_pixels_give_many():
    targets = [(100 + d, 80 + d / 2, 108 + d, 88 + d / 2) for d in range(20)]
    exact = {
        tuple(plan_zooms([t], (252, 168), ZOOM, PolicyConfig(max_zooms=1))[0]) for t in targets
    }
    snapped = PolicyConfig(max_zooms=1, box_grid=28)
    grid = {tuple(plan_zooms([t], (252, 168), ZOOM, snapped)[0]) for t in targets}
    assert len(grid) <= 4 < len(exact)


def test_box_grid_out_of_range_is_refused():
    with pytest.raises(ValueError, match="box_grid"):
        PolicyConfig(box_grid=-28)
