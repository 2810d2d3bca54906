"""Any image mode to 8-bit RGB: the one conversion behind ``core.zoom.load_image``.

PIL's ``convert("RGB")`` clips wide modes instead of scaling them: a 16-bit grayscale PNG
(``I;16``) whose mid-gray is 32768 comes out 255, so the whole picture turns white, and a
float image in [0, 1] comes out black. Here wide modes are scaled to 0-255 first:

- ``I;16``, ``I;16L``, ``I;16B``, ``I;16N`` (16-bit): value / 257, so 65535 -> 255;
- ``I`` (32-bit integers; in practice 16-bit data from PNG or TIFF): as 8-bit when every
  value fits 0-255, as 16-bit when it fits 0-65535, else scaled by its maximum;
- ``F`` (float): [0, 1] data x 255, otherwise as ``I``.

Transparency (``RGBA``, ``LA``, ``PA``, or a ``P``/``L``/``RGB`` image with a transparent
colour) is composited on white, as qwen-vl-utils (verl's loader) does for RGBA. Everything
else (``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ...) goes through PIL's own conversion.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
WIDE = SIXTEEN_BIT | {"I", "F"}
_ALPHA = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
# Modes that qwen-vl-utils' plain convert("RGB") (verl's loader) turns into the same pixels.
PLAIN_MODES = frozenset({"RGB", "L", "1", "P", "CMYK", "YCbCr", "RGBA"})


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB with wide modes scaled and transparency on white."""
    if image.mode == "RGB" and "transparency" not in image.info:
        return image
    if image.mode in WIDE:
        return Image.fromarray(_to_uint8(image)).convert("RGB")  # uint8: mode L
    if image.mode in _ALPHA or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def converts_plainly(mode: str, info: dict | None = None) -> bool:
    """Whether a plain ``convert("RGB")`` (what verl's loader does) gives ``to_rgb``'s pixels."""
    return mode in PLAIN_MODES and not (mode != "RGBA" and "transparency" in (info or {}))


def _to_uint8(image: Image.Image) -> np.ndarray:
    values = np.asarray(image).astype(np.float64)
    if image.mode in SIXTEEN_BIT:
        scale = 65535.0
    else:
        finite = values[np.isfinite(values)]
        top = float(finite.max()) if finite.size else 0.0
        low = float(finite.min()) if finite.size else 0.0
        if image.mode == "F" and low >= 0.0 and top <= 1.0:
            scale = 1.0
        elif low >= 0.0 and top <= 255.0:
            scale = 255.0
        elif top <= 65535.0:
            scale = 65535.0
        else:
            scale = top
    values = np.nan_to_num(values, nan=0.0, posinf=scale, neginf=0.0)
    return np.clip(np.rint(values * (255.0 / scale)), 0, 255).astype(np.uint8)
