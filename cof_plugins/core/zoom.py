"""One zoom-in tool call's pixels: check the model's box, then crop, enlarge and resize it.

The geometry is the Adaptive-CoF release's (README, "The paper profile"): the box is in
absolute pixels of the *frame* (the smart-resized image the model saw); it is enlarged 1.5x
about its centre, clipped to the frame, upscaled 2x and smart-resized to multiples of the
family's factor. ``ZoomConfig`` says how; ``core.profiles`` names the two settings that
matter (``default`` and ``paper``, the release exactly). The default departs from the
release in four ways, each a field:

- ``full_resolution`` (on): when the original is larger than the frame, pixels come from the
  original, so a zoom shows detail the frame lost. The output size is the same either way,
  so a zoom's token cost never depends on the file's resolution.
- ``snap="outward"``: the enlarged edges snap outwards (floor/ceil), so the crop always holds
  the whole enlarged box; the release truncates each clipped edge with int() (``"truncate"``).
- ``min_side`` and ``aspect_guard``: regions thinner than 28 frame pixels grow about their
  centre (as DeepEyes does) and very thin regions widen so the processors' 200:1 aspect
  limit cannot refuse the crop; a 3-pixel crop upscaled is noise, not evidence.
- ``resample="bicubic"``: the filter the Qwen-VL processors resize with, so crops look like
  the frames trained on; the release resizes with LANCZOS.

Bad boxes never raise: they come back as a message (``core.box_check``). A box whose region
the release could not resize either (zero width after truncation, or thinner than 200:1)
comes back as ``problem="degenerate"``. Bad configs, frames and images do raise.

Speed: only the crop region is resampled. Given the frame, that is a crop and one resize,
as in the release; from the original, PIL's ``resize(box=...)`` reads the source box
straight from it (bench/zoom.py measures both against the release's own work).
"""

from __future__ import annotations

import io
import math
import numbers
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from cof_plugins.core.box_check import BoxCheck, check_frame, show_box, validate_box
from cof_plugins.core.frame import (
    MAX_ASPECT_RATIO,
    ROUNDINGS,
    FamilySpec,
    get_family,
    smart_resize,
)
from cof_plugins.core.pixels import to_rgb

__all__ = [
    "DEFAULT_MAX_IMAGE_PIXELS", "RESAMPLE", "BoxCheck", "ImageLoadError", "ZoomConfig",
    "ZoomPlan", "ZoomResult", "load_image", "plan_zoom", "render", "resample_filter",
    "validate_box", "zoom",
]  # fmt: skip

Box = tuple[float, float, float, float]
IntBox = tuple[int, int, int, int]

# Filters by name, as configs write them.
RESAMPLING = {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}
# Bicubic is the filter the Qwen-VL processors resize with, so crops and frames look alike;
# Lanczos (the release's) measured ~1.3x slower here and makes crops sharper than frames.
RESAMPLE = RESAMPLING["bicubic"]
SNAPS = ("outward", "truncate")
# Enough for an 8K image with room to spare; a guard against decompression bombs, not a cap
# on sensible photos. Per call, so no one has to touch PIL's global Image.MAX_IMAGE_PIXELS.
DEFAULT_MAX_IMAGE_PIXELS = 100_000_000
# Modes PIL resamples properly; others ("P", "1", "CMYK", ...) are converted first.
_RESAMPLE_MODES = frozenset({"RGB", "RGBA", "L", "LA"})


def resample_filter(name: str) -> Image.Resampling:
    """The PIL filter called ``name`` ("bicubic" or "lanczos")."""
    try:
        return RESAMPLING[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown resample {name!r}; use one of {', '.join(RESAMPLING)}") from None


@dataclass(frozen=True)
class ZoomConfig:
    """Geometry of one zoom; defaults are this package's for Qwen2.5-VL (crop cap from RL)."""

    enlarge: float = 1.5
    upscale: float = 2.0
    min_pixels: int = 112 * 112
    max_pixels: int = 5120 * 28 * 28
    factor: int = 28
    clamp: bool = False
    full_resolution: bool = True
    min_side: int = 28  # 0: no minimum (the release)
    snap: str = "outward"
    aspect_guard: bool = True
    resample: str = "bicubic"
    rounding: str = "processor"

    def __post_init__(self) -> None:
        _require_real("enlarge", self.enlarge, 1.0, "so that the crop still contains the box")
        _require_real("upscale", self.upscale, 0.0, "", strict=True)
        for name in ("min_pixels", "max_pixels", "factor"):
            _require_int(name, getattr(self, name))
        _require_int("min_side", self.min_side, low=0)
        if not self.factor * self.factor <= self.min_pixels <= self.max_pixels:
            raise ValueError(
                "ZoomConfig needs factor**2 <= min_pixels <= max_pixels, got "
                f"factor={self.factor}, min_pixels={self.min_pixels}, "
                f"max_pixels={self.max_pixels}"
            )
        for name in ("clamp", "full_resolution", "aspect_guard"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise TypeError(f"ZoomConfig.{name} must be True or False, got {value!r}")
        for name, valid in (("snap", SNAPS), ("resample", RESAMPLING), ("rounding", ROUNDINGS)):
            if getattr(self, name) not in valid:
                raise ValueError(
                    f"ZoomConfig.{name} must be one of {', '.join(valid)}, "
                    f"got {getattr(self, name)!r}"
                )

    @classmethod
    def for_family(cls, family: str | FamilySpec, **overrides: object) -> ZoomConfig:
        """Config whose ``factor`` matches ``family`` (28 for Qwen2.5-VL, 32 for Qwen3-VL)."""
        spec = get_family(family) if isinstance(family, str) else family
        return cls(**{"factor": spec.factor, **overrides})  # type: ignore[arg-type]

    @property
    def filter(self) -> Image.Resampling:
        return RESAMPLING[self.resample]


def _require_real(name: str, value: object, low: float, why: str, strict: bool = False) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and (value > low if strict else value >= low)):  # type: ignore[operator]
        bound = f"> {low:g}" if strict else f">= {low:g}"
        why = f" {why}" if why else ""
        raise ValueError(f"ZoomConfig.{name} must be a finite number {bound}{why}, got {value!r}")


def _require_int(name: str, value: object, low: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        kind = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"ZoomConfig.{name} must be {kind}, got {value!r}")


@dataclass(frozen=True)
class ZoomPlan:
    """Where one zoom reads and what size it writes; pure geometry, no pixels.

    ``size`` is None when the region cannot be resized (see ``degenerate``).
    """

    box: Box  # the validated box, frame pixels
    enlarged_box: IntBox  # enlarged, guarded, clipped; frame pixels
    source_box: Box  # the same region in the original's pixels
    size: tuple[int, int] | None  # (width, height) of the crop handed to the model
    degenerate: str = ""  # why no crop can be made of this region, for the model

    @property
    def ok(self) -> bool:
        return self.size is not None


def plan_zoom(
    image_size: tuple[int, int], frame_size: tuple[int, int], box: Box, config: ZoomConfig
) -> ZoomPlan:
    """Geometry of a zoom on an already validated ``box``; shared by the fast and test paths."""
    fw, fh = check_frame(frame_size)
    iw, ih = check_frame(image_size)
    x1, y1, x2, y2 = box
    if config.snap == "truncate":
        ex1, ex2 = _truncated(x1, x2, config.enlarge, fw)
        ey1, ey2 = _truncated(y1, y2, config.enlarge, fh)
    else:
        ex1, ex2 = _enlarge(x1, x2, config.enlarge, config.min_side, fw)
        ey1, ey2 = _enlarge(y1, y2, config.enlarge, config.min_side, fh)
    if config.aspect_guard:
        ex1, ey1, ex2, ey2 = _aspect_guard((ex1, ey1, ex2, ey2), fw, fh)
    # Multiply before dividing so the frame's far edge maps exactly onto the image's.
    source = (ex1 * iw / fw, ey1 * ih / fh, ex2 * iw / fw, ey2 * ih / fh)
    enlarged = (ex1, ey1, ex2, ey2)
    size, why = _output_size(ex2 - ex1, ey2 - ey1, config)
    return ZoomPlan(box, enlarged, source, size, why)


def _output_size(cw: int, ch: int, config: ZoomConfig) -> tuple[tuple[int, int] | None, str]:
    """Upscale, then smart-resize; None (and why) where the release's resize would fail."""
    if cw < 1 or ch < 1:
        return None, f"the region is {cw}x{ch} pixels after enlarging, too small to crop"
    if config.aspect_guard:
        up_w, up_h = max(1, round(cw * config.upscale)), max(1, round(ch * config.upscale))
        # Rounding (or a frame thinner than the limit) can still tip the ratio over it.
        up_w = max(up_w, math.ceil(up_h / MAX_ASPECT_RATIO))
        up_h = max(up_h, math.ceil(up_w / MAX_ASPECT_RATIO))
    else:  # the release multiplies the crop's size and hands it to smart_resize as it is
        up_w, up_h = cw * config.upscale, ch * config.upscale
    if max(up_w, up_h) / min(up_w, up_h) > MAX_ASPECT_RATIO:
        why = f"the region is {cw}x{ch} pixels, thinner than {MAX_ASPECT_RATIO}:1"
        return None, why
    h, w = smart_resize(
        up_h, up_w, config.factor, config.min_pixels, config.max_pixels, rounding=config.rounding
    )
    if w < 1 or h < 1:  # qwen-vl-utils can floor a side to 0 near the cap
        return None, f"the region is {cw}x{ch} pixels and cannot be resized"
    return (w, h), ""


def _truncated(lo: float, hi: float, scale: float, limit: int) -> tuple[int, int]:
    """One axis as the release does it: scale about the centre, clip, then int() each edge."""
    centre, half = (lo + hi) / 2, (hi - lo) * scale / 2
    return int(max(0, centre - half)), int(min(limit, centre + half))


def _enlarge(lo: float, hi: float, scale: float, min_side: int, limit: int) -> tuple[int, int]:
    """One axis: scale about the centre, clip, snap outwards, then grow to ``min_side``."""
    centre, half = (lo + hi) / 2, (hi - lo) * scale / 2
    a = max(0, math.floor(centre - half))
    b = min(limit, math.ceil(centre + half))
    return _grow(a, b, min_side, limit)


def _grow(a: int, b: int, side: int, limit: int) -> tuple[int, int]:
    """Widen [a, b] about its centre to ``side`` (at most ``limit``), shifted inside the frame.

    Shifting rather than clipping keeps the guaranteed size at the frame's edges, and the
    grown span still contains [a, b] because it only ever moves outwards or sideways.
    """
    side = min(side, limit)
    if b - a >= side:
        return a, b
    a = math.floor((a + b - side) / 2)
    a = min(max(a, 0), limit - side)
    return a, a + side


def _aspect_guard(box: IntBox, fw: int, fh: int) -> IntBox:
    """Widen the short side so the processors' aspect-ratio limit cannot refuse the crop."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if w > h * MAX_ASPECT_RATIO:
        y1, y2 = _grow(y1, y2, math.ceil(w / MAX_ASPECT_RATIO), fh)
    elif h > w * MAX_ASPECT_RATIO:
        x1, x2 = _grow(x1, x2, math.ceil(h / MAX_ASPECT_RATIO), fw)
    return x1, y1, x2, y2


@dataclass(frozen=True)
class ZoomResult:
    """One tool call's outcome: a crop and its geometry, or only a model-facing message.

    ``problem`` says why there is no crop: "box" (the box itself is unusable) or
    "degenerate" (a valid box whose region cannot be resized, see ``ZoomPlan``).
    """

    crop: Image.Image | None
    message: str
    box: Box | None = None
    enlarged_box: IntBox | None = None
    source_box: Box | None = None
    size: tuple[int, int] | None = None
    from_original: bool = False  # whether the pixels came from the original, not the frame
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.crop is not None


def zoom(
    image: Image.Image,
    frame_size: tuple[int, int],
    box: object,
    config: ZoomConfig | None = None,
) -> ZoomResult:
    """Crop ``box`` (absolute frame pixels, as the model wrote it) from a loaded ``image``.

    ``image`` is the frame itself or the original it was resized from. Takes an image, never
    a path: nothing the model writes can make this open a file.
    """
    if not isinstance(image, Image.Image):
        kind = type(image).__name__
        raise TypeError(f"zoom needs a loaded PIL image (see load_image), got {kind}")
    config = config or ZoomConfig()
    check = validate_box(box, frame_size, clamp=config.clamp)
    if not check.ok:
        return ZoomResult(None, check.message, problem="box")
    plan = plan_zoom(image.size, frame_size, check.box, config)  # type: ignore[arg-type]
    fw, fh = frame_size
    geometry = (plan.box, plan.enlarged_box, plan.source_box)
    if not plan.ok:
        message = (
            f"Cannot zoom into {show_box(plan.box)} of the {fw}x{fh} image: {plan.degenerate}. "
            "Give a box a few pixels wide and tall."
        )
        return ZoomResult(None, message, *geometry, problem="degenerate")
    from_original = config.full_resolution and image.size != tuple(frame_size)
    crop = render(image, frame_size, plan, config)
    message = (
        f"Zoomed into {show_box(plan.box)} of the {fw}x{fh} image; "
        f"the crop is {plan.size[0]}x{plan.size[1]} pixels."  # type: ignore[index]
    )
    if check.clamped:
        message = f"{check.message} {message}"
    return ZoomResult(crop, message, *geometry, plan.size, from_original)


def render(
    image: Image.Image,
    frame_size: tuple[int, int],
    plan: ZoomPlan,
    config: ZoomConfig,
) -> Image.Image:
    """Resample only the planned region; the whole original is never resized.

    Given the frame this is the release's work: a crop and one resize. From a larger
    original, ``full_resolution`` reads the source box straight from it; otherwise the box
    is first resampled to its frame size (PIL computes those pixels as a whole-image resize
    would), then resized to the final size.
    """
    if plan.size is None:
        raise ValueError(f"render: the plan has no output size ({plan.degenerate})")
    src = image if image.mode in _RESAMPLE_MODES else to_rgb(image)
    ex1, ey1, ex2, ey2 = plan.enlarged_box
    filt = config.filter
    if src.size == tuple(frame_size):
        out = src.crop(plan.enlarged_box).resize(plan.size, filt)
    elif config.full_resolution:
        out = src.resize(plan.size, filt, box=plan.source_box)
    else:
        region = src.resize((ex2 - ex1, ey2 - ey1), filt, box=plan.source_box)
        out = region.resize(plan.size, filt)
    return out if out.mode == "RGB" else to_rgb(out)


class ImageLoadError(ValueError):
    """An image file that cannot or must not be decoded; the message names the file."""


# What decoding a hostile or broken file can raise, besides PIL's bomb error.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


def load_image(
    source: str | os.PathLike[str] | bytes,
    *,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    draft: tuple[int, int] | None = None,
) -> Image.Image:
    """Decode an image to RGB, refusing files above ``max_image_pixels`` before decoding.

    The size check reads only the header, so a tiny file claiming billions of pixels costs
    nothing. PIL's global limit still applies underneath; when it fires first, the error
    says so rather than leaving PIL's warning or exception unexplained.

    ``draft`` (width, height) lets a JPEG decode at the smallest DCT scale (1/2, 1/4, 1/8)
    still at least that size (``Image.draft``), which costs a fraction of a full decode in
    time and memory; other formats ignore it and decode in full.
    """
    if isinstance(max_image_pixels, bool) or not isinstance(max_image_pixels, int):
        raise TypeError(f"max_image_pixels must be an integer, got {max_image_pixels!r}")
    if max_image_pixels < 1:
        raise ValueError(f"max_image_pixels must be positive, got {max_image_pixels}")
    name = _describe(source)
    image = _open(source, name, max_image_pixels)
    try:
        w, h = image.size
        if w * h > max_image_pixels:
            raise ImageLoadError(
                f"refused {name}: {w}x{h} = {w * h} pixels exceeds max_image_pixels="
                f"{max_image_pixels} (a guard against decompression bombs); pass a larger "
                "max_image_pixels if the file is trusted"
            )
        if draft is not None and image.format == "JPEG":
            image.draft(None, (max(1, int(draft[0])), max(1, int(draft[1]))))
        image.load()
    except _DECODE_ERRORS as exc:
        image.close()
        if isinstance(exc, ImageLoadError):
            raise
        raise ImageLoadError(f"cannot read image {name}: {exc}") from exc
    return to_rgb(image)


def _open(source: str | os.PathLike[str] | bytes, name: str, limit: int) -> Image.Image:
    """Read the header only; PIL's own bomb warning is silenced because we check ourselves."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(
            f"refused {name}: {exc} (PIL's global Image.MAX_IMAGE_PIXELS is below "
            f"max_image_pixels={limit}; raise both if the file is trusted)"
        ) from exc
    except _DECODE_ERRORS as exc:
        raise ImageLoadError(f"cannot read image {name}: {exc}") from exc


def _describe(source: object) -> str:
    if isinstance(source, bytes):
        return f"<{len(source)} bytes of image data>"
    if isinstance(source, str | os.PathLike):
        return repr(str(Path(source)))
    raise TypeError(f"load_image needs a path or bytes, got {type(source).__name__}")
