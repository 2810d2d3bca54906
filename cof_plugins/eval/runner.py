"""One evaluation run: benchmark + backend + loop + scoring, stored resumably in a run dir.

``run_eval`` is what ``cof eval`` calls. Settings that change results (benchmark, model,
protocol, budgets, limits, sweep, seed, flags) are recorded in run.json and must match when a
run is resumed; throughput knobs (batch size, concurrency, server URL) may change between
sessions and are recorded under ``runtime``.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cof_plugins.core.protocol import load_protocol
from cof_plugins.eval.backends import Backend, make_backend
from cof_plugins.eval.benchmarks import Sample, format_errors, load_benchmark
from cof_plugins.eval.loop import LoopConfig, Trajectory, result_key, run_loop
from cof_plugins.eval.scoring import make_judge, score, summarize
from cof_plugins.eval.store import ResultStore, check_resume, read_run_info, write_run_info

SUMMARY = "summary.json"
_VERSIONED = ("cof-plugins", "torch", "transformers", "vllm", "pillow", "numpy")
_RUNTIME_FIELDS = ("batch_size",)


@dataclass(frozen=True)
class EvalSpec:
    """What to evaluate and how; ``backend_options`` go to the backend's constructor."""

    benchmark: str
    model: str
    backend: str = "transformers"
    format: str = "auto"
    image_root: str | None = None
    limit: int | None = None
    skip_bad_rows: bool = False
    loop: LoopConfig = field(default_factory=LoopConfig)
    sweep: tuple[int, ...] | None = None
    seed: int = 0
    judge: bool = True
    backend_options: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        """The result-changing settings, compared on resume."""
        loop = {k: v for k, v in self.loop.to_dict().items() if k not in _RUNTIME_FIELDS}
        return {
            "benchmark": str(Path(self.benchmark).resolve()), "format": self.format,
            "image_root": self.image_root, "limit": self.limit, "model": self.model,
            "backend": self.backend, "loop": loop,
            "sweep": list(self.sweep) if self.sweep else None, "seed": self.seed,
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


def pending_work(samples: list[Sample], sweep, done: set[str]) -> list[tuple[Sample, int | None]]:
    """Every (sample, resolution) not yet stored, resolution by resolution."""
    resolutions = list(sweep) if sweep else [None]
    return [(s, r) for r in resolutions for s in samples if result_key(s.id, r) not in done]


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
    bench = load_benchmark(
        spec.benchmark, spec.format, image_root=spec.image_root, limit=spec.limit,
        skip_bad_rows=spec.skip_bad_rows,
    )  # fmt: skip
    if bench.skipped:
        print(
            f"--skip-bad-rows: {len(bench.skipped)} bad row(s) left out:\n  "
            + format_errors(bench.skipped),
            file=sys.stderr,
        )
    resumed = check_resume(run_dir, spec.settings())
    store = ResultStore(run_dir)
    work = pending_work(bench.samples, spec.sweep, store.done)
    if work:
        owned = backend is None
        backend = backend or make_backend(spec.backend, model=spec.model, **_backend_kwargs(spec))
        judge = judge if judge is not None else make_judge(spec.judge)
        info = _run_info(spec, bench, backend, run_dir if resumed else None)
        session = {"started": _now(), "done_before": len(store.done), "to_do": len(work)}
        info["sessions"].append(session)
        write_run_info(run_dir, info)
        try:
            _evaluate(work, backend, spec.loop, store, judge, progress, on_batch)
        finally:
            if owned:
                backend.close()
        session.update(finished=_now(), stored=len(store.done), judge=_judge_stats(judge))
        write_run_info(run_dir, info)
    summary = summarize(store.records)
    (Path(run_dir) / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _evaluate(
    work, backend, loop: LoopConfig, store: ResultStore, judge, progress, on_batch
) -> None:
    def finished(trajs: list[Trajectory]) -> None:
        records = score(trajs, judge, loop.profile)
        store.append(records)
        if on_batch is not None:
            on_batch(records)

    run_loop(work, backend, loop, finished, total=len(work), progress=progress)


def _backend_kwargs(spec: EvalSpec) -> dict[str, Any]:
    kwargs = dict(spec.backend_options)
    kwargs.setdefault("seed", spec.seed)
    if spec.backend in ("transformers", "vllm"):
        kwargs.setdefault("budget", spec.loop.budget)
    if spec.backend == "vllm":
        kwargs.setdefault("max_images", spec.loop.max_images)
    return kwargs


def _run_info(spec, bench, backend, previous_dir) -> dict[str, Any]:
    """run.json: settings, model, versions; ``sessions`` lists each (resumed) session."""
    sessions = read_run_info(previous_dir).get("sessions", []) if previous_dir else []
    options = {k: v for k, v in spec.backend_options.items() if "key" not in k.lower()}
    return {
        "settings": spec.settings(),
        "runtime": {"batch_size": spec.loop.batch_size, "backend_options": options},
        "benchmark": {"name": bench.name, "format": bench.format, "samples": len(bench.samples)},
        "model": backend.describe(),
        "versions": versions(),
        "command": sys.argv,
        "sessions": sessions,
    }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _judge_stats(judge) -> dict[str, float] | None:
    return judge.stats() if judge is not None and hasattr(judge, "stats") else None


def load_run(run_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """run.json and the stored records of a run directory (for reports)."""
    info = read_run_info(run_dir)
    return info, ResultStore(run_dir).records
