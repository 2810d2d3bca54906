"""``frame_size`` equals each family's real image processor, at the paper's and the tiny budget.

The reference is the processor's own code: the ``smart_resize`` of the processor's module,
called the way its ``_preprocess`` calls it, with the bounds ``set_image_budget`` gave the
processor (the production path that hands a recipe's budget to every stage); a few images
also go through the processor itself.
"""

from __future__ import annotations

import inspect
import random
import sys
import zlib

import pytest
from PIL import Image

from cof_plugins.core.families import BUILTIN, get_family
from cof_plugins.core.frame import PixelBudget, frame_size
from cof_plugins.hf_checkpoint import set_image_budget
from cof_plugins.testbed.tiny_model import TINY_BUDGET

PAPER = PixelBudget(112 * 112, 3840 * 3840)
BUDGETS = {"paper": PAPER, "tiny": TINY_BUDGET}


def _sizes(n: int, longest: int, seed: int) -> list[tuple[int, int]]:
    """(w, h) pairs: random, near-square to aspect 200, tiny sides included."""
    rng = random.Random(seed)
    out = [(1, 1), (27, 27), (28, 28), (13, 2600), (2600, 13), (200, 1), (longest, longest)]
    while len(out) < n:
        w = rng.randint(1, longest)
        h = rng.randint(max(1, -(-w // 200)), min(longest, w * 200))
        out.append((w, h) if rng.random() < 0.5 else (h, w))
    return out


def _image_processor(family: str, budget: PixelBudget):
    import transformers

    spec = get_family(family)
    cls = getattr(transformers, spec.classes.image_processor)
    processor = cls(patch_size=spec.patch_size, merge_size=spec.merge_size)
    set_image_budget(processor, budget)
    return processor


def _reference(processor, width: int, height: int) -> tuple[int, int]:
    """(w, h) from the processor module's smart_resize, called as its _preprocess does."""
    resize = sys.modules[type(processor).__module__].smart_resize
    factor = processor.patch_size * processor.merge_size
    size = processor.size
    bounds = {"min_pixels": size["shortest_edge"], "max_pixels": size["longest_edge"]}
    if "num_frames" in inspect.signature(resize).parameters:  # GLM-4.1V: a two-frame clip
        t = processor.temporal_patch_size
        h, w = resize(num_frames=t, height=height, width=width, temporal_factor=t,
                      factor=factor, **bounds)  # fmt: skip
    else:
        h, w = resize(height, width, factor=factor, **bounds)
    return w, h


@pytest.mark.parametrize("budget", sorted(BUDGETS))
@pytest.mark.parametrize("family", BUILTIN)
def test_frame_equals_the_processors_resize_over_thousands_of_sizes(family, budget):
    processor = _image_processor(family, BUDGETS[budget])
    longest = 8000 if budget == "paper" else 1200
    sizes = _sizes(3000, longest, seed=zlib.crc32(f"{family}-{budget}".encode()))
    wrong = [
        (s, frame_size(s, family, BUDGETS[budget]), _reference(processor, *s))
        for s in sizes
        if frame_size(s, family, BUDGETS[budget]) != _reference(processor, *s)
    ]
    assert not wrong, f"{len(wrong)} of {len(sizes)} sizes differ, e.g. {wrong[:3]}"


@pytest.mark.parametrize("budget", sorted(BUDGETS))
@pytest.mark.parametrize("family", BUILTIN)
def test_frame_equals_what_the_processor_makes_of_real_images(family, budget):
    processor = _image_processor(family, BUDGETS[budget])
    sizes = [(1, 1), (20, 300), (300, 20), (57, 57), (333, 777), (1000, 600), (90, 700)]
    out = processor(images=[Image.new("RGB", s) for s in sizes], return_tensors="pt")
    patch = processor.patch_size
    got = [(int(w) * patch, int(h) * patch) for _, h, w in out["image_grid_thw"].tolist()]
    assert got == [frame_size(s, family, BUDGETS[budget]) for s in sizes]


@pytest.mark.parametrize("family", BUILTIN)
def test_geometry_is_the_released_models(family):
    """Patch, merge and temporal sizes equal the real config class's defaults (the released
    checkpoint's), so a spec cannot agree with a processor it configured itself."""
    import transformers

    spec = get_family(family)
    vision = getattr(transformers, spec.classes.config)().vision_config
    merge = getattr(vision, "spatial_merge_size", None)
    assert (vision.patch_size, merge) == (spec.patch_size, spec.merge_size)
    assert vision.temporal_patch_size == spec.vision.temporal_patch_size


def test_the_families_differ_where_their_processors_do():
    """Guards against a spec copied from the wrong family: factor and budget rule matter."""
    size = (1000, 600)
    frames = {f: frame_size(size, f, TINY_BUDGET) for f in BUILTIN}
    assert frames["qwen3_5"] == frames["qwen3_vl"] and frames["qwen3_5"][0] % 32 == 0
    assert frames["qwen2_5_vl"][0] % 28 == 0 and frames["qwen3_5"] != frames["qwen2_5_vl"]
    # GLM's processor gets twice the budget (it counts a two-frame clip), so the same area.
    assert frame_size((20, 300), "glm4v", TINY_BUDGET) != frame_size(
        (20, 300), "qwen2_vl", TINY_BUDGET
    )
