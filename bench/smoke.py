"""Seconds to smoke recipes on this CPU: per recipe, in all, and what the shared cluster saves.

    python bench/smoke.py [RECIPE ...] [--work DIR] [--separate]

Runs ``cof smoke`` (every shipped recipe by default: SFT in one process, the RL recipes on one
shared Ray cluster, tiny models and synthetic data built once in ``--work``) and prints one
JSON line: seconds per recipe, the total, the CPU seconds the whole process tree used (Ray's
workers included, sampled every 0.2 s), and the machine's load average during the run.
Wall time on a shared machine moves with its load; CPU seconds / cores is what the run would
need at the least on that many idle cores. ``--separate`` also runs each RL recipe as its own
``cof rl RECIPE --smoke`` process (a Ray cluster and a driver each: what CI would do without
the shared cluster) and prints the ratio of the two RL totals; both reuse the same work folder,
so neither pays for building models or data.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil


def _tree_cpu(root: psutil.Process, seen: dict[int, float]) -> None:
    """Record the CPU seconds of every process in the tree (last value seen per pid)."""
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            seen[proc.pid] = times.user + times.system


def cof(*args: str, log: Path, work: Path, cpu: dict[int, float]) -> float:
    """Run ``cof ARGS``; return its wall seconds and add its tree's CPU seconds to ``cpu``."""
    started = time.perf_counter()
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "COF_SMOKE_WORK": str(work)}
    with open(log, "a") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cof_plugins.cli", *args], env=env,
                                stdout=out, stderr=out)  # fmt: skip
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            _tree_cpu(root, cpu)
            time.sleep(0.2)
    if proc.returncode:
        raise SystemExit(f"cof {' '.join(args)} failed ({proc.returncode}); see {log}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", help="sft/NAME or rl/NAME (default: all)")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--separate", action="store_true", help="also one process per RL recipe")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="cof_smoke_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    report, log = work / "report.json", work / "bench.log"
    load_before, cpu = os.getloadavg()[0], {}
    wall = cof("smoke", "--report", str(report), *args.recipes, log=log, work=work, cpu=cpu)
    entries = json.loads(report.read_text())["recipes"]
    rl = [e for e in entries if e["kind"] == "rl"]
    out = {
        "recipes": {e["recipe"]: e["seconds"] for e in entries},
        "all_ok": all(e["ok"] for e in entries),
        "sft_seconds": round(sum(e["seconds"] for e in entries if e["kind"] == "sft"), 1),
        "rl_seconds_shared_cluster": round(sum(e["seconds"] for e in rl), 1),
        "wall_seconds": round(wall, 1),
        "cpu_seconds_process_tree": round(sum(cpu.values()), 1),
        "cpus": os.cpu_count(),
    }
    if args.separate and rl:
        alone = {
            e["recipe"]: round(cof("rl", "--smoke", e["recipe"][3:], log=log, work=work, cpu={}), 1)
            for e in rl
        }
        out["rl_seconds_one_process_each"] = alone
        out["rl_shared_over_separate"] = round(
            out["rl_seconds_shared_cluster"] / sum(alone.values()), 2
        )
    out["load_average_before_after"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
