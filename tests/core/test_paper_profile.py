"""The ``paper`` profile against the release's own steps, restated here independently.

The reference below restates the release's steps (README, "The paper profile") in plain PIL,
without this package's zoom code: validate; enlarge 1.5x about the centre; clip each edge to the
frame; int() each edge; crop; double the crop's size; qwen-vl-utils' smart_resize (factor 28,
min 112*112, max 5120*28*28 in RL, 3840*3840 in evaluation); LANCZOS; RGB. A resize the release
cannot do (a crop 0 pixels wide, or thinner than 200:1) raises there: its RL tool then answers
with the error text and its evaluation sends the frame as it is. Every size and every pixel must
agree, on boxes drawn at random.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from PIL import Image

from cof_plugins.core.frame import PixelBudget
from cof_plugins.core.parser import ZOOM_TOOL, call_from_arguments
from cof_plugins.core.profiles import PAPER, get_profile
from cof_plugins.core.zoom_step import StepConfig, make_frame, run_call

LANCZOS = Image.Resampling.LANCZOS
RL_CAP, EVAL_CAP, MIN = 5120 * 28 * 28, 3840 * 3840, 112 * 112
FRAME = (644, 476)  # a frame: both sides multiples of 28


# ---------------------------------------------------------------- the release, restated


def release_smart_resize(height, width, factor=28, min_pixels=MIN, max_pixels=RL_CAP):
    """qwen-vl-utils' smart_resize, as the release imports it."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError("absolute aspect ratio must be smaller than 200")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def release_valid(bbox, w, h):
    x0, y0, x1, y1 = bbox
    return 0 <= x0 < w and 0 <= y0 < h and 0 < x1 <= w and 0 < y1 <= h and x1 > x0 and y1 > y0


def release_zoom(image, bbox, max_pixels=RL_CAP):
    """The release's crop: "invalid" for a box it refuses, "error" where its resize raises."""
    W, H = image.size
    if not release_valid(bbox, W, H):
        return "invalid"
    x0, y0, x1, y1 = bbox
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    bw, bh = (x1 - x0) * 1.5, (y1 - y0) * 1.5
    x0, y0 = max(0, cx - bw / 2), max(0, cy - bh / 2)
    x1, y1 = min(W, cx + bw / 2), min(H, cy + bh / 2)
    crop = image.crop([int(x0), int(y0), int(x1), int(y1)])
    try:
        size = (crop.size[0] * 2, crop.size[1] * 2)
        new_h, new_w = release_smart_resize(size[1], size[0], max_pixels=max_pixels)
        return crop.resize((new_w, new_h), LANCZOS).convert("RGB").copy()
    except (ValueError, ZeroDivisionError):
        return "error"


def release_frame(image, min_pixels=MIN, max_pixels=EVAL_CAP):
    """The release's evaluation input: smart_resize into the budget, LANCZOS."""
    new_h, new_w = release_smart_resize(
        image.height, image.width, min_pixels=min_pixels, max_pixels=max_pixels
    )
    return image.resize((new_w, new_h), LANCZOS)


# ---------------------------------------------------------------- boxes


def random_boxes(rng: random.Random, w: int, h: int, n: int) -> list[list[float]]:
    """Fractional, integer, thin, edge-touching, whole-frame and out-of-range boxes."""
    boxes: list[list[float]] = [[0, 0, w, h], [0.0, 0.0, float(w), float(h)], [0, 0, w, 1]]
    kinds = ("fractional", "integer", "thin_x", "thin_y", "edge", "tiny", "sliver", "outside")
    while len(boxes) < n:
        kind = kinds[len(boxes) % len(kinds)]
        x1, x2 = sorted(rng.uniform(0, w) for _ in range(2))
        y1, y2 = sorted(rng.uniform(0, h) for _ in range(2))
        if kind == "integer":
            x1, y1, x2, y2 = (float(round(v)) for v in (x1, y1, x2, y2))
        elif kind == "thin_x":
            x2 = min(w, x1 + rng.uniform(0.01, 3))
        elif kind == "thin_y":
            y2 = min(h, y1 + rng.uniform(0.01, 3))
        elif kind == "edge":
            edges = ((0, y1, x2, y2), (x1, 0, x2, y2), (x1, y1, w, y2), (x1, y1, x2, h))
            x1, y1, x2, y2 = rng.choice((*edges, (0, 0, x2, y2), (x1, y1, w, h)))
        elif kind == "tiny":
            x2, y2 = min(w, x1 + rng.uniform(0.05, 1.5)), min(h, y1 + rng.uniform(0.05, 1.5))
        elif kind == "sliver":  # long and thin: the 200:1 limit
            x1, x2, y2 = 0.0, float(w), min(h, y1 + rng.uniform(0.2, 4))
        elif kind == "outside":
            x2 = w + rng.uniform(0.1, 50)
        boxes.append([x1, y1, x2, y2])
    return boxes


@pytest.fixture(scope="module")
def frame() -> Image.Image:
    """Noise, so a crop one pixel off or a different filter cannot match by accident."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (FRAME[1], FRAME[0], 3), dtype=np.uint8))


def _paper(stage: str, **zoom) -> StepConfig:
    return StepConfig.for_stage("paper", stage, family="qwen2_5_vl", suffix="S", zoom=zoom)


def _call(box):
    return call_from_arguments(ZOOM_TOOL, {"bbox_2d": box})


# ---------------------------------------------------------------- tests


def test_restated_smart_resize_is_qwen_vl_utils():
    """The restatement above is the library the release imports, on sizes of every kind."""
    from qwen_vl_utils import smart_resize

    rng = random.Random(3)
    sizes = [(rng.randint(1, 3000), rng.randint(1, 3000)) for _ in range(800)]
    sizes += [(2, 300), (6, 1000), (13, 2000), (27, 27), (14, 14), (5000, 40)]
    for h, w in sizes:
        for cap in (RL_CAP, 200 * 28 * 28):
            try:
                theirs = smart_resize(h, w, 28, MIN, cap)
            except ValueError:
                with pytest.raises(ValueError):
                    release_smart_resize(h, w, max_pixels=cap)
                continue
            assert release_smart_resize(h, w, max_pixels=cap) == theirs, (h, w, cap)


@pytest.mark.parametrize(("stage", "cap", "n"), [("rl", RL_CAP, 1000), ("rl", 64 * 28 * 28, 200)])
def test_rl_zoom_equals_the_release_on_random_boxes(frame, stage, cap, n):
    """Every size and every pixel, on >= 1,000 boxes; a smaller cap reaches the shrink branch."""
    config = _paper(stage, max_pixels=cap)
    seen = {"crop": 0, "invalid": 0, "error": 0, "shrunk": 0}
    for box in random_boxes(random.Random(cap), *FRAME, n):
        expected = release_zoom(frame, box, max_pixels=cap)
        outcome = run_call(_call(box), frame, None, config)
        if isinstance(expected, str):
            seen[expected] += 1
            assert outcome.image is None and outcome.kind == "invalid", (box, expected)
            problem = outcome.result.problem if outcome.result else "box"
            assert problem == ("box" if expected == "invalid" else "degenerate"), box
            continue
        seen["crop"] += 1
        assert outcome.kind == "valid", (box, outcome.message)
        assert outcome.image.size == expected.size, box
        assert outcome.image.tobytes() == expected.tobytes(), box
        x1, y1, x2, y2 = outcome.result.enlarged_box
        seen["shrunk"] += 4 * (x2 - x1) * (y2 - y1) > cap
    assert seen["crop"] > 0.6 * n and seen["invalid"] > 0 and seen["error"] > 0, seen
    if cap < RL_CAP:  # the smaller cap reaches smart_resize's shrink branch
        assert seen["shrunk"] > 0.2 * n, seen


def test_eval_crop_cap_and_failed_calls_are_the_releases(frame):
    """Evaluation: crops capped at 3840^2; a refused box gives the whole frame 2x; a region
    the resize cannot handle gives the frame as it is; an unreadable call the whole frame 2x."""
    config = _paper("eval", min_pixels=MIN, max_pixels=EVAL_CAP)
    whole = release_zoom(frame, [0, 0, FRAME[0], FRAME[1]], max_pixels=EVAL_CAP)
    for box in random_boxes(random.Random(11), *FRAME, 160):
        expected = release_zoom(frame, box, max_pixels=EVAL_CAP)
        outcome = run_call(_call(box), frame, None, config)
        if expected == "invalid":  # crop(None): the whole frame, resized as a crop would be
            expected = frame.crop(None).resize(whole.size, LANCZOS)
        elif expected == "error":
            expected = frame
        assert outcome.image.size == expected.size, box
        assert outcome.image.tobytes() == expected.tobytes(), box
    unreadable = call_from_arguments(ZOOM_TOOL, {"bbox_2d": "left half"})
    outcome = run_call(unreadable, frame, None, config)
    assert outcome.kind == "parse_error" and outcome.image.tobytes() == whole.tobytes()


@pytest.mark.parametrize(
    ("size", "budget"),
    [
        ((1000, 700), (MIN, EVAL_CAP)),  # resized to the nearest multiples of 28
        ((50, 61), (MIN, EVAL_CAP)),  # below 112^2: enlarged
        ((9, 900), (MIN, EVAL_CAP)),  # one side under factor/2: qwen-vl-utils rounds it up
        ((1500, 1100), (MIN, 600 * 600)),  # above the cap: shrunk
        ((644, 476), (MIN, EVAL_CAP)),  # already a frame: unchanged
    ],
)
def test_eval_frame_equals_the_releases(size, budget):
    rng = np.random.default_rng(sum(size))
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    expected = release_frame(image, *budget)
    ours = make_frame(image, "qwen2_5_vl", PixelBudget(*budget), "paper")
    assert ours.size == expected.size
    assert ours.tobytes() == expected.tobytes()


def test_paper_profile_names_the_releases_choices():
    paper = get_profile("paper")
    assert paper is PAPER
    assert (paper.rl_calls, paper.eval_calls, paper.eval_failed_call) == (
        "all", "first", "whole_frame"
    )  # fmt: skip
    assert (paper.eval_answer, paper.eval_judge_reference, paper.rl_judge_temperature) == (
        "first", "letter", 0.3
    )  # fmt: skip
    assert paper.rl_math_sources == ("thinklite", "eureka", "math")
    assert paper.rl_budget(PixelBudget()) == PixelBudget(3136, 12845056)
    assert get_profile("default").rl_budget(PixelBudget()) == PixelBudget()
    with pytest.raises(KeyError, match="default, paper"):
        get_profile("papr")
