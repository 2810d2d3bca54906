"""Unusual image modes become the right 8-bit RGB pixels, in the one loader every stage uses.

Each case saves a real file in the mode (PNG or TIFF), loads it with ``core.zoom.load_image``
and checks pixel values, not just the mode: PIL's own ``convert("RGB")`` turns a 16-bit
mid-gray white, and that is exactly what must not happen.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from cof_plugins.core.zoom import load_image

WHITE, MID, BLACK = (255, 255, 255), (128, 128, 128), (0, 0, 0)


def _saved(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def _sixteen(mode: str) -> Image.Image:
    values = np.array([[65535, 32768, 0, 257]], dtype=np.uint16)
    if mode == "I;16B":
        return Image.frombytes("I;16B", (4, 1), values.astype(">u2").tobytes())
    if mode == "I":
        return Image.fromarray(values.astype(np.int32))
    return Image.fromarray(values)


@pytest.mark.parametrize(("mode", "fmt"), [("I;16", "PNG"), ("I;16B", "TIFF"), ("I", "TIFF")])
def test_sixteen_bit_grayscale_is_scaled_not_clipped(mode, fmt):
    data = _saved(_sixteen(mode), fmt)
    assert Image.open(io.BytesIO(data)).mode in ("I;16", "I;16B", "I")  # a wide mode on disk
    got = load_image(data)
    assert got.mode == "RGB"
    assert [got.getpixel((x, 0)) for x in range(4)] == [WHITE, MID, BLACK, (1, 1, 1)]


def test_float_image_in_unit_range():
    values = np.array([[1.0, 0.5, 0.0, 0.25]], dtype=np.float32)
    got = load_image(_saved(Image.fromarray(values), "TIFF"))
    assert [got.getpixel((x, 0)) for x in range(4)] == [WHITE, MID, BLACK, (64, 64, 64)]


def test_palette_with_a_transparent_colour_is_composited_on_white():
    image = Image.new("P", (2, 1))
    image.putpalette([200, 0, 0, 0, 0, 200] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    image.info["transparency"] = 0
    got = load_image(_saved(image, "PNG"))
    assert [got.getpixel((x, 0)) for x in range(2)] == [WHITE, (0, 0, 200)]


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_alpha_modes_are_composited_on_white(mode):
    colour = (90,) if mode == "LA" else (90, 90, 90)
    image = Image.new(mode, (2, 1))
    image.putpixel((0, 0), (*colour, 0))
    image.putpixel((1, 0), (*colour, 255))
    got = load_image(_saved(image, "PNG"))
    assert [got.getpixel((x, 0)) for x in range(2)] == [WHITE, (90, 90, 90)]


def test_palette_with_alpha_is_composited_on_white():
    """No common file format stores PA, so its conversion (load_image's) is called directly."""
    from cof_plugins.core.pixels import to_rgb

    image = Image.new("PA", (2, 1))
    image.putpalette([10, 20, 30] + [0] * 765)
    image.putpixel((0, 0), (0, 0))
    image.putpixel((1, 0), (0, 255))
    got = to_rgb(image)
    assert [got.getpixel((x, 0)) for x in range(2)] == [WHITE, (10, 20, 30)]


def test_cmyk_and_one_bit():
    cmyk = Image.new("CMYK", (2, 1))
    cmyk.putpixel((0, 0), (0, 0, 0, 0))
    cmyk.putpixel((1, 0), (0, 255, 255, 0))
    got = load_image(_saved(cmyk, "TIFF"))
    assert [got.getpixel((x, 0)) for x in range(2)] == [WHITE, (255, 0, 0)]
    bits = Image.new("1", (2, 1))
    bits.putpixel((1, 0), 1)
    got = load_image(_saved(bits, "PNG"))
    assert [got.getpixel((x, 0)) for x in range(2)] == [BLACK, WHITE]


def test_to_parquet_converts_a_sixteen_bit_frame_for_verl(cof, tmp_path):
    """verl's loader converts with PIL alone, so the parquet must hold converted pixels."""
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    gray = Image.fromarray(np.full((224, 224), 32768, dtype=np.uint16))
    gray.save(tmp_path / "gray16.png")
    row = {"image": "gray16.png", "question": "What shade?", "answer": "gray", "id": "g"}
    data = tmp_path / "ann.jsonl"
    data.write_text(json.dumps(row) + "\n")
    out = tmp_path / "rl.parquet"
    assert cof("data", "to-parquet", "--from", data, "--out", out).code == 0
    stored = pq.read_table(out).to_pylist()[0]["images"][0]["bytes"]
    pixels = Image.open(io.BytesIO(stored)).convert("RGB")  # what verl's loader does
    assert pixels.getpixel((100, 100)) == MID
    result = cof("data", "to-parquet", "--from", data, "--out", tmp_path / "p.parquet",
                 "--images", "path")  # fmt: skip
    assert result.code == 1 and "row 0: " in result.out and "--images embed" in result.out
