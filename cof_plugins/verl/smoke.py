"""``cof rl RECIPE --smoke``: one real GRPO step of a recipe through verl, on this CPU.

The smoke is ``cof rl``'s own path with one more Hydra override, ``+overlays=smoke``: the
declared overlay (``recipes/rl/overlays/smoke.yaml``, which pulls in ``cpu.yaml``) is added
after the recipe, the user's overrides after it. ``plan`` composes the recipe as written too,
only to print which keys the overlay changed. Values known only at run time (the tiny
model of the recipe's family, synthetic data, the output folder, scripted turns) reach the
overlay through ``COF_SMOKE_*`` variables.

Several recipes can share one Ray cluster (``SessionCluster``): verl's ``run_ppo`` connects
to ``ray_kwargs.ray_init.address`` instead of starting a cluster of its own, and every smoke
is its own Ray job, so what one run leaves behind (its placement groups, named actors) is
released when its job ends, before the next starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from cof_plugins.testbed.smoke import (
    DATA_ENV,
    MODEL_ENV,
    OUT_ENV,
    SCRIPT_ENV,
    Override,
    SmokeAssets,
    overrides,
    set_env,
)
from cof_plugins.verl.recipe import compose_recipe, find_recipe, select

OVERLAY = "+overlays=smoke"
AUTH_MODE_ENV = "RAY_AUTH_MODE"
TOOL_KEY = "actor_rollout_ref.rollout.multi_turn.tool_config_path"


def overlay_files() -> list[Path]:
    """The files whose keys a smoke may change (the smoke overlay and the device it adds)."""
    from cof_plugins.assets import recipes_dir

    folder = recipes_dir() / "rl" / "overlays"
    return [folder / "smoke.yaml", folder / "cpu.yaml"]


def smoke_overrides(address: str | None = None) -> list[str]:
    """Hydra overrides that make ``cof rl`` run the smoke (on a shared cluster if given)."""
    if not address:
        return [OVERLAY]
    # Ray refuses num_cpus/num_gpus when it connects to a cluster: that cluster has its own.
    return [
        OVERLAY,
        f"ray_kwargs.ray_init.address={address}",
        "ray_kwargs.ray_init.num_cpus=null",
        "ray_kwargs.ray_init.num_gpus=null",
    ]


def recipe_family(config: Any) -> str | None:
    """The model family the recipe's zoom tool is set up for (its tiny model stands in);
    None for a recipe without cof-plugins' zoom tool (a single-turn method)."""
    from cof_plugins.verl.cluster_checks import tool_settings

    settings = tool_settings(config)
    return None if settings is None else settings.family


@dataclass
class SmokePlan:
    recipe: Path
    family: str
    overrides: list[str]
    # The recipe as written (plus the user's overrides), unresolved: what changes compare to.
    written: dict[str, Any]


def plan(
    recipe: str | Path, user: Sequence[str], assets: SmokeAssets, address: str | None = None
) -> SmokePlan:
    """Build the assets for ``recipe``'s family and publish them to the overlay."""
    from cof_plugins.verl.registration import register

    register()
    path = find_recipe(recipe)
    composed = compose_recipe(path, user)
    family = recipe_family(composed)
    if family is None:
        raise ValueError(
            f"{TOOL_KEY} names no cof_plugins zoom tool, so the recipe's model family is "
            "unknown; a smoke needs it to pick a tiny model"
        )
    set_env(
        {
            MODEL_ENV: assets.model(family),
            DATA_ENV: assets.rl_data(family),
            OUT_ENV: assets.out(path),
            SCRIPT_ENV: assets.script(),
        }
    )
    written = OmegaConf.to_container(composed, resolve=False)
    return SmokePlan(path, family, [*smoke_overrides(address), *user], written)


def changes(smoke: SmokePlan, prepared: Any) -> list[Override]:
    """What the smoke changed: the recipe as written against the config that runs."""
    return overrides(smoke.written, prepared.unresolved, OmegaConf.to_container(prepared.config))


@dataclass
class SmokeResult:
    recipe: Path
    seconds: float
    changes: list[Override]
    checkpoint: Path | None


def run_smoke(
    recipe: str | Path,
    user: Sequence[str] = (),
    assets: SmokeAssets | None = None,
    address: str | None = None,
    echo=print,
) -> SmokeResult:
    """Plan, prepare and check, print the changed keys, and train one step via ``train``."""
    from cof_plugins.verl.launcher import prepare, train

    started = time.perf_counter()
    assets = assets or SmokeAssets()
    smoke = plan(recipe, user, assets, address)
    prepared = prepare(smoke.recipe, smoke.overrides)
    changed = changes(smoke, prepared)
    echo(f"smoke {smoke.recipe.name}: {len(changed)} key(s) overridden")
    for change in changed:
        echo(f"  {change}")
    if not prepared.findings.ok:
        raise ValueError(f"{smoke.recipe.name} smoke: {'; '.join(prepared.findings.errors)}")
    try:
        train(prepared.config)
    finally:
        if address:
            import ray

            ray.shutdown()  # ends this run's job: Ray frees what the run left behind
    ckpt = Path(str(select(prepared.config, "trainer.default_local_dir")))
    return SmokeResult(smoke.recipe, time.perf_counter() - started, changed, _latest(ckpt))


def _latest(ckpt: Path) -> Path | None:
    tracker = ckpt / "latest_checkpointed_iteration.txt"
    if not tracker.is_file():
        return None
    return ckpt / f"global_step_{tracker.read_text().strip()}"


# The cluster holder: a driver of its own that starts Ray, prints its address, and answers
# "wait" (block until every resource is free again) until its stdin closes.
_HOLDER = """
import sys, time, ray
ray.init(
    address="local", num_cpus={cpus}, num_gpus={gpus}, include_dashboard=False,
    log_to_driver=False,
)
print(ray.get_runtime_context().gcs_address, flush=True)
for line in sys.stdin:
    total = ray.cluster_resources()
    for _ in range(600):
        free = ray.available_resources()
        if all(free.get(k, 0) >= total[k] for k in ("CPU", "GPU") if k in total):
            break
        time.sleep(0.1)
    print("free", flush=True)
"""


class SessionCluster:
    """One local Ray cluster for several smokes, owned by a child process of this one.

    Closing the child's stdin (``close``, or this process ending) shuts the cluster down:
    only processes it started are stopped.
    """

    def __init__(self, num_cpus: int, num_gpus: int):
        # Ray 2.60 turns token authentication on for a new local cluster, and a driver caches
        # its mode when it first imports Ray: decide the mode here, for both sides, before.
        os.environ.setdefault(AUTH_MODE_ENV, "token")
        code = _HOLDER.format(cpus=int(num_cpus), gpus=int(num_gpus))
        self._proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        line = (self._proc.stdout.readline() if self._proc.stdout else "").split()
        if not line:
            self.close()
            raise RuntimeError("the shared Ray cluster did not start; see the log above")
        self.address = line[0]

    def wait_until_free(self) -> None:
        """Block until the previous job's resources are released (Ray frees them async)."""
        assert self._proc.stdin and self._proc.stdout
        self._proc.stdin.write("wait\n")
        self._proc.stdin.flush()
        self._proc.stdout.readline()

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.terminate()
            self._proc.wait(timeout=30)

    def __enter__(self) -> SessionCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cluster_size() -> tuple[int, int]:
    """Logical CPUs and GPUs of the CPU device overlay (the one place they are written)."""
    cpu = OmegaConf.load(overlay_files()[1])
    ray_init = cpu.ray_kwargs.ray_init
    return int(ray_init.num_cpus), int(ray_init.num_gpus)
