"""Shared fixtures: tiny models of each family and synthetic data, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_factory(tmp_path_factory):
    """Return a function family -> path of a tiny checkpoint (built once per family)."""
    built: dict[str, Path] = {}

    def get(family: str = "qwen2_5_vl") -> Path:
        if family not in built:
            from cof_plugins.testbed.tiny_model import build_tiny_model

            built[family] = build_tiny_model(tmp_path_factory.mktemp(f"tiny_{family}"), family)
        return built[family]

    return get


@pytest.fixture(scope="session")
def tiny_model(tiny_model_factory) -> Path:
    return tiny_model_factory("qwen2_5_vl")


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """Twelve small synthetic samples (224 to 1024 px), every question kind."""
    from cof_plugins.testbed.synth import write_dataset

    out = tmp_path_factory.mktemp("synth")
    write_dataset(out, 12, (224, 448, 1024), seed=7, progress=False)
    return out


# Under COF_REQUIRE_ALL=1 (CI) a missing optional dependency fails the run (testbed.extras).
from cof_plugins.testbed.extras import (  # noqa: E402
    pytest_make_collect_report,  # noqa: F401
    pytest_runtest_makereport,  # noqa: F401
    pytest_sessionstart,  # noqa: F401
)


@pytest.fixture(scope="session")
def sif_data(tmp_path_factory) -> Path:
    """A `cof data sif` folder: 6 depth scenes, SFT rows, RL parquet (tiny pixel budget)."""
    from cof_plugins.data.sif import SifDataConfig
    from cof_plugins.data.sif_write import write_synthetic
    from cof_plugins.testbed.tiny_model import TINY_BUDGET

    out = tmp_path_factory.mktemp("sif") / "data"
    write_synthetic(out, 6, SifDataConfig(budget=TINY_BUDGET, seed=3))
    return out
