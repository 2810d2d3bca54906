"""Make the runtime env ``cof rl`` hands to ``ray.init`` agree with the Ray job it runs in.

Under ``ray job submit --runtime-env-json ... -- cof rl``, the driver's ``ray.init`` merges
the job's runtime env with the one verl passes (verl's defaults plus
``ray_kwargs.ray_init.runtime_env``), and Ray 2.x refuses any env var named in both, even with
the same value ("Failed to merge the Job's runtime env", ``ray._private.worker`` /
``_merge_runtime_env``). A launch script that forwards ``VERL_USE_EXTERNAL_MODULES`` to the
job, while ``cof rl`` adds it too, hits exactly that.

``reconcile_job_runtime_env`` settles each variable named in both places before verl calls
``ray.init``:

- same value: dropped from the config; the job already gives it to every worker;
- ``VERL_USE_EXTERNAL_MODULES``: the union of both module lists, in the job's order; dropped
  when the job's list already holds ours;
- a variable verl itself sets (``get_ppo_ray_runtime_env``) to the job's value: harmless;
- anything else that differs: a ``RuntimeEnvConflict`` naming the variable, both values and
  the fix, before any Ray worker starts.

When some overlap must stay (a union, verl's own variables), ``RAY_OVERRIDE_JOB_RUNTIME_ENV=1``
is set in this process, which Ray reads in ``ray.init`` to let the driver's value win; the
checks above make sure the winner already holds the job's value. Running the same
reconciliation twice changes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, MutableMapping
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from cof_plugins.verl.registration import EXTERNAL_MODULES_ENV

JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray's job supervisor for the driver
OVERRIDE_ENV = "RAY_OVERRIDE_JOB_RUNTIME_ENV"
RUNTIME_ENV = "ray_kwargs.ray_init.runtime_env"
# Comma-separated lists that may be merged rather than refused.
LIST_VARS = frozenset({EXTERNAL_MODULES_ENV})


class RuntimeEnvConflict(ValueError):
    """The Ray job and the recipe set the same runtime-env entry to different values."""


def job_runtime_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The runtime env of the Ray job this driver runs in; ``{}`` outside a Ray job."""
    environ = os.environ if environ is None else environ
    raw = environ.get(JOB_CONFIG_ENV)
    if not raw:
        return {}
    try:
        return dict(json.loads(raw).get("runtime_env") or {})
    except (ValueError, AttributeError) as exc:
        raise RuntimeEnvConflict(f"{JOB_CONFIG_ENV} is not the JSON Ray writes: {exc}") from None


def merge_module_lists(first: str, second: str) -> str:
    """``first`` then the modules of ``second`` it lacks (comma lists, blanks dropped)."""
    modules = [m.strip() for m in first.split(",") if m.strip()]
    modules += [m for m in (s.strip() for s in second.split(",")) if m and m not in modules]
    return ",".join(modules)


def reconcile_job_runtime_env(
    config: DictConfig,
    environ: MutableMapping[str, str] | None = None,
    verl_env_vars: Mapping[str, str] | None = None,
) -> list[str]:
    """Settle every overlap between the job's runtime env and ours (see the module doc).

    ``verl_env_vars`` are the variables verl adds itself (default: computed with verl's own
    ``get_ppo_ray_runtime_env``). Returns one note per change; raises ``RuntimeEnvConflict``.
    """
    environ = os.environ if environ is None else environ
    job = job_runtime_env(environ)
    if not job:
        return []
    job_vars = {str(k): str(v) for k, v in (job.get("env_vars") or {}).items()}
    notes, problems, override = [], [], False
    ours = _our_env_vars(config)
    for key, value in ours.items():
        if key not in job_vars:
            continue
        merged = merge_module_lists(job_vars[key], value) if key in LIST_VARS else value
        if merged == job_vars[key]:
            _drop(config, f"{RUNTIME_ENV}.env_vars", key)
            notes.append(f"{key}: the Ray job already sets it; not set twice")
        elif key in LIST_VARS:
            OmegaConf.update(config, f"{RUNTIME_ENV}.env_vars.{key}", merged, force_add=True)
            notes.append(f"{key}: the job's modules plus ours: {merged}")
            override = True
        else:
            problems.append(_conflict(key, job_vars[key], value))
    verl_vars = _verl_env_vars(config) if verl_env_vars is None else verl_env_vars
    kept = _our_env_vars(config)  # ours win over verl's defaults in run_ppo's merge
    for key, value in verl_vars.items():
        if key in job_vars and key not in kept:
            if str(value) == job_vars[key]:
                override = True
            else:
                problems.append(_conflict(key, job_vars[key], str(value), who="verl"))
    problems += _field_conflicts(config, job)
    if problems:
        raise RuntimeEnvConflict(
            "the Ray job's runtime env and this run's disagree:\n  "
            + "\n  ".join(problems)
            + "\nSet each variable in one place only: unset it before submitting the job "
            "(or drop it from --runtime-env-json), or give it the same value."
        )
    if override:
        environ[OVERRIDE_ENV] = "1"
        notes.append(f"{OVERRIDE_ENV}=1: the remaining overlaps hold the job's values")
    return notes


def _our_env_vars(config: DictConfig) -> dict[str, str]:
    node = OmegaConf.select(config, f"{RUNTIME_ENV}.env_vars", default=None)
    if node is None:
        return {}
    return {str(k): str(v) for k, v in OmegaConf.to_container(node, resolve=True).items()}


def _verl_env_vars(config: DictConfig) -> dict[str, str]:
    """What ``verl.trainer.main_ppo.run_ppo`` puts in its default runtime env, computed the
    same way (verl reads this process's environment, which holds the job's variables)."""
    from verl.trainer.constants_ppo import get_ppo_ray_runtime_env

    env_vars = dict(get_ppo_ray_runtime_env(config).get("env_vars") or {})
    if OmegaConf.select(config, "transfer_queue.enable", default=False):
        env_vars["TRANSFER_QUEUE_ENABLE"] = "1"
    return {str(k): str(v) for k, v in env_vars.items()}


def _field_conflicts(config: DictConfig, job: Mapping[str, Any]) -> list[str]:
    """Top-level runtime-env fields (pip, working_dir, ...) may not overlap at all; an
    unset (null) field of ours is dropped instead, so the job's value applies."""
    node = OmegaConf.select(config, RUNTIME_ENV, default=None)
    problems = []
    for field in list(node or {}):
        if field == "env_vars" or field not in job:
            continue
        if node[field] is None:
            _drop(config, RUNTIME_ENV, str(field))
        else:
            problems.append(_conflict(str(field), job[field], node[field], kind="field"))
    return problems


def _drop(config: DictConfig, parent: str, key: str) -> None:
    node = OmegaConf.select(config, parent)
    with open_dict(node):
        del node[key]


def _conflict(
    key: str, job_value: Any, our_value: Any, who: str = "the recipe", kind: str = "env var"
) -> str:
    return f"{kind} {key}: the job sets {job_value!r}, {who} sets {our_value!r}"
