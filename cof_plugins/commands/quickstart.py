"""``cof quickstart``: the whole method on the embedded default, on this machine, no downloads.

Every stage runs the same ``cof`` sub-command a user would type (printed before it runs), so
the quickstart doubles as a worked example: tiny model -> synthetic grounded data -> adaptive
CoF trajectories -> validation -> SFT through LLaMA-Factory -> merged checkpoint -> RL
(GRPO through verl on CPU, when that path is available) -> evaluation on a V*-layout set ->
HTML report.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from cof_plugins.assets import recipes_dir
from cof_plugins.testbed.tiny_model import TINY_BUDGET

FAMILY = "qwen2_5_vl"
PIXELS = f"--min-pixels {TINY_BUDGET.min_pixels} --max-pixels {TINY_BUDGET.max_pixels}"
RUNS = ("base", "sft", "rl")


@dataclass
class Stage:
    name: str
    argv: list[str]
    artefact: str
    seconds: float = 0.0
    code: int | None = None


@dataclass
class Plan:
    out: Path
    steps: int
    train_samples: int
    eval_samples: int
    stages: list[Stage] = field(default_factory=list)

    def path(self, *parts: str) -> str:
        return str(self.out.joinpath(*parts))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart",
        help="run the whole method on a tiny model and synthetic data (CPU, minutes)",
        description="Tiny VLM, synthetic grounded data, adaptive CoF trajectories, SFT through "
        "LLaMA-Factory, RL through verl on CPU when available, evaluation, HTML report.",
    )
    p.add_argument("--out", default="runs/quickstart", help="output folder (default: %(default)s)")
    p.add_argument("--steps", type=int, default=300, help="SFT optimiser steps")
    p.add_argument("--train-samples", type=int, default=200, help="synthetic training samples")
    p.add_argument("--eval-samples", type=int, default=16, help="synthetic evaluation samples")
    p.set_defaults(func=run)


def _cmd(template: str, **paths: str) -> list[str]:
    """argv from a command template whose {names} are paths (quoted, so spaces survive)."""
    return shlex.split(template.format(**{k: shlex.quote(v) for k, v in paths.items()}))


def build_plan(out: Path, steps: int, train_samples: int, eval_samples: int) -> Plan:
    plan = Plan(out, steps, train_samples, eval_samples)
    plan.stages = [*_data_stages(plan), *_sft_stages(plan), *_rl_stages(plan), *_eval_stages(plan)]
    return plan


def _data_stages(plan: Plan) -> list[Stage]:
    raw, sft, vstar = plan.path("data", "raw"), plan.path("data", "sft"), plan.path("data", "vstar")
    return [
        Stage(
            "tiny model",
            _cmd(f"tiny-model {{m}} --family {FAMILY} --size small", m=plan.path("model", "base")),
            plan.path("model", "base"),
        ),
        Stage(
            "synthetic data",
            _cmd(
                f"data scenes {{o}} -n {plan.train_samples} --sizes 224,448,672,1024 --seed 0",
                o=raw,
            ),
            f"{raw}/annotations.jsonl",
        ),
        # The tiny budget caps frames at 224 px: a target is "legible" from 8 frame pixels.
        Stage(
            "trajectories",
            _cmd(
                f"data synthesize --from {{a}} --out {{o}} --family {FAMILY} "
                f"{PIXELS} --legible-side 8",
                a=f"{raw}/annotations.jsonl",
                o=sft,
            ),
            f"{sft}/mix.txt",
        ),
        Stage(
            "validate",
            _cmd(f"data validate {{f}} --family {FAMILY} {PIXELS}", f=f"{sft}/train.json"),
            f"{sft}/train.json",
        ),
        Stage(
            "eval data",
            _cmd(
                f"data scenes {{o}} -n {plan.eval_samples} --sizes 224,672,1024 --seed 1 --vstar",
                o=vstar,
            ),
            f"{vstar}/test_questions.jsonl",
        ),
    ]


def _sft_stages(plan: Plan) -> list[Stage]:
    recipe = str(recipes_dir() / "sft" / "tiny_cpu_full.yaml")
    base, run, model = plan.path("model", "base"), plan.path("sft"), plan.path("model", "sft")
    return [
        Stage(
            "sft",
            _cmd(
                f"sft {{r}} model_name_or_path={{b}} dataset_dir=cof:{{d}} "
                f"output_dir={{o}} max_steps={plan.steps}",
                r=recipe,
                b=base,
                d=plan.path("data", "sft"),
                o=run,
            ),
            run,
        ),
        Stage(
            "export sft",
            _cmd("export --adapter {a} --base {b} --out {o}", a=run, b=base, o=model),
            model,
        ),
    ]


def _rl_stages(plan: Plan) -> list[Stage]:
    """GRPO through verl on CPU from the SFT checkpoint: 2 steps, 4 prompts x 4 rollouts."""
    rl_data, run, model = plan.path("data", "rl"), plan.path("rl"), plan.path("model", "rl")
    parquet = "data to-parquet --from {f} --out {o} --family " + FAMILY + " " + PIXELS
    return [
        Stage(
            "rl data",
            _cmd(parquet, f=plan.path("data", "sft", "train.json"), o=f"{rl_data}/train.parquet"),
            f"{rl_data}/train.parquet",
        ),
        Stage(
            "rl val data",
            _cmd(
                parquet,
                f=plan.path("data", "vstar", "annotations.jsonl"),
                o=f"{rl_data}/val.parquet",
            ),
            f"{rl_data}/val.parquet",
        ),
        Stage(
            "rl",
            _cmd(
                "rl tiny_cpu actor_rollout_ref.model.path={m} data.train_files={t} "
                "data.val_files={v} trainer.default_local_dir={o} trainer.logger=[console]",
                m=plan.path("model", "sft"),
                t=f"{rl_data}/train.parquet",
                v=f"{rl_data}/val.parquet",
                o=run,
            ),
            run,
        ),
        Stage(
            "export rl",
            _cmd(f"export --rl-checkpoint {{c}} --out {{o}} {PIXELS}", c=run, o=model),
            model,
        ),
    ]


def _eval_stages(plan: Plan) -> list[Stage]:
    data = plan.path("data", "vstar", "test_questions.jsonl")
    stages = [
        Stage(
            f"eval {name}",
            _cmd(
                f"eval --data {{d}} --model {{m}} --run-dir {{o}} --family "
                f"{FAMILY} {PIXELS} --max-new-tokens 160 --no-judge --no-progress",
                d=data,
                m=plan.path("model", name),
                o=plan.path("eval", name),
            ),
            plan.path("eval", name),
        )
        for name in RUNS
    ]
    runs = " ".join("{" + name + "}" for name in RUNS)
    report = _cmd(
        f"report {runs} -o {{o}}",
        o=plan.path("report"),
        **{name: plan.path("eval", name) for name in RUNS},
    )
    return [*stages, Stage("report", report, plan.path("report", "report.html"))]


def _run_stage(stage: Stage, index: int, total: int) -> int:
    from cof_plugins.cli import main

    print(f"\n[{index}/{total}] {stage.name}: cof {shlex.join(stage.argv)}", flush=True)
    start = time.perf_counter()
    try:
        stage.code = main(stage.argv)
    except SystemExit as exc:  # argparse and commands that exit
        stage.code = exc.code if isinstance(exc.code, int) else 1
    stage.seconds = time.perf_counter() - start
    return stage.code


def run(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    plan = build_plan(out, args.steps, args.train_samples, args.eval_samples)
    total = len(plan.stages)
    for i, stage in enumerate(plan.stages, 1):
        if _run_stage(stage, i, total) != 0:
            print(
                f"\nquickstart stopped: stage '{stage.name}' exited {stage.code}; rerun it "
                f"alone with: cof {shlex.join(stage.argv)}"
            )
            _write_summary(plan)
            return 1
    _write_summary(plan)
    return 0


def _write_summary(plan: Plan) -> None:
    rows = [
        {
            "stage": s.name,
            "command": "cof " + shlex.join(s.argv),
            "artefact": s.artefact,
            "seconds": round(s.seconds, 1),
            "exit": s.code,
        }
        for s in plan.stages
    ]
    (plan.out / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\nquickstart summary")
    for r in rows:
        state = "ok" if r["exit"] == 0 else ("not run" if r["exit"] is None else "FAILED")
        print(f"  {r['stage']:<15} {state:<8} {r['seconds']:>7.1f}s  {r['artefact']}")
    for name in RUNS:
        summary = plan.out / "eval" / name / "summary.json"
        if summary.is_file():
            data = json.loads(summary.read_text())
            overall = data.get("overall", data)
            print(
                f"  {name}: accuracy {overall.get('accuracy')}%, well-formed "
                f"{overall.get('format_ok')}%, zoom calls/sample {overall.get('zoom_calls')}"
            )
    print(f"\nopen first: {plan.path('report', 'report.html')}")
    print(
        f"then: {plan.path('data', 'sft', 'mix.txt')} (the trajectory mix), "
        f"{plan.path('sft')} (the SFT run), {plan.out / 'summary.json'}"
    )
