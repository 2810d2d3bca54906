"""One smoke work folder per session, seeded with the session's tiny models (one per family)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cof_plugins.assets import recipes_dir


def shipped(kind: str) -> list[Path]:
    """Every recipe of ``kind`` in recipes/: a new recipe file is smoked without a test edit."""
    return sorted((recipes_dir() / kind).glob("*.yaml"))


@pytest.fixture(scope="session")
def smoke_work(tmp_path_factory, tiny_model_factory) -> Path:
    from cof_plugins.core.frame import FAMILIES

    work = tmp_path_factory.mktemp("smoke")
    (work / "models").mkdir()
    for family in FAMILIES:
        (work / "models" / family).symlink_to(tiny_model_factory(family))
    return work


@pytest.fixture(scope="session")
def smoke_assets(smoke_work):
    from cof_plugins.testbed.smoke import SmokeAssets

    return SmokeAssets(smoke_work)
