"""Per-sample frame pipeline of ``cof eval``: reduced decodes against plain decode + resize.

    python bench/frames.py [--sizes 1k,4k,8k] [--images photo,texture] [--repeats 3]

Inputs: one JPEG (quality 90) per size (1024x768, 3840x2160, 7680x4320) and kind: "photo"
has a natural image's 1/f spectrum plus sensor-like grain, "texture" is bench/zoom.py's
gratings and 1-2 pixel checkers (the worst case for any reduction). Three pipelines per
sample, each from the JPEG bytes to every frame the sample needs:

- sweep: the paper's sweep, 8 long sides (224 ... 3840), one frame each.
- native, default budget: one frame in [112^2, 3840^2] pixels (the release's evaluation).
- native, 1M budget: one frame of at most 1280*28*28 pixels (Qwen2.5-VL's processor default,
  what most harnesses use): the case where JPEG draft decoding pays most.

References, per frame, as the loop did before ``eval.frames`` (and as the release does):
decode the JPEG in full (``load_image``), resize the long side (sweep only) and make the frame
(``make_frame``), with LANCZOS ("ref lanczos": the release's filter, the ``paper`` profile)
or BICUBIC ("ref bicubic": the ``default`` profile's filter; like for like with "reduced").
Measured pipelines: "exact" (``paper``, or ``--exact-frames``: the same pixels as ref lanczos,
decode shared by the sweep) and "reduced" (the default: JPEG draft decode, an Image.reduce
pyramid and one resample per frame, bicubic, or bilinear for frames of 1.5M pixels or more:
the near-size resamples such as 3840x2160 -> 3836x2156 that dominate a 4K sweep).

Figures: CPU ms per sample (best of N, pipelines interleaved), the ratios, the lowest PSNR
over the sample's frames against the like-for-like reference (exact vs ref lanczos must be
inf; reduced vs ref bicubic), and peak RSS of the native pipelines above the process's
baseline, each measured in a fresh child process (Linux: VmHWM after resetting it through
/proc/self/clear_refs).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import subprocess
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
from cof_plugins.core.zoom import load_image
from cof_plugins.core.zoom_step import make_frame
from cof_plugins.eval.frames import FrameSpec, SampleImages, resize_long_side
from cof_plugins.eval.images import ImageRef
from cof_plugins.eval.loop import DEFAULT_SWEEP

SIZES = {"1k": (1024, 768), "4k": (3840, 2160), "8k": (7680, 4320)}
BUDGETS = {
    "sweep": (PixelBudget(112 * 112, 3840 * 3840), DEFAULT_SWEEP),
    "native": (PixelBudget(112 * 112, 3840 * 3840), (None,)),
    "native 1M": (PixelBudget(112 * 112, 1280 * 28 * 28), (None,)),
}
FAMILY = "qwen2_5_vl"


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """1/f-spectrum colour noise (natural images' statistics) plus +-4 grain."""
    rng = np.random.default_rng(seed)
    sw, sh = max(8, width // 4), max(8, height // 4)
    fy, fx = np.fft.fftfreq(sh)[:, None], np.fft.rfftfreq(sw)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    chans = []
    for _ in range(3):
        spectrum = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f
        plane = np.fft.irfft2(spectrum, s=(sh, sw))
        chans.append((plane - plane.mean()) / plane.std() * 40 + 128)
    small = Image.fromarray(np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8))
    grain = rng.integers(-4, 5, size=(height, width, 1))
    arr = np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), np.int16) + grain
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def texture(width: int, height: int) -> Image.Image:
    sys.path.insert(0, str(Path(__file__).parent))
    from zoom import synthetic

    return synthetic(width, height)


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def reference(data: bytes, budget: PixelBudget, resolutions, resample: str) -> dict:
    """The old loop's work per frame: a full decode, the sweep's resize, the frame."""
    profile = "paper" if resample == "lanczos" else "default"
    out = {}
    for res in resolutions:
        image = load_image(data)
        source = resize_long_side(image, res, resample) if res else image
        out[res] = make_frame(source, FAMILY, budget, profile)
    return out


def pipeline(path: str, budget: PixelBudget, resolutions, exact: bool) -> dict:
    """``eval.frames`` as the loop runs it: one SampleImages per sample, every frame."""
    spec = FrameSpec(FAMILY, budget, "paper" if exact else "default")
    images = SampleImages(ImageRef("path", path), spec, resolutions)
    return {res: images.frame(res) for res in resolutions}


def psnr(a: Image.Image, b: Image.Image) -> float:
    if a.size != b.size:
        return float("nan")
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mse = float(np.mean(diff * diff))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def best_ms(fns: dict, repeats: int) -> dict[str, float]:
    """Best-of-N CPU milliseconds of each function, runs interleaved (PIL is single-threaded)."""
    best = dict.fromkeys(fns, math.inf)
    for _ in range(repeats):
        for name, fn in fns.items():
            began = time.process_time()
            fn()
            best[name] = min(best[name], (time.process_time() - began) * 1000)
    return best


# ---------------------------------------------------------------- peak memory (child process)


def _child(path: str, case: str, kind: str) -> None:
    """Run one native pipeline once and print peak RSS growth (KiB) over the baseline."""
    budget, resolutions = BUDGETS[case]
    data = Path(path).read_bytes()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    base = _status_kib("VmRSS")
    if kind == "reference":
        frames = reference(data, budget, resolutions, "bicubic")
    else:
        frames = pipeline(path, budget, resolutions, exact=False)
    peak = _status_kib("VmHWM")
    frame = frames[resolutions[0]]
    frame_kib = frame.width * frame.height * 3 // 1024
    print(json.dumps({"peak_kib": peak - base, "frame_kib": frame_kib}))


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} (Linux only)")


def peak_memory(path: Path, case: str, kind: str) -> dict:
    cmd = [sys.executable, __file__, "--child", str(path), case, kind]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


# ---------------------------------------------------------------- main


def measure(path: Path, data: bytes, case: str, repeats: int) -> dict:
    budget, resolutions = BUDGETS[case]
    fns = {
        "ref lanczos": lambda: reference(data, budget, resolutions, "lanczos"),
        "ref bicubic": lambda: reference(data, budget, resolutions, "bicubic"),
        "exact": lambda: pipeline(str(path), budget, resolutions, exact=True),
        "reduced": lambda: pipeline(str(path), budget, resolutions, exact=False),
    }
    times = best_ms(fns, repeats)
    ref_l, ref_b = fns["ref lanczos"](), fns["ref bicubic"]()
    exact, reduced = fns["exact"](), fns["reduced"]()
    return {
        "times": times,
        "psnr_exact": min(psnr(exact[r], ref_l[r]) for r in resolutions),
        "psnr_reduced": min(psnr(reduced[r], ref_b[r]) for r in resolutions),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        _child(*argv[1:4])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1k,4k,8k")
    parser.add_argument("--images", default="photo,texture")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cof_bench_frames"))
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"frame pipeline per sample, CPU ms (best of {args.repeats}); x = reference / measured")
    print(f"{'input':<13} {'pipeline':<10} {'ref lanczos':>11} {'ref bicubic':>11} {'exact':>8} "
          f"{'reduced':>8} {'x vs lanczos':>12} {'x vs bicubic':>12} {'PSNR exact':>10} "
          f"{'PSNR reduced':>12}")  # fmt: skip
    memory = []
    for kind in args.images.split(","):
        for size in args.sizes.split(","):
            w, h = SIZES[size]
            path = args.workdir / f"{kind}_{size}.jpg"
            if not path.exists():
                path.write_bytes(jpeg(photo(w, h) if kind == "photo" else texture(w, h)))
            data = path.read_bytes()
            for case in BUDGETS:
                m = measure(path, data, case, args.repeats)
                t = m["times"]
                print(f"{kind + ' ' + size:<13} {case:<10} {t['ref lanczos']:>11.0f} "
                      f"{t['ref bicubic']:>11.0f} {t['exact']:>8.0f} {t['reduced']:>8.0f} "
                      f"{t['ref lanczos'] / t['reduced']:>11.1f}x "
                      f"{t['ref bicubic'] / t['reduced']:>11.1f}x "
                      f"{m['psnr_exact']:>10.1f} {m['psnr_reduced']:>12.1f}")  # fmt: skip
                if case != "sweep" and size != "1k" and kind == "photo":
                    ref = peak_memory(path, case, "reference")
                    red = peak_memory(path, case, "reduced")
                    memory.append((f"{kind} {size}", case, ref, red, w * h * 3 // 1024))
    print("\npeak RSS above baseline (MiB), one native frame, fresh process each; "
          "reference = full decode + bicubic frame")  # fmt: skip
    print(f"{'input':<13} {'pipeline':<10} {'reference':>10} {'reduced':>8} {'frame':>6} "
          f"{'original':>9}")  # fmt: skip
    for name, case, ref, red, original in memory:
        print(f"{name:<13} {case:<10} {ref['peak_kib'] / 1024:>10.1f} "
              f"{red['peak_kib'] / 1024:>8.1f} {ref['frame_kib'] / 1024:>6.1f} "
              f"{original / 1024:>9.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
