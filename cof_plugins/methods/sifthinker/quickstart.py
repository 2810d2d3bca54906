"""SIFThinker end to end on this CPU: data -> SFT -> 2 GRPO steps -> evaluation -> report.

``run_sifthinker_quickstart(out)`` runs each stage as the ``cof`` command a user would
type (printed first), in this process, then writes ``out/summary.json`` (stages with
times and exit codes, the settings, and the evaluation rates of the base, SFT and RL
models) and ``out/report/report.{md,html}``:

1. ``cof tiny-model``: the "small" tiny Qwen2.5-VL with SIFThinker's tags in its tokenizer;
2. ``cof data sif`` twice: training scenes (SFT rows + RL parquet) and held-out scenes;
3. ``cof sft`` with ``recipes/sft/sifthinker_tiny_cpu.yaml`` (full fine-tune), ``cof export``;
4. ``cof rl sifthinker_tiny_cpu``: GRPO through verl on the CPU, single turn, the four
   SIFThinker rewards; ``cof export --rl-checkpoint``;
5. ``cof sif eval`` for base, SFT and RL on the held-out scenes; ``cof sif report``.

The tiny model learns the format (areas of valid boxes with depth, then the answer) more
than the task: the report shows the well-formed-areas rate the quickstart aims at (>= 50 % of
held-out questions after SFT and RL) beside answer accuracy, IoU and depth agreement.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cof_plugins.assets import recipes_dir
from cof_plugins.commands.quickstart import Stage, command, run_stages, stage_rows, write_summary
from cof_plugins.testbed.tiny_model import TINY_BUDGET

FAMILY = "qwen2_5_vl"
PIXELS = f"--min-pixels {TINY_BUDGET.min_pixels} --max-pixels {TINY_BUDGET.max_pixels}"
MODELS = ("base", "sft", "rl")
# What the quickstart aims at: well-formed areas on at least half of the held-out questions.
TARGET_AREAS_RATE = 0.5


@dataclass
class QuickstartConfig:
    train_samples: int = 200
    eval_samples: int = 24
    sft_steps: int = 800  # 150 learnt only the opening area (README, SIFThinker)
    sft_lr: float = 2e-3
    rl_steps: int = 2
    seed: int = 0
    max_new_tokens: int = 320
    # Two-decimal boxes and depths (the format allows three): one token per number.
    decimals: int = 2


def plan(out: Path, cfg: QuickstartConfig) -> list[Stage]:
    """Every stage as a ``cof`` argv."""
    model, data = out / "model", out / "data"
    sft_recipe = recipes_dir() / "sft" / "sifthinker_tiny_cpu.yaml"
    # The RL prompts show the depth map too (the release's are RGB only): a tiny model
    # trained on depth prompts writes nothing usable without it, and GRPO would see
    # all-zero rewards.
    data_flags = f"--decimals {cfg.decimals} --rl-depth-image {PIXELS}"
    rl_overrides = (
        f"trainer.total_training_steps={cfg.rl_steps} trainer.save_freq={cfg.rl_steps} "
        "trainer.logger=[console]"
    )
    stages = [
        Stage("tiny model", command(f"tiny-model {{m}} --size small --method sifthinker "
                                    f"--family {FAMILY}", m=model / "base")),
        Stage("train data", command(f"data sif {{d}} -n {cfg.train_samples} --seed {cfg.seed} "
                                    f"{data_flags}", d=data / "train")),
        Stage("held-out data", command(f"data sif {{d}} -n {cfg.eval_samples} --seed "
                                       f"{cfg.seed + 1} {data_flags}", d=data / "heldout")),
        Stage("sft", command(f"sft {{r}} model_name_or_path={{b}} dataset_dir=cof:{{d}} "
                             f"output_dir={{o}} max_steps={cfg.sft_steps} "
                             f"learning_rate={cfg.sft_lr}",
                             r=sft_recipe, b=model / "base", d=data / "train", o=out / "sft")),
        Stage("export sft", command("export --adapter {a} --base {b} --out {o}",
                                    a=out / "sft", b=model / "base", o=model / "sft")),
        Stage("rl", command("rl sifthinker_tiny_cpu actor_rollout_ref.model.path={m} "
                            "data.train_files={t} data.val_files={v} "
                            f"trainer.default_local_dir={{o}} trainer.rollout_data_dir={{r}} "
                            f"{rl_overrides}",
                            m=model / "sft", t=data / "train" / "rl.parquet",
                            v=data / "heldout" / "rl.parquet", o=out / "rl",
                            r=out / "rl_rollouts")),
        Stage("export rl", command(f"export --rl-checkpoint {{c}} --out {{o}} {PIXELS}",
                                   c=out / "rl", o=model / "rl")),
    ]  # fmt: skip
    for name in MODELS:
        argv = command(
            f"sif eval --model {{m}} --data {{d}} --run-dir {{o}} --max-new-tokens "
            f"{cfg.max_new_tokens} {PIXELS}",
            m=model / name,
            d=data / "heldout",
            o=out / "eval" / name,
        )
        stages.append(Stage(f"eval {name}", argv))
    runs = " ".join(f"{name}={{{name}}}" for name in MODELS)
    report = command(
        f"sif report {runs} --data {{d}} --summary {{s}} -o {{o}}",
        d=data / "heldout",
        s=out / "summary.json",
        o=out / "report",
        **{name: out / "eval" / name for name in MODELS},
    )
    return [*stages, Stage("report", report)]


def run_sifthinker_quickstart(out: str | Path, cfg: QuickstartConfig | None = None) -> int:
    """Run every stage; returns 0 when all succeeded. ``out/summary.json`` is always written."""
    cfg = cfg or QuickstartConfig()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stages = plan(out, cfg)

    def before(stage: Stage) -> None:
        if stage.name == "report":  # `cof sif report --summary` shows the stages so far
            write_summary(out, summarise(out, stages, cfg))

    ok = run_stages(stages, label="SIFThinker quickstart", before=before)
    summary = summarise(out, stages, cfg)
    write_summary(out, summary)
    _print(summary, out)
    return 0 if ok else 1


def summarise(out: Path, stages: list[Stage], cfg: QuickstartConfig) -> dict[str, Any]:
    """What ``out/summary.json`` holds: stages, settings, and each model's evaluation."""
    evals: dict[str, Any] = {}
    for name in MODELS:
        path = out / "eval" / name / "summary.json"
        if path.is_file():
            evals[name] = json.loads(path.read_text(encoding="utf-8"))
    return {
        "method": "sifthinker",
        "seconds": round(sum(s.seconds for s in stages), 1),
        "settings": asdict(cfg),
        "target_areas_well_formed": TARGET_AREAS_RATE,
        "stages": stage_rows(stages),
        "eval": evals,
        "rl_rollouts": rollout_summary(out / "rl_rollouts"),
    }


def rollout_summary(folder: Path) -> list[dict[str, Any]]:
    """Per GRPO step: rollouts, mean summed reward, share with well-formed areas (verl's
    ``trainer.rollout_data_dir`` dump: one JSONL per step with each output and score)."""
    from cof_plugins.core.sif import parse_sif
    from cof_plugins.methods.sifthinker.evaluate import areas_well_formed

    steps = []
    for path in sorted(
        folder.glob("*.jsonl"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0
    ):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
        if not rows:
            continue
        formed = [areas_well_formed(parse_sif(r["output"])) for r in rows]
        steps.append({
            "step": rows[0].get("step"),
            "rollouts": len(rows),
            "mean_score": round(sum(float(r["score"]) for r in rows) / len(rows), 4),
            "areas_well_formed": round(sum(formed) / len(rows), 4),
        })  # fmt: skip
    return steps


def _print(summary: dict, out: Path) -> None:
    print("\nSIFThinker quickstart summary")
    for s in summary["stages"]:
        state = {0: "ok", None: "not run"}.get(s["exit"], "FAILED")
        print(f"  {s['stage']:<14} {state:<8} {s['seconds']:>7.1f}s")
    for name, e in summary["eval"].items():
        print(f"  {name}: well-formed areas {100 * e['areas_well_formed']:.0f}%, whole format "
              f"{100 * e['well_formed']:.0f}%, answers {100 * e['answer_accuracy']:.0f}%, "
              f"IoU {e['iou']:.2f}, depth {e['depth']:.2f}")  # fmt: skip
    for step in summary["rl_rollouts"]:
        print(
            f"  GRPO step {step['step']}: {step['rollouts']} rollouts, mean reward "
            f"{step['mean_score']:.3f}, well-formed areas {100 * step['areas_well_formed']:.0f}%"
        )
    print(f"\nopen: {out / 'report' / 'report.html'}")


# What `cof quickstart --method sifthinker` takes from the common options.
_OPTIONS = {"steps": "sft_steps", "train_samples": "train_samples", "eval_samples": "eval_samples"}
_RATES = ("well_formed", "areas_well_formed", "answer_accuracy")


def run_sifthinker(out_dir: Path, options: dict[str, Any]) -> dict[str, Any]:
    """``cof quickstart --method sifthinker``: the quickstart above, its summary in the
    registry's shape (``cof_plugins.commands.quickstart``: rates in percent, the bar on
    well-formed areas after SFT and RL)."""
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ValueError(f"--method sifthinker takes no {', '.join(unknown)}")
    cfg = QuickstartConfig(**{_OPTIONS[k]: v for k, v in options.items()})
    code = run_sifthinker_quickstart(out_dir, cfg)
    summary = json.loads((Path(out_dir) / "summary.json").read_text(encoding="utf-8"))
    rates = {
        model: {name: round(100 * ev[name], 1) for name in _RATES if name in ev}
        for model, ev in summary["eval"].items()
    }
    floor = 100 * TARGET_AREAS_RATE
    tuned = [rates[m]["areas_well_formed"] for m in ("sft", "rl") if m in rates]
    return {
        **summary,
        "ok": code == 0,
        "rates": rates,
        "thresholds": {"areas_well_formed": floor},
        "bar_met": bool(tuned) and all(rate >= floor for rate in tuned),
    }
