"""Seconds per verl GRPO step and peak memory on CPU: tiny Qwen2.5-VL, n=4 rollouts, batch 4.

    python bench/rl_cpu_step.py [--steps 3] [--scripted | --sampled] [--out DIR]

Runs ``python -m cof_plugins.verl.cpu.run tiny_cpu`` (verl's V1 trainer, CPU platform, hf
rollout) on synthetic data and prints one JSON line: mean/min seconds per step (step 1
includes warm-up and is reported apart), the actor worker's peak RSS as verl logs it, and
the peak summed RSS of the whole process tree (driver, Ray, workers, rollout server).
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


def run(root: Path, env: dict[str, str], steps: int, response_length: int) -> tuple[list, int]:
    args = [
        f"trainer.total_training_steps={steps}",
        "trainer.save_freq=-1",
        "trainer.test_freq=-1",
        "trainer.logger=[console,file]",
        f"data.max_response_length={response_length}",
    ]
    cmd = [sys.executable, "-m", "cof_plugins.verl.cpu.run", "tiny_cpu", *args]
    with open(root / "run.log", "w") as log:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=root, stdout=log, stderr=log)
        ps, peak = psutil.Process(proc.pid), 0
        while proc.poll() is None:
            peak = max(peak, tree_rss(ps))
            time.sleep(0.5)
    if proc.returncode:
        raise SystemExit(f"training failed ({proc.returncode}); see {root / 'run.log'}")
    return [json.loads(x)["data"] for x in (root / "m.jsonl").read_text().splitlines()], peak


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
    steps, peak = run(root, prepare(root, not args.sampled), args.steps, args.response_length)
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
        "wall_s": round(time.time() - started, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
