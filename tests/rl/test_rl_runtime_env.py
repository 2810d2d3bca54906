"""`cof rl` inside a Ray job: the runtime env it hands to ray.init merges with the job's.

Each test composes the paper recipe, lets the launcher add its runtime-env entries as
`cof rl` does, then merges the result with the job's runtime env through Ray's own
`_merge_runtime_env` (what `ray.init` calls), on the env that verl's `run_ppo` builds.
"""

from __future__ import annotations

import copy
import json

import pytest
from omegaconf import OmegaConf

from cof_plugins.verl.launcher import ship_registration, ship_to_ray
from cof_plugins.verl.registration import AUTOLOAD_MODULE, EXTERNAL_MODULES_ENV
from cof_plugins.verl.runtime_env import (
    JOB_CONFIG_ENV,
    OVERRIDE_ENV,
    RuntimeEnvConflict,
    merge_module_lists,
)


@pytest.fixture(scope="module")
def composed():
    from cof_plugins.verl.recipe import compose_recipe, resolve

    return resolve(compose_recipe("paper_qwen2_5_vl_7b_grpo"))


@pytest.fixture
def config(composed):
    return copy.deepcopy(composed)


def _in_job(monkeypatch, env_vars: dict[str, str]) -> dict:
    """What Ray's job supervisor gives the driver: the job's variables and its config JSON."""
    monkeypatch.delenv(OVERRIDE_ENV, raising=False)
    monkeypatch.delenv(EXTERNAL_MODULES_ENV, raising=False)
    for key, value in env_vars.items():
        monkeypatch.setenv(key, value)
    job = {"env_vars": dict(env_vars)}
    monkeypatch.setenv(JOB_CONFIG_ENV, json.dumps({"runtime_env": job, "metadata": {}}))
    return job


def _ray_init_merge(config, job: dict):
    """The runtime env run_ppo passes to ray.init, merged with the job's as ray.init does."""
    import os

    from ray.runtime_env.runtime_env import _merge_runtime_env
    from verl.trainer.constants_ppo import get_ppo_ray_runtime_env

    ours = OmegaConf.merge(get_ppo_ray_runtime_env(config), config.ray_kwargs.ray_init.runtime_env)
    override = os.environ.get(OVERRIDE_ENV) == "1"
    return _merge_runtime_env(job, OmegaConf.to_container(ours), override=override)


def test_job_forwarding_the_same_modules_no_longer_conflicts(config, monkeypatch):
    job = _in_job(monkeypatch, {EXTERNAL_MODULES_ENV: AUTOLOAD_MODULE, "COF_NNODES": "2"})
    before = copy.deepcopy(config)
    ship_registration(before)  # the old launcher: the variable is set twice
    assert _ray_init_merge(before, job) is None  # Ray's "Failed to merge" case

    notes = ship_to_ray(config)
    merged = _ray_init_merge(config, job)
    assert merged is not None
    assert merged["env_vars"][EXTERNAL_MODULES_ENV] == AUTOLOAD_MODULE
    assert any("already sets it" in n for n in notes)
    assert OVERRIDE_ENV not in __import__("os").environ  # nothing forced when values agree


def test_foreign_modules_in_the_job_are_kept_next_to_ours(config, monkeypatch):
    job = _in_job(monkeypatch, {EXTERNAL_MODULES_ENV: "their_pkg.plugin"})
    ship_to_ray(config)
    merged = _ray_init_merge(config, job)
    assert merged is not None
    assert merged["env_vars"][EXTERNAL_MODULES_ENV] == f"their_pkg.plugin,{AUTOLOAD_MODULE}"


def test_reconciling_twice_changes_nothing(config, monkeypatch):
    job = _in_job(monkeypatch, {EXTERNAL_MODULES_ENV: f"their_pkg.plugin,{AUTOLOAD_MODULE}"})
    ship_to_ray(config)
    once = OmegaConf.to_container(config)
    ship_to_ray(config)
    assert OmegaConf.to_container(config) == once
    assert _ray_init_merge(config, job) is not None


def test_a_variable_verl_sets_itself_may_come_from_the_job(config, monkeypatch):
    # verl always forwards VERL_FULL_DETERMINISM (read from this process's env).
    job = _in_job(monkeypatch, {"VERL_FULL_DETERMINISM": "0"})
    ship_to_ray(config)
    assert _ray_init_merge(config, job) is not None


def test_different_values_are_refused_with_both_named(config, monkeypatch):
    key = "ray_kwargs.ray_init.runtime_env.env_vars.TENSORBOARD_DIR"
    OmegaConf.update(config, key, "/a", force_add=True)
    _in_job(monkeypatch, {"TENSORBOARD_DIR": "/b"})
    with pytest.raises(RuntimeEnvConflict, match=r"TENSORBOARD_DIR: the job sets '/b'.*'/a'"):
        ship_to_ray(config)


def test_outside_a_ray_job_nothing_changes(config, monkeypatch):
    monkeypatch.delenv(JOB_CONFIG_ENV, raising=False)
    monkeypatch.delenv(OVERRIDE_ENV, raising=False)
    monkeypatch.delenv(EXTERNAL_MODULES_ENV, raising=False)
    assert ship_to_ray(config) == []
    env_vars = config.ray_kwargs.ray_init.runtime_env.env_vars
    assert env_vars[EXTERNAL_MODULES_ENV] == AUTOLOAD_MODULE


def test_module_lists_merge_in_order_without_blanks_or_repeats():
    assert merge_module_lists("a,,b", " b, c ,a") == "a,b,c"
    assert merge_module_lists("", "") == ""


def test_cof_rl_settles_the_overlap_before_verl_calls_ray_init(config, monkeypatch):
    from verl.trainer import main_ppo

    from cof_plugins.verl import launcher

    job = _in_job(monkeypatch, {EXTERNAL_MODULES_ENV: AUTOLOAD_MODULE})
    merged = []

    def run_ppo(cfg, task_runner_class):  # stands in for verl's: ray.init is where it failed
        merged.append(_ray_init_merge(cfg, job))

    monkeypatch.setattr(main_ppo, "run_ppo", run_ppo)
    launcher.train(config)
    assert merged and merged[0] is not None
