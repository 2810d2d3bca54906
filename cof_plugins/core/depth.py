"""Depth maps as images: one orientation, two encodings (gray and Spectral_r colour).

SIFThinker's release stores Depth-Anything-V2 maps (relative inverse depth, min-max scaled
to 0..255 per image, so bright / red = near) either as gray PNGs or through matplotlib's
``Spectral_r`` palette, and decodes them with *opposite* orientations: a colour pixel
becomes ``1 - palette_index / 255`` (near = 0), a gray pixel ``byte / 255`` (near = 1).

This project fixes one meaning and applies it to both encodings:

- **depth d in [0, 1], 0 = nearest, 1 = farthest** (per image), the meaning of the release's
  colour decoding and of the word "depth";
- the images look like Depth-Anything-V2's: gray byte ``255 * (1 - d)`` (near is bright),
  colour ``SPECTRAL_R[255 * (1 - d)]`` (near is red);
- ``decode`` returns d for either, so a gray map and a colour map of one scene decode to the
  same array. (The release's gray decoder would return ``1 - d``; its colour decoder agrees.)

The palette is written here: the eleven ColorBrewer "Spectral" colours, reversed and
linearly interpolated to 256 entries, which is how matplotlib builds ``Spectral_r``
(a test compares the two). All 256 entries differ, so an exactly encoded pixel decodes to
its exact level; other colours decode to the nearest entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

ENCODINGS = ("color", "gray")
LEVELS = 255

# ColorBrewer Spectral (11 classes), from red to purple; Spectral_r runs purple -> red.
_SPECTRAL = (
    (0x9E, 0x01, 0x42), (0xD5, 0x3E, 0x4F), (0xF4, 0x6D, 0x43), (0xFD, 0xAE, 0x61),
    (0xFE, 0xE0, 0x8B), (0xFF, 0xFF, 0xBF), (0xE6, 0xF5, 0x98), (0xAB, 0xDD, 0xA4),
    (0x66, 0xC2, 0xA5), (0x32, 0x88, 0xBD), (0x5E, 0x4F, 0xA2),
)  # fmt: skip


def _spectral_r() -> np.ndarray:
    stops = np.array(_SPECTRAL[::-1], dtype=np.float64)
    t = np.arange(LEVELS + 1) / LEVELS
    at = np.linspace(0.0, 1.0, len(stops))
    lut = np.stack([np.interp(t, at, stops[:, c]) for c in range(3)], axis=1)
    return np.floor(lut + 0.5).astype(np.uint8)


SPECTRAL_R = _spectral_r()  # (256, 3) uint8: index 0 = far (purple), 255 = near (red)


def to_levels(depth: np.ndarray) -> np.ndarray:
    """Depth in [0, 1] -> integer levels 0..255 (rounded); values outside are clipped."""
    return np.clip(np.rint(np.asarray(depth, dtype=np.float64) * LEVELS), 0, LEVELS).astype(
        np.uint8
    )


def encode(depth: np.ndarray, encoding: str = "color") -> Image.Image:
    """A depth array (H, W) in [0, 1] as a gray ("L") or Spectral_r colour ("RGB") image."""
    near = LEVELS - to_levels(depth)  # the inverse-depth byte Depth-Anything-V2 writes
    if encoding == "gray":
        return Image.fromarray(near)
    if encoding == "color":
        return Image.fromarray(SPECTRAL_R[near])
    raise ValueError(f"depth encoding {encoding!r}: use one of {', '.join(ENCODINGS)}")


def decode(image: Image.Image) -> np.ndarray:
    """Depth d in [0, 1] (0 = near) from a gray or Spectral_r depth image.

    Single-channel images, and RGB images whose three channels are equal everywhere, are
    gray; anything else is decoded through the palette (nearest entry).
    """
    if image.mode in ("L", "I", "I;16", "F"):
        arr = np.asarray(image.convert("F"), dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I") and arr.max() > LEVELS else float(LEVELS)
        return 1.0 - np.clip(arr / top, 0.0, 1.0)
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return 1.0 - rgb[..., 0] / LEVELS
    return 1.0 - _palette_index(rgb) / LEVELS


def _keys(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


_PALETTE_KEYS = _keys(SPECTRAL_R)
_KEY_ORDER = np.argsort(_PALETTE_KEYS)


def _palette_index(rgb: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """Spectral_r entry per pixel: exact colours by lookup, others by nearest entry."""
    flat = rgb.reshape(-1, 3)
    keys = _keys(flat)
    sorted_keys = _PALETTE_KEYS[_KEY_ORDER]
    at = np.clip(np.searchsorted(sorted_keys, keys), 0, len(sorted_keys) - 1)
    exact = sorted_keys[at] == keys
    out = np.where(exact, _KEY_ORDER[at], 0).astype(np.float64)
    rest = np.flatnonzero(~exact)
    palette = SPECTRAL_R.astype(np.int32)
    for start in range(0, len(rest), chunk):
        idx = rest[start : start + chunk]
        dist = ((flat[idx, None, :].astype(np.int32) - palette[None, :, :]) ** 2).sum(-1)
        out[idx] = dist.argmin(1)
    return out.reshape(rgb.shape[:2])


def load_depth(path: str | Path) -> np.ndarray:
    """Decode a depth map file (gray or colour PNG) to d in [0, 1]."""
    with Image.open(path) as image:
        image.load()
        return decode(image)


class BoxMeans:
    """Mean depth inside normalised boxes, in O(1) per box (a summed-area table).

    A box [x1, y1, x2, y2] in [0, 1] covers the map pixels whose cells it touches, at least
    one pixel; this is the mean the release computes over the box cut from the map.
    """

    def __init__(self, depth: np.ndarray) -> None:
        depth = np.asarray(depth, dtype=np.float64)
        if depth.ndim != 2 or depth.size == 0:
            raise ValueError(f"a depth map must be a non-empty 2-D array, got shape {depth.shape}")
        self.height, self.width = depth.shape
        self._sat = np.zeros((self.height + 1, self.width + 1))
        self._sat[1:, 1:] = depth.cumsum(0).cumsum(1)

    def pixels(self, box: Sequence[float]) -> tuple[int, int, int, int]:
        """Pixel rectangle [c1, c2) x [r1, r2) of a normalised box, clipped, never empty."""
        x1, y1, x2, y2 = (min(1.0, max(0.0, float(v))) for v in box)
        c1 = min(int(np.floor(x1 * self.width)), self.width - 1)
        r1 = min(int(np.floor(y1 * self.height)), self.height - 1)
        c2 = max(int(np.ceil(x2 * self.width)), c1 + 1)
        r2 = max(int(np.ceil(y2 * self.height)), r1 + 1)
        return c1, r1, min(c2, self.width), min(r2, self.height)

    def mean(self, box: Sequence[float]) -> float:
        c1, r1, c2, r2 = self.pixels(box)
        s = self._sat
        total = s[r2, c2] - s[r1, c2] - s[r2, c1] + s[r1, c1]
        return float(total / ((c2 - c1) * (r2 - r1)))
