"""Does the CoF quickstart's tiny default learn the adaptive behaviour, and at what cost?

Runs the quickstart's own stages (``commands.quickstart_cof.build_plan``: the same ``cof``
commands, in this process) for data -> SFT -> export -> evaluation of the SFT model -> report,
without the RL stages, under the given settings (default: the shipped ``CofSettings``), then
prints the adaptive rates split by legibility (``eval.adaptive``, as the report shows them)
and each stage's wall and CPU seconds. The reference for every rate is the data
synthesizer's own decision per eval question; the reference for time is the same stages in
the shipped quickstart (``cof quickstart`` prints them too).

    nice -n 5 python bench/quickstart_learning.py --out /tmp/qs-bench
    python bench/quickstart_learning.py --out /tmp/qs-a --steps 200 --large-targets 0.3 \\
        --legible-side 10 --sft learning_rate=3e-3 freeze_vision_tower=false

``--reuse`` keeps the data and model stages whose artefacts already exist in ``--out`` (when
only SFT or eval settings change); the printed figures always come from this run's eval.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path

from cof_plugins.commands.quickstart import run_stages, stage_rows
from cof_plugins.commands.quickstart_cof import CofSettings, build_plan

DATA_STAGES = ("tiny model", "synthetic data", "trajectories", "validate", "eval data")


def _flag(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"{text!r} is not true/false")
    return text.lower() in ("true", "1", "yes")


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, CofSettings]:
    defaults = CofSettings()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    for f in dataclasses.fields(CofSettings):
        if f.name in ("rl", "models", "sft_overrides"):
            continue
        kind = type(getattr(defaults, f.name))
        p.add_argument(
            "--" + f.name.replace("_", "-"), type=kind, default=getattr(defaults, f.name)
        )
    p.add_argument("--sft", nargs="*", default=[], metavar="KEY=VALUE", help="recipe overrides")
    p.add_argument("--base", action="store_true", help="evaluate the base model too")
    p.add_argument("--reuse", action="store_true", help="skip data stages already done")
    args = p.parse_args(argv)
    fields = {f.name for f in dataclasses.fields(CofSettings)}
    chosen = {k: v for k, v in vars(args).items() if k in fields}
    models = ("base", "sft") if args.base else ("sft",)
    settings = CofSettings(**chosen, sft_overrides=tuple(args.sft), rl=False, models=models)
    return args, settings


def main(argv: list[str] | None = None) -> int:
    args, settings = parse(argv)
    out = Path(args.out).resolve()
    plan = build_plan(out, settings)
    stages = plan.stages
    if args.reuse:
        stages = [s for s in stages if not (s.name in DATA_STAGES and Path(s.artefact).exists())]
        # The figures must come from this run's model: an earlier evaluation in --out (this
        # bench's own output) would otherwise be refused on resume (other weights).
        for stage in stages:
            if (
                stage.name in {f"eval {m}" for m in settings.models}
                and Path(stage.artefact).is_dir()
            ):
                print(f"--reuse: removing the earlier evaluation {stage.artefact}")
                shutil.rmtree(stage.artefact)
    ok = run_stages(stages)
    rows = stage_rows(stages)
    print("\nsettings:", json.dumps(dataclasses.asdict(settings)))
    print(f"{'stage':<16}{'wall s':>9}{'CPU s':>9}")
    for r in rows:
        print(f"{r['stage']:<16}{r['seconds']:>9.1f}{r['cpu_seconds']:>9.1f}")
    wall, cpu = sum(r["seconds"] for r in rows), sum(r["cpu_seconds"] for r in rows)
    print(f"{'total':<16}{wall:>9.1f}{cpu:>9.1f}   (CPU/wall {cpu / max(wall, 1e-9):.2f})")
    adaptive = out / "report" / "adaptive.json"
    if not ok or not adaptive.is_file():
        print("no rates: a stage failed")
        return 1
    table = json.loads(adaptive.read_text())["runs"]
    for model, rates in table.items():
        print(f"\n{model}: " + ", ".join(f"{k} {v}" for k, v in rates.items()))
    result = {"settings": dataclasses.asdict(settings), "stages": rows, "rates": table}
    (out / "bench.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
