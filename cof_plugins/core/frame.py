"""The frame: the exact image size a model sees for a given image, family and pixel budget.

Box coordinates in CoF are pixels (or a normalised scale) *of the frame*, so SFT, RL and
eval must all produce the same frame for the same image. Every recipe carries one
``PixelBudget`` (bounds on the frame's area, the same meaning for every family); every stage
hands it to its processor through ``FamilySpec.processor_bounds``, and this module is the
single place that says what size results, with each family's own resize rule
(``core.families``).
"""

from __future__ import annotations

from dataclasses import dataclass

# Families live in core.families (one declaration each); these names stay importable here.
from cof_plugins.core.families import (
    FAMILIES,
    MAX_ASPECT_RATIO,
    ROUNDINGS,
    FamilySpec,
    get_family,
    smart_resize,
)


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


def frame_size(
    size: tuple[int, int],
    family: str | FamilySpec,
    budget: PixelBudget | None = None,
    *,
    rounding: str = "processor",
) -> tuple[int, int]:
    """(width, height) of the frame the model sees for an image of ``size`` = (width, height)."""
    spec = get_family(family)
    budget = budget or PixelBudget()
    width, height = size
    h, w = spec.resize(height, width, budget.min_pixels, budget.max_pixels, rounding=rounding)
    return w, h


def grid_thw(size: tuple[int, int], family: str | FamilySpec, budget: PixelBudget | None = None):
    """(t, h, w) patch grid of one image, as the processor's ``image_grid_thw`` reports it."""
    spec = get_family(family)
    w, h = frame_size(size, spec, budget)
    return 1, h // spec.patch_size, w // spec.patch_size


def image_tokens(
    size: tuple[int, int], family: str | FamilySpec, budget: PixelBudget | None = None
) -> int:
    """Number of image placeholder tokens (``<|image_pad|>``, ``<|image|>``) one image becomes."""
    spec = get_family(family)
    t, h, w = grid_thw(size, spec, budget)
    return t * h * w // (spec.merge_size**2)


__all__ = [
    "FAMILIES",
    "MAX_ASPECT_RATIO",
    "ROUNDINGS",
    "FamilySpec",
    "PixelBudget",
    "frame_size",
    "get_family",
    "grid_thw",
    "image_tokens",
    "smart_resize",
]
