"""One smoke work folder per session, seeded with the session's tiny models (one per family)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cof_plugins.assets import recipes_dir


def shipped(kind: str) -> list[Path]:
    """Every recipe of ``kind`` in recipes/ that `cof smoke` runs: a new recipe file is
    smoked without a test edit (unless its header names a ``# Smoke:`` exemption)."""
    from cof_plugins.commands.smoke import exemption

    return [p for p in sorted((recipes_dir() / kind).glob("*.yaml")) if exemption(p) is None]


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
