"""``cof sft RECIPE --smoke``: one real LLaMA-Factory step of a recipe on this CPU.

The recipe runs as written except for the keys ``recipes/sft/overlays/smoke.yaml`` declares
(model, data, output folder, device, sizes); ``plan`` works out and prints exactly which of
them changed a value. Training is ``run_sft``'s own path (pre-flight, run record, in-process
``run_exp``), so a smoke exercises what a real launch would, one step long.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cof_plugins.llamafactory.config import COF_PREFIX, RecipeError, merge_recipe
from cof_plugins.testbed.smoke import (
    DATA_ENV,
    MODEL_ENV,
    OUT_ENV,
    Override,
    SmokeAssets,
    overrides,
    set_env,
)


@dataclass
class SmokePlan:
    recipe: Path
    family: str
    changes: list[Override]


@dataclass
class SmokeResult:
    recipe: Path
    seconds: float
    changes: list[Override]
    output: Path
    train_loss: float | None


def recipe_data(config: dict[str, Any]) -> str | None:
    """The recipe's ``dataset_dir`` when its data exists here, else None."""
    value = str(config.get("dataset_dir", ""))
    folder = value.removeprefix(COF_PREFIX) if value.startswith(COF_PREFIX) else value
    if folder and Path(folder).expanduser().exists():
        return value
    return None


def plan(recipe: str | Path, user: Sequence[str], assets: SmokeAssets) -> SmokePlan:
    """Build what the smoke needs, publish it to the overlay, and list the changed keys."""
    from omegaconf import OmegaConf

    from cof_plugins.llamafactory.preflight import recipe_budget, recipe_family

    path = Path(recipe).resolve()
    written = OmegaConf.to_container(merge_recipe(path, user), resolve=False)
    sized = OmegaConf.to_container(merge_recipe(path, user, smoke=True), resolve=False)
    family = recipe_family(written)
    if family is None:
        raise RecipeError(
            f"{path.name}: template={written.get('template')!r} is not a CoF template, so no "
            "tiny model of its family can stand in for the model; use a cof_* template"
        )
    data = recipe_data(written) or COF_PREFIX + str(assets.sft_data(family, recipe_budget(sized)))
    set_env({MODEL_ENV: assets.model(family), DATA_ENV: data, OUT_ENV: assets.out(path)})
    smoke = merge_recipe(path, user, smoke=True)
    changed = overrides(
        written,
        OmegaConf.to_container(smoke, resolve=False),
        OmegaConf.to_container(smoke, resolve=True),
    )
    return SmokePlan(path, family, changed)


def run_smoke(
    recipe: str | Path, user: Sequence[str] = (), assets: SmokeAssets | None = None, echo=print
) -> SmokeResult:
    """Plan, print the changed keys, and train one step through ``run_sft``."""
    from cof_plugins.llamafactory.train import Topology, run_sft

    started = time.perf_counter()
    assets = assets or SmokeAssets()
    smoke = plan(recipe, user, assets)
    echo(f"smoke {smoke.recipe.name}: {len(smoke.changes)} key(s) overridden")
    for change in smoke.changes:
        echo(f"  {change}")
    out = run_sft(smoke.recipe, list(user), Topology(), smoke=True)
    return SmokeResult(
        smoke.recipe, time.perf_counter() - started, smoke.changes, out, _train_loss(out)
    )


def _train_loss(out: Path) -> float | None:
    results = out / "all_results.json"
    if not results.is_file():
        return None
    return json.loads(results.read_text(encoding="utf-8")).get("train_loss")
