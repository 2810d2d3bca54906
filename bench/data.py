"""Benchmark the data engine: synthesis, validation and parquet export of multi-image samples.

    python bench/data.py [--n 24] [--sizes 224,448,1024] [--repeats 5] [--rows 200000]

Synthetic grounded samples (``testbed.synth``) at small resolutions, so most trajectories zoom
and carry two or three images. Each phase reports samples per second and two memory peaks:
Python allocations (tracemalloc) and the growth of the process's peak RSS (VmHWM, reset
through /proc/self/clear_refs where the kernel allows it), because PIL allocates outside
Python.

Then ``cof data validate`` on a large file (``--rows``, default 200,000: the synthesized rows
repeated with distinct ids, as a JSON list and as JSONL), headers only, each run in its own
process so its peak RSS is its own. The reference is the previous implementation's reading,
run the same way: the whole file read and parsed with ``json.loads``, then every row checked
(the same checks) into a list of findings. Both print rows/s and peak RSS; the ratio is
reference / streaming. Takes a few minutes at 200,000 rows on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

try:
    import cof_plugins  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cof_plugins.data.parquet import write_parquet
from cof_plugins.data.report import table
from cof_plugins.data.synthesize import SynthConfig, synthesize
from cof_plugins.data.validate import validate_rows
from cof_plugins.testbed.synth import iter_sizes, write_dataset


def _status_kib(key: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(fn: Callable[[], int]) -> tuple[int, float, float, float]:
    """(samples, seconds, tracemalloc peak MiB, peak RSS growth MiB) of one call."""
    reset = _reset_hwm()
    rss_before = _status_kib("VmRSS")
    tracemalloc.start()
    start = time.perf_counter()
    n = fn()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    growth = (_status_kib("VmHWM") - rss_before) / 1024 if reset else float("nan")
    return n, seconds, peak / 2**20, growth


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24, help="annotations to synthesize from")
    parser.add_argument("--sizes", default="224,448,1024", help="long sides to cycle through")
    parser.add_argument("--repeats", type=int, default=5, help="validation passes over the rows")
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the large file")
    args = parser.parse_args()
    import pandas  # noqa: F401  (one-time import cost is not export cost; pyarrow loads pandas)
    import pyarrow.parquet  # noqa: F401

    with tempfile.TemporaryDirectory(prefix="cof-bench-data-") as tmp:
        root = Path(tmp)
        ann = write_dataset(root / "src", args.n, list(iter_sizes(args.sizes)), seed=0,
                            progress=False)  # fmt: skip
        result: dict = {}

        def synth() -> int:
            result["r"] = synthesize(ann, root / "out", SynthConfig(), progress=False)
            return len(result["r"].rows)

        rows_out = []
        n, s, tm, rss = measure(synth)
        rows = result["r"].rows
        n_images = sum(len(r["images"]) for r in rows)
        rows_out.append(["synthesize", n, n_images, s, n / s, tm, rss])
        out = root / "out"
        for decode in (False, True):

            def check(decode: bool = decode) -> int:
                for _ in range(args.repeats):
                    assert validate_rows(rows, image_dir=out, decode=decode, cutoff_len=10**6) == []
                return len(rows) * args.repeats

            n, s, tm, rss = measure(check)
            name = "validate (decode)" if decode else "validate (headers)"
            rows_out.append([name, n, n_images * args.repeats, s, n / s, tm, rss])
        n, s, tm, rss = measure(lambda: write_parquet(rows, root / "rl.parquet", out)[0])
        rows_out.append(["to-parquet", n, n, s, n / s, tm, rss])
        print(result["r"].mix.table())
        print()
        headers = ["phase", "samples", "images", "seconds", "samples/s", "py peak MiB",
                   "RSS growth MiB"]  # fmt: skip
        print(table(headers, rows_out))
        print(f"\n{n_images / len(rows):.2f} images per sample; sizes {args.sizes}")
        if args.rows:
            print()
            print(large_file_table(rows, out, args.rows))
    return 0


# One `cof data validate` (or the reference) in a fresh process, reporting its own peak RSS.
CHILD = """
import contextlib, io, json, sys, time
from pathlib import Path
mode, path = sys.argv[1], sys.argv[2]
start = time.perf_counter()
if mode == "streaming":
    from cof_plugins.cli import main
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["data", "validate", path, "--show", "0"])
    n = None
else:  # the previous implementation: the whole file in memory, findings in a list
    from cof_plugins.data.validate import summary, validate_rows
    text = Path(path).read_text(encoding="utf-8")
    rows = json.loads(text) if text.lstrip().startswith("[") else [
        json.loads(line) for line in text.splitlines() if line.strip()]
    findings = validate_rows(rows, image_dir=Path(path).parent)
    summary(findings, len(rows))
    code = 1 if findings else 0
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
status = Path("/proc/self/status").read_text().splitlines()
peak = next(int(x.split()[1]) for x in status if x.startswith("VmHWM:")) / 1024
print(json.dumps({"seconds": seconds, "peak_mib": peak, "code": code}))
"""


def write_large(rows: list[dict], path: Path, n: int) -> int:
    """``n`` rows cycling over ``rows`` with distinct ids; a JSON list, or JSONL by suffix."""
    jsonl = path.suffix == ".jsonl"
    with open(path, "w", encoding="utf-8") as f:
        f.write("" if jsonl else "[\n")
        for k in range(n):
            row = rows[k % len(rows)]
            row = {**row, "meta": {**row["meta"], "id": f"{row['meta']['id']}-{k}"}}
            sep = "\n" if jsonl else (",\n" if k < n - 1 else "\n")
            f.write(json.dumps(row) + sep)
        f.write("" if jsonl else "]\n")
    return path.stat().st_size


def _child(mode: str, path: Path) -> dict:
    cmd = [sys.executable, "-c", CHILD, mode, str(path)]
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise RuntimeError(f"{mode} validation of {path} found problems: {done.stdout[-500:]}")
    return result


def large_file_table(rows: list[dict], out: Path, n: int) -> str:
    """`cof data validate` (streaming) against the whole-file reference on an n-row file."""
    table_rows = []
    for suffix in (".json", ".jsonl"):
        path = out / f"large{suffix}"
        size = write_large(rows, path, n)
        new, ref = _child("streaming", path), _child("reference", path)
        label = f"{n} rows, {'JSON list' if suffix == '.json' else 'JSONL'}, {size / 2**20:.0f} MiB"
        table_rows.append([label, "streaming", new["seconds"], n / new["seconds"], new["peak_mib"],
                           ""])  # fmt: skip
        rss, time_ratio = ref["peak_mib"] / new["peak_mib"], ref["seconds"] / new["seconds"]
        ratio = f"{rss:.1f}x RSS, {time_ratio:.2f}x time"
        table_rows.append([label, "reference", ref["seconds"], n / ref["seconds"],
                           ref["peak_mib"], ratio])  # fmt: skip
        path.unlink()
    headers = ["cof data validate (headers)", "reading", "seconds", "rows/s", "peak RSS MiB",
               "reference / streaming"]  # fmt: skip
    return table(headers, table_rows)


if __name__ == "__main__":
    sys.exit(main())
