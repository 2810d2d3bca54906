"""Seconds per verl GRPO step and peak memory on CPU: tiny Qwen2.5-VL, n=4 rollouts, batch 4.

    python bench/rl_cpu_step.py [--steps 3] [--scripted | --sampled] [--out DIR]

Runs ``cof rl tiny_cpu`` (verl's V1 trainer, CPU platform, hf rollout) on synthetic data and
prints one JSON line: mean/min seconds per step (step 1 includes warm-up and is reported
apart), where the start-up goes (``startup_phases_s``: seconds from one log marker to the
next, see ``MARKERS``), the actor worker's peak RSS as verl logs it, and the peak summed RSS
of the whole process tree (driver, Ray, workers, rollout server). tiny_cpu saves a checkpoint
at step 2 and at the last step (``trainer.save_freq: 2``); those seconds are in the steps.
``--scripted`` (default) replays tool-calling turns so that rollouts zoom; ``--sampled``
lets the random model generate (no tool calls, all rewards 0).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

SCRIPT = {
    "first_turn": [
        '<think>Zoom in.</think> <tool_call>{"name": "image_zoom_in_tool", '
        '"arguments": {"bbox_2d": [4, 4, 60, 60]}}</tool_call>',
        "<think>Visible.</think> <answer>A</answer>",
        "<think>Visible.</think> <answer>D</answer>",
    ],
    "after_zoom": ["<think>Clear now.</think> <answer>B</answer>"],
}


def _cof(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cof_plugins.cli", *args], check=True)


def prepare(root: Path, scripted: bool) -> dict[str, str]:
    _cof("tiny-model", str(root / "tiny"))
    _cof("data", "scenes", "-n", "16", "--sizes", "224,448", str(root / "synth"))
    (root / "data" / "rl").mkdir(parents=True)
    train = root / "data" / "rl" / "train.parquet"
    _cof(
        "data",
        "to-parquet",
        "--from",
        str(root / "synth" / "annotations.jsonl"),
        "--out",
        str(train),
    )
    (root / "data" / "rl" / "val.parquet").write_bytes(train.read_bytes())
    env = {
        "COF_RL_MODEL": str(root / "tiny"),
        "COF_DATA_DIR": str(root / "data"),
        "COF_CKPT_DIR": str(root / "ckpt"),
        "VERL_FILE_LOGGER_PATH": str(root / "m.jsonl"),
    }
    if scripted:
        (root / "script.json").write_text(json.dumps(SCRIPT))
        env["COF_HF_ROLLOUT_SCRIPT"] = str(root / "script.json")
    return env


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


# The first log line of each start-up phase, in order (cof rl, Ray, verl's V1 trainer).
MARKERS = (
    ("driver", "ray init kwargs"),  # cof rl: imports, one compose, checks
    ("ray_start", "Started a local Ray instance"),
    ("task_runner", "(TaskRunnerV1 pid="),  # its process started, verl imported there
    ("workers", "all initialize finished"),  # actor/ref FSDP, rollout server, managers
    ("first_step", "step:1 "),  # includes agent-loop and reward workers started lazily
)


def _watch(proc: subprocess.Popen, log, started: float, seen: dict[str, float]) -> None:
    """Copy the run's output to ``log``, noting when each marker first appears."""
    for line in proc.stdout:
        log.write(line)
        for name, marker in MARKERS:
            if name not in seen and marker in line:
                seen[name] = time.perf_counter() - started


def phases(seen: dict[str, float], total: float) -> dict[str, float]:
    """Seconds spent in each phase: from the previous marker to this one; then to exit."""
    out, last = {}, 0.0
    for name, _ in MARKERS:
        if name in seen:
            out[name] = round(seen[name] - last, 1)
            last = seen[name]
    out["rest_and_shutdown"] = round(total - last, 1)
    return out


def run(root: Path, env: dict[str, str], steps: int, response_length: int) -> tuple:
    args = [
        f"trainer.total_training_steps={steps}",
        "trainer.test_freq=-1",
        "trainer.logger=[console,file]",
        f"data.max_response_length={response_length}",
    ]
    cmd = [sys.executable, "-m", "cof_plugins.cli", "rl", "tiny_cpu", *args]
    seen: dict[str, float] = {}
    started = time.perf_counter()
    with open(root / "run.log", "w") as log:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=root, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        reader = threading.Thread(target=_watch, args=(proc, log, started, seen), daemon=True)
        reader.start()
        ps, peak = psutil.Process(proc.pid), 0
        while proc.poll() is None:
            peak = max(peak, tree_rss(ps))
            time.sleep(0.5)
        reader.join()
    if proc.returncode:
        raise SystemExit(f"training failed ({proc.returncode}); see {root / 'run.log'}")
    metrics = [json.loads(x)["data"] for x in (root / "m.jsonl").read_text().splitlines()]
    return metrics, peak, phases(seen, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--sampled", action="store_true", help="let the random model generate")
    parser.add_argument("--response-length", type=int, default=384)
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temp dir)")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="rl_cpu_step_"))
    root.mkdir(parents=True, exist_ok=True)
    started = time.time()
    steps, peak, startup = run(
        root, prepare(root, not args.sampled), args.steps, args.response_length
    )
    later = [s["timing_s/step"] for s in steps[1:]] or [steps[0]["timing_s/step"]]

    def mean(key: str) -> float:
        return round(sum(s[key] for s in steps) / len(steps), 2)

    print(json.dumps({
        "rollouts_n": 4, "batch": 4, "steps": len(steps), "scripted": not args.sampled,
        "first_step_s": round(steps[0]["timing_s/step"], 2),
        "step_s_mean_after_first": round(sum(later) / len(later), 2),
        "gen_s_mean": mean("timing_s/gen"),
        "update_actor_s_mean": mean("timing_s/update_actor"),
        "actor_worker_peak_rss_gb": max(s["actor/perf/max_memory_allocated_gb"] for s in steps),
        "process_tree_peak_rss_gb": round(peak / 2**30, 3),
        "startup_phases_s": startup,
        "load_average_1min": round(os.getloadavg()[0], 1),
        "wall_s": round(time.time() - started, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
