"""Compose, check and start verl's PPO trainer in this process (``cof rl`` / ``cof validate``).

One path for every run: ``prepare`` composes the recipe once (plus overrides, plus the smoke
overlay when asked), resolves and checks it; ``train`` reads the device from that composed
config (``trainer.device: cpu`` selects cof-plugins' CPU platform) and starts verl.

``verl.trainer.main_ppo.main`` is a ``@hydra.main`` function and cannot take a composed
config, so ``train`` does what its body does, in the same order: ``auto_set_device``,
``validate_config`` (inside ``check_config``), then ``run_ppo(config, task_runner_class=...)``
with the V1 or legacy TaskRunner as ``trainer.use_v1`` says. Registration happens here first,
and the config sent to Ray is already resolved (chat template text, absolute tool YAML path).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from cof_plugins.verl.checks import Findings, check_config
from cof_plugins.verl.recipe import compose_recipe, find_recipe, resolve, unknown_recipe_keys
from cof_plugins.verl.registration import AUTOLOAD_MODULE, EXTERNAL_MODULES_ENV, register

RUNTIME_ENV_VARS = "ray_kwargs.ray_init.runtime_env.env_vars"


@dataclass
class Prepared:
    recipe: Path
    config: DictConfig
    findings: Findings
    # The composed config before resolution (interpolations as written), for reports.
    unresolved: dict[str, Any]


def prepare(recipe: str | Path, overrides: Sequence[str] = ()) -> Prepared:
    """Compose and resolve ``recipe`` with ``overrides`` and check it; starts nothing.

    Raises ``RecipeError`` when the recipe cannot be composed at all; everything else is
    reported in ``findings``.
    """
    register()
    path = find_recipe(recipe)
    unknown = unknown_recipe_keys(path)
    config = compose_recipe(path, overrides)
    unresolved = OmegaConf.to_container(config, resolve=False)
    resolve(config)
    findings = check_config(config, unresolved)
    findings.errors[:0] = unknown
    return Prepared(path, config, findings, unresolved)


def on_cpu(config: DictConfig) -> bool:
    """Whether the composed config asks for the CPU device (``trainer.device: cpu``)."""
    return OmegaConf.select(config, "trainer.device", default=None) == "cpu"


def ship_registration(config: DictConfig) -> None:
    """Ask every Ray worker to import our autoload module, besides the entry point.

    The entry point only exists where cof-plugins is pip-installed; this route also covers
    code shipped with Ray. Both end in the same idempotent ``register()``. Modules named in
    this process's own ``VERL_USE_EXTERNAL_MODULES`` are kept: the runtime env's value
    replaces the inherited one in every worker.
    """
    from cof_plugins.verl.runtime_env import merge_module_lists

    key = f"{RUNTIME_ENV_VARS}.{EXTERNAL_MODULES_ENV}"
    current = str(OmegaConf.select(config, key, default=None) or "")
    inherited = os.environ.get(EXTERNAL_MODULES_ENV, "")
    modules = merge_module_lists(merge_module_lists(inherited, current), AUTOLOAD_MODULE)
    OmegaConf.update(config, key, modules, force_add=True)


def ship_to_ray(config: DictConfig) -> list[str]:
    """``ship_registration``, then settle overlaps with the Ray job this driver may run in
    (``runtime_env.reconcile_job_runtime_env``); returns what was changed, for the log."""
    from cof_plugins.verl.runtime_env import reconcile_job_runtime_env

    ship_registration(config)
    return reconcile_job_runtime_env(config)


def train(config: DictConfig) -> None:
    """Start verl's trainer on a prepared config (blocks until training ends).

    The device comes from the config: on ``cpu`` the CPU platform is selected here, before
    verl's trainer is imported (verl resolves its platform once, on first use).
    """
    if on_cpu(config):
        from cof_plugins.verl.cpu.registration import use_cpu_platform

        use_cpu_platform(config)
    from verl.trainer import main_ppo
    from verl.utils.device import auto_set_device

    for note in ship_to_ray(config):
        print(f"ray runtime env: {note}")
    auto_set_device(config)
    if config.trainer.use_v1:
        runner = main_ppo.TaskRunnerV1
    else:
        from verl.trainer.main_ppo_v0 import TaskRunner as runner
    import ray

    # run_ppo starts Ray when it is not running and leaves it up (verl's CLI process ends
    # next); an in-process caller (the quickstarts) gets its CPUs back here instead.
    started_here = not ray.is_initialized()
    try:
        main_ppo.run_ppo(config, task_runner_class=runner)
    finally:
        if started_here and ray.is_initialized():
            ray.shutdown()
