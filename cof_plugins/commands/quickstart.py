"""``cof quickstart [--method NAME]``: a method end to end on the embedded default, on this
machine, no downloads.

Methods live in ``METHODS``, a registry of functions ``method(out_dir, options) -> summary``:

- ``out_dir`` (``Path``): the folder the method owns (created before the call);
- ``options`` (``dict``): the command line's common options that were given (``steps``,
  ``train_samples``, ``eval_samples``); a method fills in its own defaults for the rest and
  raises ``ValueError`` for an option it does not take;
- the summary (``dict``, JSON-serialisable) has ``method`` (its name), ``ok`` (every stage
  succeeded), ``stages`` (``stage_rows``: name, command, artefact, seconds, cpu_seconds,
  exit), ``rates`` ({model label: {rate name: value}}: the behaviour figures the method's
  report shows, percent unless the name says otherwise), ``thresholds`` ({rate name:
  minimum} the bar the method's tiny default is held to), ``bar_met`` (whether the fine-tuned
  models reach it) and optionally ``extra`` (anything else, e.g. RL metrics). The
  quickstart writes it to ``OUT/summary.json`` and prints it.

A method registers itself with ``METHODS.register("name", function)`` from ``register()``
below (one line per shipped method; their modules must import without side effects). Stages
are ``cof`` commands, run in this process by ``run_stages`` and printed before they run, so
each quickstart doubles as a worked example.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cof_plugins.core.atomic import write_json
from cof_plugins.core.registry import Registry, RegistryError

Method = Callable[[Path, dict[str, Any]], dict[str, Any]]
METHODS: Registry[Method] = Registry("quickstart method")
COMMON_OPTIONS = ("steps", "train_samples", "eval_samples")


def register() -> None:
    """Register the shipped methods; idempotent. One line per method."""
    from cof_plugins.commands.quickstart_cof import run_cof
    from cof_plugins.methods.chain_of_spot import run_chain_of_spot_quickstart
    from cof_plugins.methods.sifthinker.quickstart import run_sifthinker

    METHODS.register("cof", run_cof)
    METHODS.register("chain-of-spot", run_chain_of_spot_quickstart)
    METHODS.register("sifthinker", run_sifthinker)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart",
        help="run a whole method on a tiny model and synthetic data (CPU, minutes)",
        description="Tiny VLM, synthetic grounded data, the method's trajectories, SFT through "
        "LLaMA-Factory, RL through verl on CPU, evaluation, HTML report; OUT/summary.json "
        "holds every stage's time and the behaviour rates the report shows.",
    )
    p.add_argument("--method", default="cof", help="the method to run (default: %(default)s)")
    p.add_argument("--out", default="runs/quickstart", help="output folder (default: %(default)s)")
    p.add_argument("--steps", type=int, help="SFT optimiser steps (default: the method's)")
    p.add_argument("--train-samples", type=int, help="synthetic training samples")
    p.add_argument("--eval-samples", type=int, help="synthetic evaluation samples")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    register()
    try:
        method = METHODS.get(args.method)
    except RegistryError as exc:
        print(f"cof quickstart: --method: {exc}")
        return 2
    options = {k: getattr(args, k) for k in COMMON_OPTIONS if getattr(args, k) is not None}
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    try:
        summary = method(out, options)
    except ValueError as exc:
        print(f"cof quickstart: {exc}")
        return 2
    write_summary(out, summary)
    print_summary(summary)
    return 0 if summary.get("ok") else 1


# ---------------------------------------------------------------- stages


@dataclass
class Stage:
    """One ``cof`` command; ``env`` is set while it runs (and printed with it); ``artefact``
    names what it makes (shown in the summary), ``code`` is its exit status (None: not run)."""

    name: str
    argv: list[str]
    artefact: str = ""
    env: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    code: int | None = None

    @property
    def command(self) -> str:
        prefix = "".join(f"{k}={shlex.quote(v)} " for k, v in self.env.items())
        return f"{prefix}cof {shlex.join(self.argv)}"


def command(template: str, **paths: str | os.PathLike[str]) -> list[str]:
    """argv from a command template whose {names} are paths (quoted, so spaces survive)."""
    return shlex.split(template.format(**{k: shlex.quote(str(v)) for k, v in paths.items()}))


def _cpu() -> float:
    """CPU seconds of this process and of the children it has waited for (Ray's included
    once Ray shuts down)."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_stage(stage: Stage, index: int, total: int) -> int:
    from cof_plugins.cli import main

    print(f"\n[{index}/{total}] {stage.name}: {stage.command}", flush=True)
    saved = {k: os.environ.get(k) for k in stage.env}
    os.environ.update(stage.env)
    start, cpu = time.perf_counter(), _cpu()
    try:
        stage.code = main(stage.argv)
    except SystemExit as exc:  # argparse and commands that exit
        stage.code = exc.code if isinstance(exc.code, int) else 1
    except Exception:  # a crashing stage (e.g. a Ray task's error) still ends in a summary
        traceback.print_exc()
        stage.code = 1
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    stage.seconds, stage.cpu_seconds = time.perf_counter() - start, _cpu() - cpu
    return stage.code


def run_stages(
    stages: Sequence[Stage],
    *,
    label: str = "quickstart",
    before: Callable[[Stage], None] | None = None,
) -> bool:
    """Run in order; stop at the first failure with the command to rerun it alone.

    ``label`` names the run in that message; ``before(stage)`` is called just before each
    stage runs (SIFThinker's report stage reads a summary of the stages so far)."""
    for i, stage in enumerate(stages, 1):
        if before is not None:
            before(stage)
        if run_stage(stage, i, len(stages)) != 0:
            print(
                f"\n{label} stopped: stage '{stage.name}' exited {stage.code}; rerun it "
                f"alone with: {stage.command}"
            )
            return False
    return True


def stage_rows(stages: Sequence[Stage]) -> list[dict[str, Any]]:
    return [
        {
            "stage": s.name,
            "command": s.command,
            "artefact": s.artefact,
            "seconds": round(s.seconds, 1),
            "cpu_seconds": round(s.cpu_seconds, 1),
            "exit": s.code,
        }
        for s in stages
    ]


# ---------------------------------------------------------------- summary


def write_summary(out: Path, summary: dict[str, Any]) -> Path:
    """``OUT/summary.json``, written atomically (``core.atomic``)."""
    path = out / "summary.json"
    write_json(path, summary, indent=1)
    return path


def print_summary(summary: dict[str, Any]) -> None:
    stages = summary.get("stages", [])
    wall = sum(s["seconds"] for s in stages)
    cpu = sum(s.get("cpu_seconds", 0.0) for s in stages)
    print(f"\nquickstart summary ({summary.get('method')}): {wall:.0f} s wall, {cpu:.0f} s CPU")
    for r in stages:
        state = "ok" if r["exit"] == 0 else ("not run" if r["exit"] is None else "FAILED")
        print(f"  {r['stage']:<15} {state:<8} {r['seconds']:>7.1f}s  {r['artefact']}")
    rates = summary.get("rates") or {}
    if rates:
        names = list(dict.fromkeys(k for v in rates.values() for k in v))
        print("\n  " + f"{'rate':<28}" + "".join(f"{m:>10}" for m in rates))
        for name in names:
            cells = "".join(f"{_cell(rates[m].get(name)):>10}" for m in rates)
            floor = summary.get("thresholds", {}).get(name)
            print(f"  {name:<28}{cells}" + (f"   (needs >= {floor})" if floor else ""))
    for line in summary.get("notes", []):
        print(line)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)
