"""Zoom speed against the Adaptive-CoF release's own work, per call and per sample.

    python bench/zoom.py [--sizes 1k,4k,8k] [--repeats 5] [--zooms 3]

Both parts time the same unit of work on both sides, on one synthetic textured image per
size (1024x768, 3840x2160, 7680x4320), at three boxes (small, medium, large):

(a) One zoom call, given the frame. The release (its verl tool and its evaluation script)
    validates the box, enlarges it 1.5x, clips and int()s the edges, crops the frame,
    doubles the crop's size, runs qwen-vl-utils' smart_resize (factor 28, min 112^2, max
    5120*28*28) and resizes once with LANCZOS, then converts to RGB. This package runs
    ``core.zoom_step.run_call``: under ``paper`` the same work; under ``default`` one bicubic
    resize that reads the box from the full-resolution original (``resize(box=...)``).
(b) One evaluation sample: decode the JPEG, make the frame, run k zooms. The release:
    ``Image.open(...).convert("RGB")``, a LANCZOS resize into [112^2, 3840^2], k crops of
    the frame each resized as in (a) (crop cap 3840^2). This package: ``load_image``,
    ``make_frame`` and k ``run_call``, under each profile.

x = release time / this package's time (above 1: faster). PSNR compares pixels with the
release's: ``paper`` must be identical (inf); ``default`` differs on purpose (bicubic frames,
crops from the original), and the PSNR says by how much. Times are CPU time of this
process, best of N runs with the implementations interleaved, so a busy machine barely
moves them.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

try:
    import cof_plugins  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cof_plugins.core.frame import PixelBudget
from cof_plugins.core.parser import ZOOM_TOOL, call_from_arguments
from cof_plugins.core.zoom import load_image
from cof_plugins.core.zoom_step import StepConfig, make_frame, run_call

SIZES = {"1k": (1024, 768), "4k": (3840, 2160), "8k": (7680, 4320)}
# (centre x, centre y, width, height) as fractions of the frame: small, medium, large.
BOXES = ((0.31, 0.42, 0.03, 0.04), (0.62, 0.25, 0.12, 0.10), (0.45, 0.55, 0.35, 0.25))
LANCZOS = Image.Resampling.LANCZOS
RL_CAP, EVAL_BUDGET = 5120 * 28 * 28, PixelBudget(112 * 112, 3840 * 3840)


# ---------------------------------------------------------------- the release's work


def release_smart_resize(height, width, factor=28, min_pixels=112 * 112, max_pixels=RL_CAP):
    """qwen-vl-utils' smart_resize, as the release calls it."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError("aspect ratio above 200")
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h, w = (
            math.floor(height / beta / factor) * factor,
            math.floor(width / beta / factor) * factor,
        )
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h, w = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return h, w


def release_zoom(frame: Image.Image, box, max_pixels: int = RL_CAP) -> Image.Image:
    """The release's per-call work given the frame: validate, enlarge, int(), crop, resize."""
    W, H = frame.size
    x0, y0, x1, y1 = box
    assert 0 <= x0 < W and 0 <= y0 < H and 0 < x1 <= W and 0 < y1 <= H and x1 > x0 and y1 > y0
    cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * 1.5, (y1 - y0) * 1.5
    edges = [max(0, cx - bw / 2), max(0, cy - bh / 2), min(W, cx + bw / 2), min(H, cy + bh / 2)]
    crop = frame.crop([int(v) for v in edges])
    h, w = release_smart_resize(crop.height * 2, crop.width * 2, max_pixels=max_pixels)
    return crop.resize((w, h), LANCZOS).convert("RGB").copy()


def release_sample(jpeg: bytes, k: int) -> tuple[Image.Image, list[Image.Image]]:
    """The release's evaluation of one sample: decode, LANCZOS frame, k zooms of the frame."""
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")
    h, w = release_smart_resize(image.height, image.width, max_pixels=EVAL_BUDGET.max_pixels)
    frame = image.resize((w, h), LANCZOS)
    return frame, [release_zoom(frame, b, EVAL_BUDGET.max_pixels) for b in boxes(frame.size)[:k]]


# ---------------------------------------------------------------- this package


def step(profile: str, stage: str) -> StepConfig:
    caps = {} if stage == "rl" else {"max_pixels": EVAL_BUDGET.max_pixels}
    return StepConfig.for_stage(profile, stage, family="qwen2_5_vl", suffix="", zoom=caps)


def our_zoom(frame: Image.Image, original: Image.Image, box, config: StepConfig) -> Image.Image:
    call = call_from_arguments(ZOOM_TOOL, {"bbox_2d": list(box)})
    return run_call(call, frame, original, config).image


def our_sample(jpeg: bytes, k: int, profile: str) -> tuple[Image.Image, list[Image.Image]]:
    image = load_image(jpeg)
    frame = make_frame(image, "qwen2_5_vl", EVAL_BUDGET, profile)
    config = step(profile, "eval")
    return frame, [our_zoom(frame, image, b, config) for b in boxes(frame.size)[:k]]


# ---------------------------------------------------------------- helpers


def synthetic(width: int, height: int, seed: int = 0) -> Image.Image:
    """A deterministic textured RGB image (gratings, pixel checkers, noise) from one tile."""
    rng = np.random.default_rng(seed)
    th, tw = 701, 997
    y, x = np.mgrid[0:th, 0:tw].astype(np.float32)
    channels = []
    for c in range(3):
        wave = np.sin(x / (9 + 5 * c)) * np.cos(y / (13 + 3 * c)) + np.sin((x + y) / 57)
        checker = ((x.astype(int) // (1 + c)) + (y.astype(int) // (1 + c))) % 2
        value = 128 + 45 * wave + 30 * (checker - 0.5) * (x > tw / 2)
        channels.append(value + rng.normal(0, 4, size=(th, tw)))
    tile = np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)
    reps = (math.ceil(height / th), math.ceil(width / tw), 1)
    return Image.fromarray(np.tile(tile, reps)[:height, :width])


def boxes(frame: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    fw, fh = frame
    return [
        (round((cx - w / 2) * fw), round((cy - h / 2) * fh),
         round((cx + w / 2) * fw), round((cy + h / 2) * fh))
        for cx, cy, w, h in BOXES
    ]  # fmt: skip


def psnr(a: Image.Image, b: Image.Image) -> float:
    if a.size != b.size:
        return float("nan")
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mse = float(np.mean(diff * diff))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def best_ms(fns: dict, repeats: int, warm: bool = True) -> dict[str, float]:
    """Best-of-N CPU milliseconds of each function, runs interleaved.

    CPU time of this process (PIL's resampling and decoding are single-threaded), so other
    processes on a shared machine barely move it; the best run is the work itself.
    """
    if warm:
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.process_time()
            fn()
            times[name].append((time.process_time() - start) * 1000)
    return {name: min(t) for name, t in times.items()}


def fmt_db(values: list[float]) -> str:
    """The worst PSNR; "*" when some crop came out a different size (no PSNR possible)."""
    sized = [v for v in values if not math.isnan(v)]
    mark = "*" if len(sized) < len(values) else ""
    if not sized:
        return "size*"
    worst = min(sized)
    return ("inf" if worst == math.inf else f"{worst:.1f}") + mark


# ---------------------------------------------------------------- the two parts


def per_call(name: str, repeats: int) -> dict:
    original = synthetic(*SIZES[name])
    frame = make_frame(original, "qwen2_5_vl", EVAL_BUDGET, "paper")  # the release's frame
    row = {"name": name, "frame": frame.size, "release": 0.0, "paper": 0.0, "default": 0.0}
    row.update(psnr_paper=[], psnr_default=[])
    configs = {profile: step(profile, "rl") for profile in ("paper", "default")}
    for box in boxes(frame.size):
        ref = release_zoom(frame, box)
        fns = {"release": lambda b=box: release_zoom(frame, b)}
        for profile, config in configs.items():
            row[f"psnr_{profile}"].append(psnr(our_zoom(frame, original, box, config), ref))
            fns[profile] = lambda b=box, c=config: our_zoom(frame, original, b, c)
        for key, ms in best_ms(fns, repeats).items():
            row[key] += ms
    return row


def per_sample(name: str, repeats: int, k: int) -> dict:
    buffer = io.BytesIO()
    synthetic(*SIZES[name]).save(buffer, format="JPEG", quality=95)
    jpeg = buffer.getvalue()
    ref_frame, ref_crops = release_sample(jpeg, k)  # also the warm-up
    row = {"name": name, "jpeg_kib": len(jpeg) // 1024}
    for profile in ("paper", "default"):
        frame, crops = our_sample(jpeg, k, profile)
        row[f"frame_{profile}"] = psnr(frame, ref_frame)
        row[f"crops_{profile}"] = [psnr(c, r) for c, r in zip(crops, ref_crops, strict=True)]
    fns = {"release": lambda: release_sample(jpeg, k)}
    fns.update({p: (lambda p=p: our_sample(jpeg, k, p)) for p in ("paper", "default")})
    row.update(best_ms(fns, repeats, warm=False))
    return row


def print_calls(rows: list[dict]) -> None:
    print("(a) one zoom call given the frame: CPU ms summed over 3 boxes (crop cap 5120*28*28)")
    head = (f"{'size':<4} {'frame':>10} | {'release':>8} {'paper':>7} {'default':>8} | "
            f"{'x paper':>7} {'x default':>9} | {'PSNR paper':>10} "
            f"{'PSNR default':>12}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['name']:<4} {'x'.join(map(str, r['frame'])):>10} | {r['release']:8.2f} "
            f"{r['paper']:7.2f} {r['default']:8.2f} | {r['release'] / r['paper']:6.2f}x "
            f"{r['release'] / r['default']:8.2f}x | {fmt_db(r['psnr_paper']):>8} dB "
            f"{fmt_db(r['psnr_default']):>10} dB"
        )


def print_samples(rows: list[dict], k: int) -> None:
    print(f"\n(b) one evaluation sample, CPU ms: decode JPEG, frame in [112^2, 3840^2], {k} zooms")
    head = (f"{'size':<4} {'JPEG KiB':>8} | {'release':>8} {'paper':>8} {'default':>8} | "
            f"{'x paper':>7} {'x default':>9} | {'frame dB':>8} {'crops dB':>8}  "
            "(PSNR: default vs release)")  # fmt: skip
    print(head)
    print("-" * len(head))
    for r in rows:
        same = r["frame_paper"] == math.inf and all(v == math.inf for v in r["crops_paper"])
        print(
            f"{r['name']:<4} {r['jpeg_kib']:8d} | {r['release']:8.1f} {r['paper']:8.1f} "
            f"{r['default']:8.1f} | {r['release'] / r['paper']:6.2f}x "
            f"{r['release'] / r['default']:8.2f}x | {r['frame_default']:8.1f} "
            f"{fmt_db(r['crops_default']):>8}  (paper: {'identical' if same else 'DIFFERS'})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1k,4k,8k", help="comma list of " + ",".join(SIZES))
    parser.add_argument("--repeats", type=int, default=4, help="timed runs per measurement")
    parser.add_argument("--zooms", type=int, default=3, choices=(1, 2, 3), help="k per sample")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.sizes.split(",")]
    start = time.perf_counter()
    # Fewer runs at 8K: a sample there takes seconds.
    reps = {n: max(1, min(args.repeats, 2) if n == "8k" else args.repeats) for n in names}
    print_calls([per_call(n, reps[n]) for n in names])
    print_samples([per_sample(n, reps[n], args.zooms) for n in names], args.zooms)
    print("x = release / this package; PSNR worst box; paper must read inf and 'identical';")
    print("* some default crop came out another size than the release's (edges snapped out)")
    print(f"\ntotal {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
