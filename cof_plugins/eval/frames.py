"""Frames for the evaluation loop: decode each input once, derive every frame from that decode.

The loop needs, per sample, the frame at each resolution of a sweep (or the native one), for
every draw and option order, and the full-resolution pixels only when the model zooms. Before
this module each trajectory decoded its file in full and resized it twice (the sweep's
long-side resize, then the frame); at 4K-8K that cost more than the whole zoom step.

Two ways to make a frame, chosen by the profile (``Profile.eval_frames``) or
``LoopConfig.exact_frames``:

- ``exact`` (the ``paper`` profile): decode in full, ``resize_long_side`` then ``make_frame``
  with the profile's filter: the release's pixels, bit for bit. The decode is still shared
  across resolutions, draws and orders (same pixels, less work).
- ``reduced`` (default): a JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8;
  ``Image.draft``) still ``REDUCING_GAP`` times the largest frame needed; other formats
  decode in full. Each frame is then one resample, with the profile's filter, from the
  smallest level of an ``Image.reduce(2)`` pyramid that is still ``REDUCING_GAP`` times the
  frame (the first level: ``FIRST_GAP``, so at 4K the 1920 frame comes from the 1920x1080
  level); frames of ``TWO_STEP_PIXELS`` or more resample bilinearly (``NEAR_FILTER``).
  The frame's *size* is the exact path's (the same arithmetic), so boxes mean the same;
  its pixels differ from the exact frame by 40 dB PSNR or more (``bench/frames.py`` measures
  it, tests/eval/test_eval_frames.py checks it). Below ``TWO_STEP_PIXELS`` a sweep frame is
  made in the exact path's two steps, from the pyramid.

Crops never come from a reduced decode: ``SampleImages.source`` decodes the file in full the
first time a trajectory of that sample zooms, and a sweep's resized input is computed from it
exactly as before, so every crop holds the same pixels in both modes.
"""

from __future__ import annotations

import io
import math
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from PIL import Image

from cof_plugins.core.frame import PixelBudget, frame_size
from cof_plugins.core.profiles import get_profile
from cof_plugins.core.zoom import ImageLoadError, load_image, resample_filter
from cof_plugins.core.zoom_step import make_frame
from cof_plugins.eval.images import ImageRef

# A resample from a reduce level deeper than the first starts from one at least this many
# times the output on each side, so the filter sees the detail it would see in the full
# image (PIL's ``reducing_gap`` idea: at 2 the result is within 40 dB of a resample from the
# full decode on textured photos).
REDUCING_GAP = 2.0
# The first ``Image.reduce(2)`` level (one 2x2 average, a mild low-pass) serves any output
# up to 2% larger than itself: at 4K the 1920 sweep frame (1932x1092) is made from the
# 1920x1080 level, not from the 3840x2160 decode (45 dB or more; bench/frames.py).
FIRST_GAP = 0.98
# A JPEG decodes at a DCT scale still this many times the largest frame (the DCT's own
# scaling is a proper low-pass filter, so no margin beyond the frame itself is needed).
DRAFT_GAP = 1.0
# Below this many source pixels, a sweep frame is made in the exact path's two steps (the
# long-side resize, then the frame): they are cheap there, and at small sizes the second
# step's stretch to multiples of 28 (up to 7%) changes pixels measurably.
TWO_STEP_PIXELS = 1536 * 1024
# A frame of at least TWO_STEP_PIXELS, not blown up by more than NEAR_UP, is resampled with
# bilinear rather than the profile's filter. The pyramid above hands such a frame an image
# less than about twice its size, and at those scales both filters are near interpolators
# (PSNR 42 dB or more between them on bench/frames.py's gratings) while bilinear reads 3
# taps a pixel where bicubic reads 5-7: these multi-megapixel resamples (3840x2160 ->
# 3836x2156 at 4K) are where a sweep's time goes. Bigger blow-ups keep the profile's filter.
NEAR_UP = 1.1
NEAR_FILTER = Image.Resampling.BILINEAR
# Samples kept decoded; the loop asks for one sample's resolutions, draws and orders in a row.
CACHE_SAMPLES = 4

# Bumped whenever the reduced path's pixels change (2: bilinear near-size frames from the
# first reduce level); a run directory records it, so a resume never mixes two versions.
REDUCED_REVISION = 2


def frames_setting(mode: str) -> str:
    """What a run directory records for its frames: ``exact``, or ``reduced/<revision>``."""
    return mode if mode == "exact" else f"{mode}/{REDUCED_REVISION}"


def long_side_size(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(w, h) after scaling so the longer side is ``long_side``, keeping the aspect ratio."""
    w, h = size
    scale = long_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def resize_long_side(image: Image.Image, long_side: int, resample: str = "bicubic") -> Image.Image:
    """Scale so the longer side is ``long_side`` pixels, keeping the aspect ratio."""
    size = long_side_size(image.size, long_side)
    return image if size == image.size else image.resize(size, resample_filter(resample))


@dataclass(frozen=True)
class FrameSpec:
    """What decides a frame: the model family, the pixel budget and the profile."""

    family: str
    budget: PixelBudget
    profile: str = "default"
    exact: bool = False  # force the exact path whatever the profile says

    @property
    def mode(self) -> str:
        return "exact" if self.exact else get_profile(self.profile).eval_frames


class SampleImages:
    """One input file: its header size, its frames, and its full decode when a zoom needs it.

    Holds the encoded bytes (a few MB) rather than pixels between uses; the reduced decode
    and its pyramid are dropped once every expected frame is made.
    """

    def __init__(self, ref: ImageRef, spec: FrameSpec, resolutions: Iterable[int | None] = ()):
        self.ref, self.spec = ref, spec
        self.resolutions = list(dict.fromkeys(resolutions))
        try:
            self.data = ref.read_bytes()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(self.data)) as header:
                    self.size: tuple[int, int] = header.size
        except ImageLoadError:
            raise
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise ImageLoadError(f"cannot read image {ref.describe()}: {exc}") from None
        prof = get_profile(spec.profile)
        self._filter, self._rounding = prof.frame_resample, prof.frame_rounding
        self._frames: dict[int | None, Image.Image] = {}
        self._sources: dict[int | None, Image.Image] = {}
        self._levels: list[Image.Image] = []
        self._full: Image.Image | None = None

    # ------------------------------------------------------------ sizes

    def source_size(self, resolution: int | None) -> tuple[int, int]:
        """The input's size after the sweep's long-side resize (the file's without one)."""
        return self.size if resolution is None else long_side_size(self.size, resolution)

    def frame_size(self, resolution: int | None) -> tuple[int, int]:
        return frame_size(
            self.source_size(resolution), self.spec.family, self.spec.budget,
            rounding=self._rounding,
        )  # fmt: skip

    # ------------------------------------------------------------ pixels

    def frame(self, resolution: int | None) -> Image.Image:
        """The frame the model is shown at ``resolution`` (None: the file as it is)."""
        if resolution not in self._frames:
            if self.spec.mode == "exact":
                cached = resolution in self._sources
                source = self._sources[resolution] if cached else self._resized(resolution)
                self._frames[resolution] = make_frame(
                    source, self.spec.family, self.spec.budget, self.spec.profile
                )
            else:
                self._frames[resolution] = self._reduced_frame(resolution)
            if all(r in self._frames for r in self.resolutions):
                self._levels = []  # every expected frame is made: the pyramid is not needed
        return self._frames[resolution]

    def source(self, resolution: int | None) -> Image.Image:
        """The image zooms read: the full decode, or the sweep's resize of it (exact)."""
        if resolution not in self._sources:  # kept: every zoom of the sample reads it
            self._sources[resolution] = self._resized(resolution)
        return self._sources[resolution]

    def _resized(self, resolution: int | None) -> Image.Image:
        full = self.full()
        return full if resolution is None else resize_long_side(full, resolution, self._filter)

    def full(self) -> Image.Image:
        if self._full is None:
            self._full = self._decode(None)
        return self._full

    def _decode(self, draft: tuple[int, int] | None) -> Image.Image:
        try:
            return load_image(self.data, draft=draft)
        except ImageLoadError as exc:
            raise ImageLoadError(f"{self.ref.describe()}: {exc}") from None

    def _reduced_frame(self, resolution: int | None) -> Image.Image:
        """One resample from the pyramid; two where the exact path's second one matters."""
        size, source = self.frame_size(resolution), self.source_size(resolution)
        if resolution is None or source == size or source[0] * source[1] > TWO_STEP_PIXELS:
            return self._resample(self._level_for(size, resolution), size)
        return self._resample(self._resample(self._level_for(source, resolution), source), size)

    def _resample(self, image: Image.Image, size: tuple[int, int]) -> Image.Image:
        """``image`` at ``size``: with the profile's filter, or bilinear for a near-size frame."""
        near = size[0] * size[1] >= TWO_STEP_PIXELS and _fits(
            image.width, image.height, size, 1 / NEAR_UP
        )
        return image.resize(size, NEAR_FILTER if near else resample_filter(self._filter))

    def _level_for(self, size: tuple[int, int], resolution: int | None) -> Image.Image:
        """The smallest usable level for an output of ``size``: the decode itself (at least
        DRAFT_GAP times ``size``), or an Image.reduce level at least ``_gap`` times it."""
        if not self._levels or not _covers(self._levels[0], size, DRAFT_GAP, self.size):
            self._levels = [self._base({resolution, *self.resolutions})]
        levels = self._levels
        while _fits(levels[-1].width // 2, levels[-1].height // 2, size, _gap(len(levels))):
            levels.append(levels[-1].reduce(2))
        usable = [i for i in range(1, len(levels)) if _covers(levels[i], size, _gap(i))]
        return levels[usable[-1] if usable else 0]

    def _base(self, resolutions: set[int | None]) -> Image.Image:
        """One decode for every frame still to make: a JPEG at a reduced scale if it allows."""
        sizes = [self.frame_size(r) for r in resolutions]
        sizes += [self.source_size(r) for r in resolutions if r is not None]
        want = (
            math.ceil(max(w for w, _ in sizes) * DRAFT_GAP),
            math.ceil(max(h for _, h in sizes) * DRAFT_GAP),
        )
        if want[0] >= self.size[0] or want[1] >= self.size[1]:
            return self.full()
        base = self._decode(want)
        if base.size == self.size:  # not a JPEG: the decode was a full one anyway
            self._full = base
        return base


def _gap(level: int) -> float:
    """How many times the output a pyramid level (1: the first reduce) must be to serve it."""
    return FIRST_GAP if level == 1 else REDUCING_GAP


def _fits(width: int, height: int, size: tuple[int, int], gap: float) -> bool:
    return width >= gap * size[0] and height >= gap * size[1]


def _covers(
    level: Image.Image, size: tuple[int, int], gap: float, full: tuple[int, int] | None = None
) -> bool:
    """``level`` may serve an output of ``size``: big enough for ``gap``, or the full decode."""
    return level.size == full or _fits(level.width, level.height, size, gap)


class FrameCache:
    """The last few inputs' ``SampleImages``, keyed by image (HR-Bench's cycled rows share one).

    Trajectories keep a reference to their ``SampleImages``, so an input evicted here stays
    alive (and decoded once) until its last trajectory ends.
    """

    def __init__(
        self,
        spec: FrameSpec,
        resolutions: Iterable[int | None] = (None,),
        capacity: int = CACHE_SAMPLES,
    ) -> None:
        self.spec, self.resolutions, self.capacity = spec, list(resolutions), capacity
        self._entries: OrderedDict[ImageRef, SampleImages] = OrderedDict()

    def images(self, ref: ImageRef) -> SampleImages:
        entry = self._entries.get(ref)
        if entry is None:
            entry = SampleImages(ref, self.spec, self.resolutions)
            self._entries[ref] = entry
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(ref)
        return entry
