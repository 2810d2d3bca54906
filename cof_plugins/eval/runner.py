"""One evaluation run: benchmark + backend + loop + scoring, stored resumably in a run dir.

``run_eval`` is what ``cof eval`` calls. Settings that change results (benchmark, model,
backend and its dtype, protocol, budgets, limits, sweep, seed, temperature, draws, option
shuffles, frame mode, flags) are recorded in run.json and must match when a run is resumed;
throughput knobs (batch size, concurrency, server URL, device) may change between sessions
and are recorded under ``runtime``.

Order of work, so a bad run dir costs nothing: the run dir is checked and locked
(``eval.lock``), run.json and results.jsonl are read, the benchmark is read, the settings
are compared; only then is the model loaded. Image paths are stored absolute, so
``cof report`` and ``cof viz`` work from any directory.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cof_plugins.core.protocol import load_protocol
from cof_plugins.eval.backends import Backend
from cof_plugins.eval.benchmarks import Sample
from cof_plugins.eval.frames import frames_setting
from cof_plugins.eval.lock import RunLock
from cof_plugins.eval.loop import LoopConfig, Trajectory, WorkItem, run_loop
from cof_plugins.eval.scoring import make_judge, score
from cof_plugins.eval.seeds import derive_seed
from cof_plugins.eval.shuffle import apply_order, option_orders
from cof_plugins.eval.spec import RUN_DEFAULTS, RunSpec
from cof_plugins.eval.store import (
    ResultStore,
    RunDirError,
    check_resume,
    check_run_dir,
    read_run_info,
    write_atomic,
    write_run_info,
)
from cof_plugins.eval.summary import summarize

SUMMARY = "summary.json"
_VERSIONED = ("cof-plugins", "torch", "transformers", "vllm", "pillow", "numpy")
# Loop fields that are not settings: throughput, and the frame flag (recorded resolved, as
# the run's "frames" mode, whatever selected it).
_RUNTIME_FIELDS = ("batch_size", "exact_frames")
# What a run made before a setting existed implicitly used (flattened keys, see check_resume).
SETTING_DEFAULTS = {
    **RUN_DEFAULTS, "samples": 1, "shuffle_options": 0, "loop.temperature": 0.0,
    "frames": "exact",
}  # fmt: skip


@dataclass(frozen=True)
class EvalSpec(RunSpec):
    """What to evaluate (``RunSpec``: benchmark, model, backend) and how: CoF's loop."""

    loop: LoopConfig = field(default_factory=LoopConfig)
    sweep: tuple[int, ...] | None = None
    judge: bool = True
    samples: int = 1  # draws per question (Avg@k, pass@k); > 1 needs loop.temperature > 0
    shuffle_options: int = 0  # shuffled option orders per question, besides the original

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"--samples must be >= 1, got {self.samples}")
        if self.samples > 1 and self.loop.temperature <= 0:
            raise ValueError(
                f"--samples {self.samples} at temperature 0 would repeat one greedy answer "
                f"{self.samples} times; pass --temperature (e.g. 0.7) or --samples 1"
            )
        if self.shuffle_options < 0:
            raise ValueError(f"--shuffle-options must be >= 0, got {self.shuffle_options}")

    def settings(self) -> dict[str, Any]:
        """The result-changing settings, compared on resume."""
        loop = {k: v for k, v in self.loop.to_dict().items() if k not in _RUNTIME_FIELDS}
        return {
            **self.run_settings(), "loop": loop,
            "frames": frames_setting(self.loop.frame_spec().mode),
            "sweep": list(self.sweep) if self.sweep else None,
            "samples": self.samples, "shuffle_options": self.shuffle_options,
            "judge": self.judge,
            # The text itself, not just its name: a resume with an edited protocol file
            # would mix two prompts in one run.
            "protocol_sha256": load_protocol(self.loop.protocol).digest,
        }  # fmt: skip


def parse_sweep(text: str | None) -> tuple[int, ...] | None:
    """ "224,336,448" -> (224, 336, 448); sizes must be whole pixels >= 28."""
    if not text:
        return None
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 28:
            raise ValueError(f"--sweep: {part!r} is not a long-side size in pixels (>= 28)")
        values.append(int(part))
    return tuple(dict.fromkeys(values))


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def work_items(samples: list[Sample], spec: EvalSpec) -> list[WorkItem]:
    """Every unit of work, question by question: resolutions largest first, then orders
    and draws, so one decode of an input serves all of them (``eval.frames``)."""
    resolutions = sorted(spec.sweep, reverse=True) if spec.sweep else [None]
    sampled = spec.loop.temperature > 0
    items = []
    for sample in samples:
        orders = option_orders(sample, spec.shuffle_options, spec.seed)
        for resolution in resolutions:
            for order, perm in enumerate(orders):
                shown = apply_order(sample, perm)
                for draw in range(spec.samples):
                    seed = derive_seed(spec.seed, "draw", sample.id, draw) if sampled else None
                    items.append(WorkItem(shown, resolution, draw, order, perm, seed))
    return items


def pending_work(samples: list[Sample], spec: EvalSpec, done: set[str]) -> list[WorkItem]:
    """The work items not yet stored."""
    return [item for item in work_items(samples, spec) if item.key not in done]


def run_eval(
    spec: EvalSpec,
    run_dir: str | Path,
    *,
    backend: Backend | None = None,
    judge: Any = None,
    progress: bool = True,
    on_batch: Any = None,
) -> dict[str, Any]:
    """Evaluate what is still missing in ``run_dir`` and return the run's summary.

    ``backend``/``judge`` may be passed in (tests, benchmarks); ``on_batch`` is called with
    each batch of stored records (tests use it to interrupt a run).
    """
    # The settings (the protocol file among them) are checked before the run directory is
    # created: a bad protocol leaves nothing behind.
    settings = spec.settings()
    check_run_dir(run_dir)
    with RunLock(run_dir):
        store = ResultStore(run_dir)
        resumed = check_resume(run_dir, settings, SETTING_DEFAULTS)
        bench = spec.load()
        work = pending_work(bench.samples, spec, store.done)
        if work:
            _session(spec, settings, bench, work, store, run_dir, resumed, backend, judge,
                     progress, on_batch)  # fmt: skip
        summary = summarize(store.records, seed=spec.seed)
        write_atomic(Path(run_dir) / SUMMARY, json.dumps(summary, indent=2) + "\n")
    return summary


def _session(
    spec, settings, bench, work, store, run_dir, resumed, backend, judge, progress, on_batch
):
    """Load the model, run the missing work, record the session in run.json (``settings``:
    the ones checked on resume, computed once: they read the weights' fingerprint)."""
    owned = backend is None
    backend = backend or spec.make_backend(spec.loop.budget, spec.loop.max_images)
    try:
        judge = judge if judge is not None else make_judge(spec.judge)
        info = _run_info(spec, settings, bench, backend, run_dir if resumed else None)
        if resumed:
            _check_model(run_dir, info["model"])
        session = {"started": _now(), "done_before": len(store.done), "to_do": len(work)}
        info["sessions"].append(session)
        write_run_info(run_dir, info)
        _evaluate(work, backend, spec, store, judge, progress, on_batch)
    finally:
        if owned:
            backend.close()
    session.update(finished=_now(), stored=len(store.done), judge=_judge_stats(judge))
    write_run_info(run_dir, info)


def _evaluate(work, backend, spec: EvalSpec, store: ResultStore, judge, progress, on_batch) -> None:
    loop = spec.loop

    def finished(trajs: list[Trajectory]) -> None:
        records = score(trajs, judge, loop.profile)
        store.append(records)
        if on_batch is not None:
            on_batch(records)

    run_loop(work, backend, loop, finished, total=len(work), progress=progress,
             resolutions=spec.sweep or None)  # fmt: skip


def _run_info(spec, settings, bench, backend, previous_dir) -> dict[str, Any]:
    """run.json: settings, model, versions; ``sessions`` lists each (resumed) session."""
    sessions = read_run_info(previous_dir).get("sessions", []) if previous_dir else []
    options = {k: v for k, v in spec.backend_options.items() if "key" not in k.lower()}
    return {
        "settings": settings,
        "runtime": {
            "batch_size": spec.loop.batch_size,
            "backend_options": options,
            "cwd": os.getcwd(),
        },
        "benchmark": {"name": bench.name, "format": bench.format, "samples": len(bench.samples)},
        "model": backend.describe(),
        "versions": versions(),
        "command": sys.argv,
        "sessions": sessions,
    }


def _check_model(run_dir: str | Path, model: dict[str, Any]) -> None:
    """The loaded weights' dtype must be the stored run's ("auto" may resolve differently
    on another machine: bfloat16 on a GPU, float32 on a CPU)."""
    stored = read_run_info(run_dir).get("model") or {}
    if stored.get("dtype") and model.get("dtype") and stored["dtype"] != model["dtype"]:
        raise RunDirError(
            f"{run_dir} was evaluated with {stored['dtype']} weights, this session loaded "
            f"{model['dtype']}; pass --dtype {str(stored['dtype']).removeprefix('torch.')} "
            "or use a new --run-dir"
        )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _judge_stats(judge) -> dict[str, float] | None:
    return judge.stats() if judge is not None and hasattr(judge, "stats") else None


def load_run(run_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """run.json and the stored records of a run directory (for reports), read-only.

    Runs stored before image paths were absolute hold paths relative to the directory
    ``cof eval`` ran in; when run.json recorded it (``runtime.cwd``), they are joined to it.
    """
    info = read_run_info(run_dir)
    records = ResultStore(run_dir, repair=False).records
    cwd = (info.get("runtime") or {}).get("cwd")
    for record in records:
        image = record.get("image")
        if cwd and isinstance(image, dict) and not Path(image.get("path", "/")).is_absolute():
            image["path"] = str(Path(cwd) / image["path"])
    return info, records
