"""Frames from one shared decode: exact pixels under paper, >= 40 dB reduced ones by default,
one decode per input, JPEG draft decoding, crops always from the full-resolution pixels."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from eval_support import FakeBackend, answer, zoom_call
from PIL import Image

from cof_plugins.core.frame import PixelBudget
from cof_plugins.core.zoom import load_image
from cof_plugins.core.zoom_step import make_frame
from cof_plugins.eval import frames as frames_module
from cof_plugins.eval.benchmarks import Sample
from cof_plugins.eval.frames import FrameCache, FrameSpec, SampleImages, resize_long_side
from cof_plugins.eval.images import ImageRef
from cof_plugins.eval.loop import LoopConfig, WorkItem, run_loop

SWEEP = (224, 336, 672, 1024, 1920)
BUDGET = PixelBudget(112 * 112, 3840 * 3840)
SMALL = PixelBudget(112 * 112, 640 * 28 * 28)


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A textured image with a natural 1/f spectrum, fine grain and sharp edges."""
    rng = np.random.default_rng(seed)
    sw, sh = width // 4, height // 4
    fy, fx = np.fft.fftfreq(sh)[:, None], np.fft.rfftfreq(sw)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    planes = []
    for _ in range(3):
        plane = np.fft.irfft2((rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f,
                              s=(sh, sw))  # fmt: skip
        planes.append((plane - plane.mean()) / plane.std() * 40 + 128)
    small = Image.fromarray(np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8))
    arr = np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), np.int16)
    arr = arr + rng.integers(-4, 5, size=(height, width, 1))
    arr[height // 3 : height // 3 + 40, width // 5 : width // 2] = (250, 20, 20)  # a sign
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def texture(width: int, height: int) -> Image.Image:
    """The worst case for any reduction: fine gratings and 1-3 pixel checkers, plus grain."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = []
    for c in range(3):
        wave = np.sin(x / (9 + 5 * c)) * np.cos(y / (13 + 3 * c)) + np.sin((x + y) / 57)
        checker = ((x.astype(int) // (1 + c)) + (y.astype(int) // (1 + c))) % 2
        planes.append(128 + 45 * wave + 30 * (checker - 0.5) * (x > width / 2)
                      + rng.normal(0, 4, size=(height, width)))  # fmt: skip
    return Image.fromarray(np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory):
    path = tmp_path_factory.mktemp("frames") / "photo.jpg"
    photo(2400, 1600).save(path, format="JPEG", quality=90)
    return path


@pytest.fixture(scope="module")
def texture_jpeg(tmp_path_factory):
    path = tmp_path_factory.mktemp("frames") / "texture.jpg"
    texture(2400, 1600).save(path, format="JPEG", quality=90)
    return path


def psnr(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mse = float(np.mean(diff * diff))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def exact_frame(path, resolution, profile, budget=BUDGET):
    """What the loop computed per trajectory before eval.frames: full decode, two resizes."""
    from cof_plugins.core.profiles import get_profile

    image = load_image(path)
    if resolution:
        image = resize_long_side(image, resolution, get_profile(profile).frame_resample)
    return make_frame(image, "qwen2_5_vl", budget, profile)


def test_paper_frames_are_the_exact_pixels(big_jpeg):
    images = SampleImages(ImageRef("path", str(big_jpeg)), FrameSpec("qwen2_5_vl", BUDGET, "paper"),
                          SWEEP)  # fmt: skip
    for res in (*SWEEP, None):
        assert images.frame(res).tobytes() == exact_frame(big_jpeg, res, "paper").tobytes()


@pytest.mark.parametrize("image", ["big_jpeg", "texture_jpeg"])
@pytest.mark.parametrize("budget", [BUDGET, SMALL])
def test_reduced_frames_have_exact_sizes_and_40db(request, image, budget):
    path = request.getfixturevalue(image)
    spec = FrameSpec("qwen2_5_vl", budget, "default")
    sweep = (*SWEEP, 288)  # 288 is served by the 2400/8 level only at too small a gap
    images = SampleImages(ImageRef("path", str(path)), spec, sweep)
    for res in (*sweep, None):
        exact = exact_frame(path, res, "default", budget)
        reduced = images.frame(res)
        assert reduced.size == exact.size == images.frame_size(res)
        assert psnr(reduced, exact) >= 40.0, res


def test_reduced_sweep_reads_the_decode_only_where_no_level_serves(big_jpeg, tmp_path, monkeypatch):
    """The cost of a sweep is its resamples from the multi-megapixel decode: only frames too
    big for the first reduce level read it, and those near-size ones resample bilinearly."""
    resizes = []
    real = Image.Image.resize

    def recording(self, size, resample=None, *args, **kwargs):
        resizes.append((self.size, tuple(size), resample))
        return real(self, size, resample, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", recording)
    images = SampleImages(ImageRef("path", str(big_jpeg)), FrameSpec("qwen2_5_vl", BUDGET), SWEEP)
    for res in (*SWEEP, None):
        images.frame(res)
    bilinear, bicubic = Image.Resampling.BILINEAR, Image.Resampling.BICUBIC
    from_decode = [(out, f) for src, out, f in resizes if src == (2400, 1600)]
    # The 1920 frame (1932x1288) and the native one (2408x1596): no 1200x800 level serves them.
    assert from_decode == [(images.frame_size(1920), bilinear), (images.frame_size(None), bilinear)]
    # 1024 is made in the exact path's two steps from the first reduce level, with bicubic.
    assert ((1200, 800), images.source_size(1024), bicubic) in resizes
    assert all(f == bicubic for _src, out, f in resizes if out[0] * out[1] < 1536 * 1024)
    # A small input blown up to a big frame is no near-size resample: the profile's filter.
    small = tmp_path / "small.png"
    photo(640, 480).save(small)
    resizes.clear()
    SampleImages(ImageRef("path", str(small)), FrameSpec("qwen2_5_vl", BUDGET), [1920]).frame(1920)
    assert [(src, f) for src, _out, f in resizes] == [((640, 480), bicubic)]


def test_exact_frames_flag_overrides_the_default_profile(big_jpeg):
    spec = FrameSpec("qwen2_5_vl", BUDGET, "default", exact=True)
    images = SampleImages(ImageRef("path", str(big_jpeg)), spec, SWEEP)
    assert spec.mode == "exact"
    assert images.frame(336).tobytes() == exact_frame(big_jpeg, 336, "default").tobytes()


def test_one_reduced_decode_serves_the_sweep_and_uses_jpeg_draft(big_jpeg, monkeypatch):
    decodes = []
    real = frames_module.load_image

    def counting(source, **kw):
        image = real(source, **kw)
        decodes.append((kw.get("draft"), image.size))
        return image

    monkeypatch.setattr(frames_module, "load_image", counting)
    small_sweep = (224, 336, 672)
    spec = FrameSpec("qwen2_5_vl", BUDGET, "default")
    cache = FrameCache(spec, small_sweep)
    ref = ImageRef("path", str(big_jpeg))
    for _draw in range(3):
        for res in small_sweep:
            cache.images(ref).frame(res)
    # One decode for three resolutions and three draws, at a DCT scale below full size.
    ((draft, size),) = decodes
    assert draft is not None and size[0] < 2400 and size[0] >= 672
    # A zoom needs the full-resolution pixels: exactly one more decode, a full one.
    source = cache.images(ref).source(672)
    assert decodes[1] == (None, (2400, 1600)) and source.size == (672, 448)
    cache.images(ref).source(336)
    assert len(decodes) == 2


def test_png_and_cmyk_jpeg_inputs_decode_in_full_or_convert(tmp_path):
    png = tmp_path / "a.png"
    photo(800, 600).save(png)
    cmyk = tmp_path / "c.jpg"
    photo(800, 600).convert("CMYK").save(cmyk, format="JPEG", quality=90)
    for path in (png, cmyk):
        images = SampleImages(ImageRef("path", str(path)), FrameSpec("qwen2_5_vl", BUDGET), [224])
        frame = images.frame(224)
        assert frame.mode == "RGB" and psnr(frame, exact_frame(path, 224, "default")) >= 40


def test_unreadable_file_names_the_image(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ValueError, match=r"cannot read image .*bad\.jpg"):
        SampleImages(ImageRef("path", str(bad)), FrameSpec("qwen2_5_vl", BUDGET), [None])


def _zoom_then_answer(request, turn):
    return zoom_call([10, 10, 90, 70]) if turn == 0 else answer("A")


@pytest.mark.parametrize("resolution", [None, 672])
def test_crops_are_identical_in_both_modes(big_jpeg, resolution):
    """Crops come from the full decode (or the sweep's exact resize of it), never from the
    reduced decode, so reduced frames change no crop pixel."""
    sample = Sample(id="q", image=ImageRef("path", str(big_jpeg)), question="Q?", answer="A",
                    options=("red", "blue"))  # fmt: skip
    crops = {}
    for exact in (False, True):
        backend = FakeBackend(_zoom_then_answer)
        cfg = LoopConfig(max_pixels=SMALL.max_pixels, exact_frames=exact)  # frames < the file
        run_loop([WorkItem(sample, resolution)], backend, cfg, lambda t: None, progress=False,
                 resolutions=[resolution])  # fmt: skip
        second_turn = backend.calls[1][0]
        crops[exact] = second_turn.images[1].tobytes()
        frame = second_turn.images[0]
    assert crops[False] == crops[True]
    assert frame.size == exact_frame(big_jpeg, resolution, "default", SMALL).size
    # ... and they are the crop of the full-resolution file (resized by the sweep, exactly).
    from cof_plugins.core.zoom import zoom

    source = load_image(big_jpeg)
    source = resize_long_side(source, resolution) if resolution else source
    config = LoopConfig(max_pixels=SMALL.max_pixels).zoom_config()
    assert crops[False] == zoom(source, frame.size, [10, 10, 90, 70], config).crop.tobytes()


def test_jpeg_draft_is_ignored_for_other_formats(tmp_path):
    data = io.BytesIO()
    photo(640, 480).save(data, format="PNG")
    assert load_image(data.getvalue(), draft=(80, 60)).size == (640, 480)
    jpeg = io.BytesIO()
    photo(640, 480).save(jpeg, format="JPEG")
    assert load_image(jpeg.getvalue(), draft=(80, 60)).size == (80, 60)
    assert load_image(jpeg.getvalue(), draft=(100, 60)).size == (160, 120)
