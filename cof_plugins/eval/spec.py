"""What every evaluation run is made of, whatever its method: a benchmark, a model and the
backend that serves it.

``cof eval``'s ``EvalSpec`` (``eval.runner``) and Chain-of-Spot's ``CosEvalSpec``
(``methods.cos_eval``) extend ``RunSpec`` with their own loop's settings. The part defined
here is read, recorded in run.json and compared on resume one way for both: paths absolute
(a run resumed from another folder reads the same files, and its stored image paths work
from anywhere), and of the backend's options only those that change results.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cof_plugins.core.frame import PixelBudget
from cof_plugins.eval.backends import Backend, make_backend
from cof_plugins.eval.benchmarks import Benchmark, format_errors, load_benchmark
from cof_plugins.eval.fingerprint import weights_fingerprint

# Backend options that change results; the others (url, concurrency, device) do not.
RESULT_OPTIONS = {"transformers": ("dtype",), "vllm": (), "openai": ()}
# What a run made before one of these settings existed implicitly used (flattened keys, as
# ``eval.store.check_resume`` takes them).
RUN_DEFAULTS = {"skip_bad_rows": False, "backend_options.dtype": "auto"}


@dataclass(frozen=True)
class RunSpec:
    """The benchmark and the model; ``backend_options`` go to the backend's constructor."""

    benchmark: str
    model: str
    backend: str = "transformers"
    format: str = "auto"
    image_root: str | None = None
    limit: int | None = None
    skip_bad_rows: bool = False
    seed: int = 0
    backend_options: dict[str, Any] = field(default_factory=dict)

    def run_settings(self) -> dict[str, Any]:
        """The result-changing settings every method records; a method adds its own."""
        options = {
            k: self.backend_options.get(k, "auto") for k in RESULT_OPTIONS.get(self.backend, ())
        }
        return {
            "benchmark": str(Path(self.benchmark).resolve()), "format": self.format,
            "image_root": str(Path(self.image_root).resolve()) if self.image_root else None,
            "limit": self.limit, "skip_bad_rows": self.skip_bad_rows, "model": self.model,
            "backend": self.backend, "backend_options": options, "seed": self.seed,
            # The weights, not only their path: retraining into the same folder must not
            # resume a run made with the old weights.
            "model_weights": weights_fingerprint(self.model),
        }  # fmt: skip

    def load(self) -> Benchmark:
        """The benchmark with absolute paths, so stored image references work from anywhere;
        rows left out by ``skip_bad_rows`` are listed on stderr."""
        root = str(Path(self.image_root).resolve()) if self.image_root else None
        bench = load_benchmark(
            Path(self.benchmark).resolve(), self.format, image_root=root, limit=self.limit,
            skip_bad_rows=self.skip_bad_rows,
        )  # fmt: skip
        if bench.skipped:
            print(
                f"--skip-bad-rows: {len(bench.skipped)} bad row(s) left out:\n  "
                + format_errors(bench.skipped),
                file=sys.stderr,
            )
        return bench

    def make_backend(self, budget: PixelBudget, max_images: int) -> Backend:
        """The backend, with the run's seed, and the pixel budget and image limit its
        method's loop uses unless ``backend_options`` set them."""
        kwargs = dict(self.backend_options)
        kwargs.setdefault("seed", self.seed)
        if self.backend in ("transformers", "vllm"):
            kwargs.setdefault("budget", budget)
        if self.backend == "vllm":
            kwargs.setdefault("max_images", max_images)
        return make_backend(self.backend, model=self.model, **kwargs)


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """The backend options ``cof eval``'s command line gives, for either method."""
    if args.backend == "openai":
        return {"url": args.url, "concurrency": args.concurrency}
    if args.backend == "transformers":
        return {"device": args.device, "dtype": args.dtype}
    if args.tensor_parallel_size:
        return {"engine_kwargs": {"tensor_parallel_size": args.tensor_parallel_size}}
    return {}
