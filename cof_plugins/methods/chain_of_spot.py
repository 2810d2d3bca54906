"""Chain-of-Spot end to end on this CPU: scenes -> rows -> SFT -> evaluation -> report.

``run_chain_of_spot(out, options)`` runs each stage as the ``cof`` command a user
would type (printed first), in this process:

1. ``cof tiny-model``: the "small" tiny Qwen2.5-VL (random weights, offline);
2. ``cof data scenes --grid`` twice: training scenes, and held-out scenes in V*'s layout
   (targets on a 3 x 3 grid of spots);
3. ``cof data chain-of-spot``: two-turn rows, the ROI grown from each scene's target box,
   written with the quickstart's protocol (``out/protocol.yaml``: the chosen protocol with
   the ROI rounded to ``decimals``, 1 by default, so the tiny model has few strings to write);
4. ``cof sft recipes/sft/chain_of_spot_tiny_cpu.yaml`` (full fine-tune through
   LLaMA-Factory), ``cof export``;
5. ``cof eval --method chain-of-spot`` for the base and the fine-tuned model on the held-out
   scenes (target boxes given, so the ROI's overlap is measured);
6. ``cof report``: rates side by side, questions drawn with ROI, target and crop.

It writes ``out/summary.json`` (stages with wall seconds and exit codes, the settings, wall
and CPU seconds in all, each model's evaluation summary, a fixed-box baseline) and returns
that summary. What the quickstart aims at: the fine-tuned model's ROI overlaps
the target on at least half of the held-out questions (``TARGET_ROI_OVERLAP``); the
baseline says how often one fixed box of the training ROIs' mean size at the image's centre
would (a model that learnt no localisation scores about that).
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from cof_plugins.assets import recipes_dir
from cof_plugins.commands.quickstart import Stage, command, run_stages, stage_rows, write_summary
from cof_plugins.testbed.tiny_model import TINY_BUDGET

METHOD = "chain-of-spot"
FAMILY = "qwen2_5_vl"
PIXELS = f"--min-pixels {TINY_BUDGET.min_pixels} --max-pixels {TINY_BUDGET.max_pixels}"
MODELS = ("base", "sft")
PROTOCOL_FILE = "protocol.yaml"  # under the quickstart's folder: ``protocol`` with ``decimals``
TARGET_ROI_OVERLAP = 0.5


@dataclass(frozen=True)
class CosQuickstartConfig:
    """The quickstart's knobs; the defaults are the measured setting (README)."""

    train_samples: int = 400
    eval_samples: int = 32
    sizes: str = "224,448"
    grid: bool = True  # `cof data scenes --grid`: targets on a 3x3 grid of spots
    steps: int = 600
    lr: float = 2e-3
    batch_size: int = 4
    protocol: str = "chain-of-spot"
    decimals: int = 1  # the ROI's decimals (PROTOCOL_FILE inherits ``protocol`` with them)
    margin: float = 0.5
    min_side: float = 0.25
    model_size: str = "small"
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.decimals, bool) or self.decimals not in range(1, 7):
            raise ValueError(
                f"chain-of-spot quickstart: decimals must be a whole number 1-6 (the ROI's "
                f"decimals), got {self.decimals!r}"
            )

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> CosQuickstartConfig:
        """From a mapping of field names (the quickstart registry's options); unknown keys
        are an error naming the valid ones."""
        options = dict(options or {})
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - valid)
        if unknown:
            raise ValueError(
                f"chain-of-spot quickstart: unknown option(s) {', '.join(unknown)}; valid: "
                f"{', '.join(sorted(valid))}"
            )
        return cls(**options)


def plan(out: Path, cfg: CosQuickstartConfig) -> list[Stage]:
    """Every stage as a ``cof`` argv."""
    model, data = out / "model", out / "data"
    protocol = out / PROTOCOL_FILE
    grid = " --grid" if cfg.grid else ""
    recipe = recipes_dir() / "sft" / "chain_of_spot_tiny_cpu.yaml"
    shape = f"--margin {cfg.margin} --min-side {cfg.min_side}"
    stages = [
        Stage(
            "tiny model",
            command(
                f"tiny-model {{m}} --family {FAMILY} --size {cfg.model_size} --seed {cfg.seed}",
                m=model / "base",
            ),
        ),
        Stage(
            "train scenes",
            command(
                f"data scenes {{d}} -n {cfg.train_samples} --sizes {cfg.sizes} --seed "
                f"{cfg.seed}{grid}",
                d=data / "scenes",
            ),
        ),
        Stage(
            "held-out scenes",
            command(
                f"data scenes {{d}} -n {cfg.eval_samples} --sizes "
                f"{cfg.sizes} --seed {cfg.seed + 1} --vstar{grid}",
                d=data / "heldout",
            ),
        ),
        Stage(
            "rows",
            command(
                f"data chain-of-spot --from {{a}} --out {{o}} --protocol {{p}} "
                f"--family {FAMILY} {PIXELS} {shape} --seed {cfg.seed} --overwrite",
                a=data / "scenes" / "annotations.jsonl",
                o=data / "rows",
                p=protocol,
            ),
        ),
        Stage(
            "sft",
            command(
                f"sft {{r}} model_name_or_path={{b}} dataset_dir=cof:{{d}} "
                f"output_dir={{o}} max_steps={cfg.steps} learning_rate={cfg.lr} "
                f"per_device_train_batch_size={cfg.batch_size}",
                r=recipe,
                b=model / "base",
                d=data / "rows",
                o=out / "sft",
            ),
        ),
        Stage(
            "export sft",
            command(
                "export --adapter {a} --base {b} --out {o} --overwrite",
                a=out / "sft",
                b=model / "base",
                o=model / "sft",
            ),
        ),
    ]
    for name in MODELS:
        stages.append(
            Stage(
                f"eval {name}",
                command(
                    f"eval --method {METHOD} --data {{d}} --boxes {{b}} --model {{m}} "
                    f"--run-dir {{o}} --protocol {{p}} --family {FAMILY} {PIXELS} "
                    "--no-progress",
                    p=protocol,
                    d=data / "heldout" / "test_questions.jsonl",
                    b=data / "heldout" / "annotations.jsonl",
                    m=model / name,
                    o=out / "eval" / name,
                ),
            )
        )
    runs = " ".join("{" + name + "}" for name in MODELS)
    report = command(
        f"report {runs} -o {{o}}",
        o=out / "report",
        **{name: out / "eval" / name for name in MODELS},
    )
    return [*stages, Stage("report", report)]


def run_chain_of_spot(
    out: str | Path, options: Mapping[str, Any] | CosQuickstartConfig | None = None
) -> dict[str, Any]:
    """Run every stage (stopping at the first failure) and return ``out/summary.json``."""
    cfg = (
        options
        if isinstance(options, CosQuickstartConfig)
        else (CosQuickstartConfig.from_options(options))
    )
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stages = plan(out, cfg)
    write_protocol(out / PROTOCOL_FILE, cfg)
    run_stages(stages, label="Chain-of-Spot quickstart")
    summary = summarise(out, stages, cfg)
    write_summary(out, summary)
    _print(summary, out)
    return summary


def write_protocol(path: Path, cfg: CosQuickstartConfig) -> None:
    """The quickstart's protocol: ``cfg.protocol`` (a preset or a file) with the ROI written
    to ``cfg.decimals`` decimals; checked by loading it before any stage runs."""
    from cof_plugins.core.atomic import write_text
    from cof_plugins.core.cos import load_cos_protocol
    from cof_plugins.core.protocol import is_protocol_file

    parent = str(Path(cfg.protocol).resolve()) if is_protocol_file(cfg.protocol) else cfg.protocol
    text = (
        "# Written by cof quickstart --method chain-of-spot: the protocol below with the ROI\n"
        f"# rounded to {cfg.decimals} decimal(s), so the tiny model has few box strings to learn.\n"
        f"name: {Path(cfg.protocol).stem}-quickstart\n"
        f"description: {cfg.protocol} with {cfg.decimals}-decimal ROIs (the quickstart's)\n"
        f"inherit: {json.dumps(parent)}\n"
        f"extra:\n  decimals: {cfg.decimals}\n"
    )
    write_text(path, text)
    load_cos_protocol(path)


def summarise(out: Path, stages: list[Stage], cfg: CosQuickstartConfig) -> dict[str, Any]:
    """What ``out/summary.json`` holds; the rates the report shows are in ``rates``."""
    evals = {}
    for name in MODELS:
        path = out / "eval" / name / "summary.json"
        if path.is_file():
            evals[name] = json.loads(path.read_text(encoding="utf-8"))
    sft = evals.get("sft", {})
    return {
        "method": METHOD,
        "ok": all(s.code == 0 for s in stages),
        "settings": asdict(cfg),
        "time": {
            "wall_s": round(sum(s.seconds for s in stages), 1),
            "cpu_s": round(sum(s.cpu_seconds for s in stages), 1),
            "cpus": os.cpu_count(),
        },
        "stages": stage_rows(stages),
        "eval": evals,
        "rates": {k: sft.get(k) for k in ("roi_overlap_rate", "accuracy", "fallback_rate")},
        "target_roi_overlap": TARGET_ROI_OVERLAP,
        "baseline_centre_box_overlap": centre_box_baseline(out / "data"),
        "report": str(out / "report" / "report.html"),
    }


def centre_box_baseline(data: Path) -> float | None:
    """Share of held-out targets one fixed centred ROI would overlap: the training ROIs'
    mean size (a fraction of the padded side), as a square at the image's centre."""
    from cof_plugins.core.cos import overlaps, padded_square
    from cof_plugins.data.rows import read_rows

    rois, held = data / "rows" / "rois.jsonl", data / "heldout" / "annotations.jsonl"
    if not (rois.is_file() and held.is_file()):
        return None
    fractions = [(r["roi"][2] - r["roi"][0]) / max(r["size"]) for r in read_rows(rois)]
    side = statistics.fmean(fractions)
    hits, rows = 0, read_rows(held)
    for row in rows:
        full, ox, oy = padded_square((row["width"], row["height"]))
        a, b = (0.5 - side / 2) * full, (0.5 + side / 2) * full
        hits += overlaps((a - ox, a - oy, b - ox, b - oy), tuple(row["bbox"]))
    return round(hits / len(rows), 4) if rows else None


def _print(summary: dict[str, Any], out: Path) -> None:
    print("\nChain-of-Spot quickstart summary")
    for s in summary["stages"]:
        state = {0: "ok", None: "not run"}.get(s["exit"], "FAILED")
        print(f"  {s['stage']:<16} {state:<8} {s['seconds']:>7.1f}s")
    for name, e in summary["eval"].items():
        print(
            f"  {name}: ROI overlaps target {_pct(e.get('roi_overlap_rate'))}, accuracy "
            f"{_pct(e.get('accuracy'))}, fallback {_pct(e.get('fallback_rate'))}"
        )
    print(f"  fixed centre box would overlap {_pct(summary['baseline_centre_box_overlap'])}")
    t = summary["time"]
    print(f"  {t['wall_s']} s wall, {t['cpu_s']} CPU-seconds\nopen: {summary['report']}")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def run_chain_of_spot_quickstart(out_dir: Path, options: dict[str, Any]) -> dict[str, Any]:
    """``cof quickstart --method chain-of-spot``: ``run_chain_of_spot`` with its summary in
    the registry's shape (``cof_plugins.commands.quickstart``: rates in percent per model,
    the bar on ROI overlap after SFT)."""
    summary = run_chain_of_spot(out_dir, options)
    names = {"roi_overlap_rate": "roi_overlap", "accuracy": "accuracy", "fallback_rate": "fallback"}
    rates = {
        model: {short: round(100 * ev[k], 1) for k, short in names.items() if ev.get(k) is not None}
        for model, ev in summary["eval"].items()
    }
    floor = 100 * TARGET_ROI_OVERLAP
    overlap = rates.get("sft", {}).get("roi_overlap")
    return {
        **summary,
        "rates": rates,
        "thresholds": {"roi_overlap": floor},
        "bar_met": overlap is not None and overlap >= floor,
    }
