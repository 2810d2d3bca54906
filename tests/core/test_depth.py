"""Depth maps: the Spectral_r palette, one orientation for gray and colour, box means."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cof_plugins.core.depth import SPECTRAL_R, BoxMeans, decode, encode, load_depth, to_levels


def test_palette_matches_matplotlib():
    import matplotlib

    reference = matplotlib.colormaps["Spectral_r"](np.arange(256))[:, :3] * 255
    assert np.abs(SPECTRAL_R.astype(float) - reference).max() <= 0.5
    assert len({tuple(c) for c in SPECTRAL_R}) == 256  # every level decodes uniquely


def test_near_is_bright_gray_and_red_colour():
    depth = np.array([[0.0, 1.0]])  # left nearest, right farthest
    gray = np.asarray(encode(depth, "gray"))
    assert gray.tolist() == [[255, 0]]  # Depth-Anything-V2 style: near = bright
    colour = np.asarray(encode(depth, "color"))
    assert colour[0, 0].tolist() == [158, 1, 66]  # ColorBrewer's dark red, the near end
    assert colour[0, 1].tolist() == [94, 79, 162]  # purple, the far end


def test_both_encodings_decode_to_the_same_depth(tmp_path):
    levels = np.arange(256).reshape(16, 16)
    depth = levels / 255
    for encoding in ("gray", "color"):
        path = tmp_path / f"{encoding}.png"
        encode(depth, encoding).save(path)
        assert np.abs(load_depth(path) - depth).max() < 1e-12
    assert to_levels(depth).tolist() == levels.tolist()


def test_gray_saved_as_rgb_and_off_palette_colours():
    depth = np.array([[0.2, 0.8]])
    gray_rgb = encode(depth, "gray").convert("RGB")
    assert np.allclose(decode(gray_rgb), [[0.2, 0.8]])
    colour = np.asarray(encode(depth, "color")).astype(int)
    colour[0, 0] += [2, -1, 1]  # a slightly shifted pixel decodes to the nearest entry
    decoded = decode(Image.fromarray(colour.clip(0, 255).astype(np.uint8)))
    assert abs(decoded[0, 0] - 0.2) <= 2 / 255 and decoded[0, 1] == pytest.approx(0.8)


def test_box_means_by_hand():
    means = BoxMeans(np.array([[0.2, 0.4], [0.6, 0.8]]))
    assert means.mean((0, 0, 1, 1)) == pytest.approx(0.5)  # (0.2 + 0.4 + 0.6 + 0.8) / 4
    assert means.mean((0, 0, 0.5, 1)) == pytest.approx(0.4)  # left column (0.2 + 0.6) / 2
    assert means.mean((0.6, 0.6, 0.7, 0.7)) == pytest.approx(0.8)  # inside one pixel
    assert means.mean((0.4, 0, 0.6, 0.5)) == pytest.approx(0.3)  # touches both top pixels
    assert means.pixels((0.99, 0.99, 1.0, 1.0)) == (1, 1, 2, 2)  # never empty
    with pytest.raises(ValueError, match="2-D"):
        BoxMeans(np.zeros(3))
    with pytest.raises(ValueError, match="gray"):
        encode(np.zeros((2, 2)), "jet")
