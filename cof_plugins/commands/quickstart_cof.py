"""The CoF quickstart (``cof quickstart --method cof``, the default): tiny model -> synthetic
grounded data -> adaptive trajectories -> validation -> SFT through LLaMA-Factory -> merged
checkpoint -> GRPO through verl on CPU -> evaluation of base, SFT and RL models on a
V*-layout set -> HTML report with the adaptive rates split by legibility.

``CofSettings`` holds the tiny default, chosen so that the behaviour is learnt in the
quickstart's time and measured against the bar in ``THRESHOLDS`` (README, "What the quickstart
shows", has the figures; ``bench/quickstart_learning.py`` measures any other choice the same
way):

- scenes where half the targets are large (``--large-targets``): with a 224 px frame cap,
  legibility is a visible property, the target's size in the frame, not the file's size;
- the legibility threshold sits in the gap of that size distribution, so few targets are
  borderline;
- the SFT recipe trains the (random) vision tower and projector with the language model: with
  them frozen the random features separate legible from illegible frames (a linear probe
  does) but the language model never learns to read them, and answers directly everywhere;
- terse thinking (the decision is the reply's first word), zoom boxes on the 28 px
  vision-token grid (few distinct values to write) and one zoom at most;
- 1000 SFT steps: the zoom decision separates by legibility after about 300-600 steps;
- 48 evaluation questions, so that each group holds enough questions for a rate.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cof_plugins.assets import recipes_dir
from cof_plugins.commands.quickstart import Stage, command, run_stages, stage_rows
from cof_plugins.testbed.tiny_model import TINY_BUDGET

FAMILY = "qwen2_5_vl"
PIXELS = f"--min-pixels {TINY_BUDGET.min_pixels} --max-pixels {TINY_BUDGET.max_pixels}"
RL_METRICS = ("cof/tool_use/rate", "cof/tool_calls/mean", "cof/format_ok/mean", "cof/acc/mean")
# The bar the tiny default is held to: valid zooms on at least half of the illegible
# questions, direct answers on at least half of the legible ones. The summary says whether
# the fine-tuned models reach it (``bar_met``; README, "What the quickstart shows").
THRESHOLDS = {"zoom_illegible": 50.0, "direct_legible": 50.0}


@dataclass(frozen=True)
class CofSettings:
    """Every choice of the CoF quickstart; the defaults are the shipped tiny default."""

    size: str = "small"  # testbed.tiny_model.SIZES
    steps: int = 1000
    train_samples: int = 200
    train_sizes: str = "224,448,672,1024"
    eval_samples: int = 48
    eval_sizes: str = "224,672,1024"
    large_targets: float = 0.5  # share of scenes with a large target (training and eval)
    grid: bool = True  # `cof data scenes --grid`: 4:3 images, targets on a 3x3 grid
    legible_side: float = 13.0  # frame pixels; `cof data synthesize --legible-side`
    box_grid: int = 28  # `cof data synthesize --box-grid`: boxes on the vision-token grid
    thinking: str = "terse"  # `cof data synthesize --thinking`: the decision is the first word
    max_zooms: int = 1  # `cof data synthesize --max-zooms`
    max_new_tokens: int = 160
    recipe: str = "tiny_cpu_full"  # recipes/sft/<name>.yaml
    sft_overrides: tuple[str, ...] = ()  # extra key=value for `cof sft` (experiments)
    rl: bool = True
    models: tuple[str, ...] = ("base", "sft", "rl")  # evaluated; "rl" needs rl=True

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> CofSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"the cof quickstart takes no option {', '.join(unknown)}")
        settings = cls(**options)
        if "rl" in settings.models and not settings.rl:
            raise ValueError("models includes 'rl' but rl is off")
        return settings


@dataclass
class Plan:
    out: Path
    settings: CofSettings
    stages: list[Stage] = dataclasses.field(default_factory=list)

    def path(self, *parts: str) -> str:
        return str(self.out.joinpath(*parts))


def build_plan(out: Path, settings: CofSettings = CofSettings()) -> Plan:
    plan = Plan(out, settings)
    plan.stages = [*_data_stages(plan), *_sft_stages(plan)]
    if settings.rl:
        plan.stages += _rl_stages(plan)
    plan.stages += _eval_stages(plan)
    return plan


def _data_stages(plan: Plan) -> list[Stage]:
    s = plan.settings
    raw, sft, vstar = plan.path("data", "raw"), plan.path("data", "sft"), plan.path("data", "vstar")
    policy = plan.path("data", "vstar_policy")
    scenes = f"data scenes {{o}} --overwrite --large-targets {s.large_targets} " + (
        "--grid " if s.grid else ""
    )
    synth = f"data synthesize --from {{a}} --out {{o}} --family {FAMILY} {PIXELS} --overwrite "
    synth += f"--legible-side {s.legible_side:g} --box-grid {s.box_grid} "
    synth += f"--thinking {s.thinking} --max-zooms {s.max_zooms}"
    return [
        Stage(
            "tiny model",
            command(
                f"tiny-model {{m}} --family {FAMILY} --size {s.size} --overwrite",
                m=plan.path("model", "base"),
            ),
            plan.path("model", "base"),
        ),
        Stage(
            "synthetic data",
            command(scenes + f"-n {s.train_samples} --sizes {s.train_sizes} --seed 0", o=raw),
            f"{raw}/annotations.jsonl",
        ),
        Stage(
            "trajectories", command(synth, a=f"{raw}/annotations.jsonl", o=sft), f"{sft}/mix.txt"
        ),
        Stage(
            "validate",
            command(f"data validate {{f}} --family {FAMILY} {PIXELS}", f=f"{sft}/train.json"),
            f"{sft}/train.json",
        ),
        Stage(
            "eval data",
            command(
                scenes + f"-n {s.eval_samples} --sizes {s.eval_sizes} --seed 1 --vstar", o=vstar
            ),
            f"{vstar}/test_questions.jsonl",
        ),
        # The synthesizer's own verdict per eval question (meta.legible): the report splits
        # its rates by it, so data and evaluation agree on which targets are legible.
        Stage(
            "eval legibility",
            command(synth, a=f"{vstar}/annotations.jsonl", o=policy),
            f"{policy}/train.json",
        ),
    ]


def _sft_stages(plan: Plan) -> list[Stage]:
    s = plan.settings
    recipe = str(recipes_dir() / "sft" / f"{s.recipe}.yaml")
    base, run, model = plan.path("model", "base"), plan.path("sft"), plan.path("model", "sft")
    extra = " ".join(s.sft_overrides)
    return [
        Stage(
            "sft",
            command(
                f"sft {{r}} model_name_or_path={{b}} dataset_dir=cof:{{d}} "
                f"output_dir={{o}} max_steps={s.steps} {extra}",
                r=recipe,
                b=base,
                d=plan.path("data", "sft"),
                o=run,
            ),
            run,
        ),
        Stage(
            "export sft",
            command(
                "export --adapter {a} --base {b} --out {o} --overwrite", a=run, b=base, o=model
            ),
            model,
        ),
    ]


def _rl_stages(plan: Plan) -> list[Stage]:
    """GRPO through verl on CPU from the SFT checkpoint: 2 steps, 4 prompts x 4 rollouts.

    verl's file logger writes every step's metrics to ``rl_metrics.jsonl``, where the summary
    reads the tool-use rate of the model's own sampled rollouts.
    """
    rl_data, run, model = plan.path("data", "rl"), plan.path("rl"), plan.path("model", "rl")
    parquet = f"data to-parquet --from {{f}} --out {{o}} --family {FAMILY} {PIXELS} --overwrite"
    return [
        Stage(
            "rl data",
            command(
                parquet, f=plan.path("data", "sft", "train.json"), o=f"{rl_data}/train.parquet"
            ),
            f"{rl_data}/train.parquet",
        ),
        Stage(
            "rl val data",
            command(
                parquet,
                f=plan.path("data", "vstar", "annotations.jsonl"),
                o=f"{rl_data}/val.parquet",
            ),
            f"{rl_data}/val.parquet",
        ),
        Stage(
            "rl",
            command(
                "rl tiny_cpu actor_rollout_ref.model.path={m} data.train_files={t} "
                "data.val_files={v} trainer.default_local_dir={o} "
                "trainer.logger=[console,file]",
                m=plan.path("model", "sft"),
                t=f"{rl_data}/train.parquet",
                v=f"{rl_data}/val.parquet",
                o=run,
            ),
            run,
            env={"VERL_FILE_LOGGER_PATH": plan.path("rl_metrics.jsonl")},  # rl/ is not made yet
        ),
        Stage(
            "export rl",
            command(
                f"export --rl-checkpoint {{c}} --out {{o}} {PIXELS} --overwrite", c=run, o=model
            ),
            model,
        ),
    ]


def _eval_stages(plan: Plan) -> list[Stage]:
    s = plan.settings
    data = plan.path("data", "vstar", "test_questions.jsonl")
    stages = [
        Stage(
            f"eval {name}",
            command(
                f"eval --data {{d}} --model {{m}} --run-dir {{o}} --family {FAMILY} {PIXELS} "
                f"--max-new-tokens {s.max_new_tokens} --no-judge --no-progress",
                d=data,
                m=plan.path("model", name),
                o=plan.path("eval", name),
            ),
            plan.path("eval", name),
        )
        for name in s.models
    ]
    runs = " ".join("{" + name + "}" for name in s.models)
    report = command(
        f"report {runs} -o {{o}} --legibility {{p}}",
        o=plan.path("report"),
        p=plan.path("data", "vstar_policy", "train.json"),
        **{name: plan.path("eval", name) for name in s.models},
    )
    return [*stages, Stage("report", report, plan.path("report", "report.html"))]


# ---------------------------------------------------------------- the method


def run_cof(out: Path, options: dict[str, Any]) -> dict[str, Any]:
    """The ``cof`` quickstart method (see ``commands.quickstart`` for the contract)."""
    plan = build_plan(out, CofSettings.from_options(options))
    ok = run_stages(plan.stages)
    rates = _rates(out / "report" / "adaptive.json")
    rl = rl_metrics(out / "rl_metrics.jsonl")
    notes = [f"\nopen first: {plan.path('report', 'report.html')}"]
    if rates and not bar_met(rates, THRESHOLDS):
        notes.insert(0, "\n  the fine-tuned models do not reach every threshold above")
    if rl:
        steps = ", ".join(_step_line(m) for m in rl)
        notes.insert(0, f"\n  RL (model-sampled rollouts): {steps}")
    return {
        "method": "cof",
        "ok": ok,
        "settings": dataclasses.asdict(plan.settings),
        "stages": stage_rows(plan.stages),
        "rates": rates,
        "thresholds": THRESHOLDS,
        "bar_met": bar_met(rates, THRESHOLDS),
        "extra": {"rl_metrics": rl},
        "notes": notes,
    }


def bar_met(rates: dict[str, dict[str, Any]], thresholds: dict[str, float]) -> bool:
    """Every fine-tuned model (all but ``base``) reaches every threshold; False without rates."""
    tuned = [r for name, r in rates.items() if name != "base"]
    return bool(tuned) and all(
        (r.get(k) or 0.0) >= floor for r in tuned for k, floor in thresholds.items()
    )


def _rates(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))["runs"]


def rl_metrics(path: Path) -> list[dict[str, Any]]:
    """Per training step, the CoF metrics verl's file logger wrote (validation lines skipped)."""
    if not path.is_file():
        return []
    steps = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line) if line.strip() else {}
        data = entry.get("data", {})
        if any(k in data for k in RL_METRICS):
            steps.append(
                {"step": entry.get("step"), **{k: data[k] for k in RL_METRICS if k in data}}
            )
    return steps


def _step_line(metrics: dict[str, Any]) -> str:
    return (
        f"step {metrics['step']} tool-use rate {metrics.get('cof/tool_use/rate', 0):.2f}, "
        f"calls/rollout {metrics.get('cof/tool_calls/mean', 0):.2f}"
    )
