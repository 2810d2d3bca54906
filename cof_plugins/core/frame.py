"""The frame: the exact image size a model sees for a given image, family and pixel budget.

Box coordinates in CoF are pixels (or a normalised scale) *of the frame*, so SFT, RL and
eval must all produce the same frame for the same image. Every recipe carries one
``PixelBudget``; every stage hands it to its processor, and this module is the single place
that says what size results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The aspect-ratio limit the Qwen processors enforce.
MAX_ASPECT_RATIO = 200


@dataclass(frozen=True)
class FamilySpec:
    """What differs between supported base-model families."""

    name: str
    patch_size: int
    merge_size: int
    # How boxes in tool calls are written for this family (see core.coords).
    coords: str
    # LLaMA-Factory template and mm-plugin names of the stock template this family extends.
    hf_model_type: str

    @property
    def factor(self) -> int:
        """Frame sides are multiples of this (patch size times the spatial merge)."""
        return self.patch_size * self.merge_size


FAMILIES: dict[str, FamilySpec] = {
    "qwen2_vl": FamilySpec("qwen2_vl", 14, 2, "rel1000", "qwen2_vl"),
    "qwen2_5_vl": FamilySpec("qwen2_5_vl", 14, 2, "abs", "qwen2_5_vl"),
    "qwen3_vl": FamilySpec("qwen3_vl", 16, 2, "rel1000", "qwen3_vl"),
}


def get_family(name: str) -> FamilySpec:
    """Look a family up by name, listing the known ones on a miss."""
    try:
        return FAMILIES[name]
    except KeyError:
        known = ", ".join(sorted(FAMILIES))
        raise KeyError(f"unknown model family {name!r}; known families: {known}") from None


@dataclass(frozen=True)
class PixelBudget:
    """Bounds on the frame's area in pixels; one per recipe, shared by every stage."""

    min_pixels: int = 112 * 112
    max_pixels: int = 3840 * 3840

    def __post_init__(self) -> None:
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(
                f"pixel budget needs 0 < min_pixels <= max_pixels, got "
                f"min_pixels={self.min_pixels}, max_pixels={self.max_pixels}"
            )


# How sides are first rounded to the factor: the Qwen-VL image processors (transformers) round
# a side below factor/2 to 0; qwen-vl-utils (the release's tool, evaluation and data loaders)
# rounds it up to one factor and drops the factor floor when shrinking. They differ only for
# sides under factor/2 pixels and for crops near the pixel cap.
ROUNDINGS = ("processor", "qwen_vl_utils")


def smart_resize(
    height: float,
    width: float,
    factor: int,
    min_pixels: int,
    max_pixels: int,
    *,
    rounding: str = "processor",
) -> tuple[int, int]:
    """Return (height, width): sides snapped to ``factor`` with area inside the budget.

    ``rounding="processor"`` is the Qwen-VL image processors' arithmetic (including Python's
    round-half-even), so the result equals what the processor produces; tests check this
    against the real processors of each family. ``"qwen_vl_utils"`` is that library's
    variant, which the release used for its frames and crops (see ``ROUNDINGS``).
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}; use one of {', '.join(ROUNDINGS)}")
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(
            f"image {width}x{height} has aspect ratio above {MAX_ASPECT_RATIO}; "
            "the Qwen-VL processors refuse it, so crop or pad it first"
        )
    vl_utils = rounding == "qwen_vl_utils"
    low = factor if vl_utils else 0
    h_bar = max(low, round(height / factor) * factor)
    w_bar = max(low, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        low = 0 if vl_utils else factor
        h_bar = max(low, math.floor(height / beta / factor) * factor)
        w_bar = max(low, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def frame_size(
    size: tuple[int, int],
    family: str | FamilySpec,
    budget: PixelBudget | None = None,
    *,
    rounding: str = "processor",
) -> tuple[int, int]:
    """(width, height) of the frame the model sees for an image of ``size`` = (width, height)."""
    spec = get_family(family) if isinstance(family, str) else family
    budget = budget or PixelBudget()
    width, height = size
    h, w = smart_resize(
        height, width, spec.factor, budget.min_pixels, budget.max_pixels, rounding=rounding
    )
    return w, h


def grid_thw(size: tuple[int, int], family: str | FamilySpec, budget: PixelBudget | None = None):
    """(t, h, w) patch grid of one image, as the processor's ``image_grid_thw`` reports it."""
    spec = get_family(family) if isinstance(family, str) else family
    w, h = frame_size(size, spec, budget)
    return 1, h // spec.patch_size, w // spec.patch_size


def image_tokens(
    size: tuple[int, int], family: str | FamilySpec, budget: PixelBudget | None = None
) -> int:
    """Number of ``<|image_pad|>`` tokens one image expands to in the prompt."""
    spec = get_family(family) if isinstance(family, str) else family
    t, h, w = grid_thw(size, spec, budget)
    return t * h * w // (spec.merge_size**2)
