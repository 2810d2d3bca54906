"""Put the CPU platform and the ``hf`` rollout into verl's registries, once per process.

``use_cpu_platform`` is what ``cof rl`` does for a recipe whose composed config says
``trainer.device: cpu`` (the values that put a recipe there live in
``recipes/rl/overlays/cpu.yaml``, not here): select the platform in this process and make
every Ray process select and register it too.
"""

from __future__ import annotations

import os
import threading

from omegaconf import DictConfig, OmegaConf

from cof_plugins.verl.registration import EXTERNAL_MODULES_ENV

AUTOLOAD_MODULE = "cof_plugins.verl.cpu.autoload"
# ``actor_rollout_ref.rollout.name`` that selects the transformers rollout.
ROLLOUT_NAME = "hf"
ADAPTER_PATH = "cof_plugins.verl.cpu.rollout.HFServerAdapter"

ENV_KEY = "ray_kwargs.ray_init.runtime_env.env_vars"
# Variables of this process that every Ray process needs too (scripted turns, metrics file).
FORWARDED_ENV = ("COF_HF_ROLLOUT_SCRIPT", "VERL_FILE_LOGGER_PATH", "COF_HF_ROLLOUT_THREADS")

_lock = threading.Lock()
_done = False


def _load_replica():
    from cof_plugins.verl.cpu.rollout import HFReplica

    return HFReplica


def register_rollout() -> None:
    """Register ``hf`` with ``RolloutReplicaRegistry`` and its worker-side adapter.

    verl 0.9.1 has a registration call for replicas only; the adapter table
    (``verl.workers.rollout.base._ROLLOUT_REGISTRY``, read by ``get_rollout_class``) is a
    plain dict with no ``register`` function, so one entry is added to it directly.
    """
    from verl.workers.rollout import base
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    key = (ROLLOUT_NAME, "async")
    taken = base._ROLLOUT_REGISTRY.get(key)
    if taken is not None and taken != ADAPTER_PATH:
        raise RuntimeError(f"verl rollout {ROLLOUT_NAME!r} is already registered as {taken}")
    base._ROLLOUT_REGISTRY[key] = ADAPTER_PATH
    RolloutReplicaRegistry.register(ROLLOUT_NAME, _load_replica)


def register_engines() -> None:
    """Let verl's FSDP engines (actor and critic) run where the device is ``cpu``.

    ``EngineRegistry`` keys engines by device; verl registers its FSDP engines for cuda and
    npu only, although nothing in them needs more than torch's FSDP2 under gloo.
    """
    from verl.workers.engine.base import EngineRegistry
    from verl.workers.engine.fsdp.transformer_impl import (
        FSDPEngineWithLMHead,
        FSDPEngineWithValueHead,
    )

    from cof_plugins.verl.cpu.platform import PLATFORM_NAME

    for model_type, engine in (
        ("language_model", FSDPEngineWithLMHead),
        ("value_model", FSDPEngineWithValueHead),
    ):
        for backend in ("fsdp", "fsdp2"):
            taken = EngineRegistry._engines.get(model_type, {}).get(backend, {})
            if PLATFORM_NAME not in taken:
                EngineRegistry.register(model_type, backend, device=PLATFORM_NAME)(engine)
    _unpin_reference_offload()


def _unpin_reference_offload() -> None:
    """Let the reference model's FSDP2 offload policy run without CUDA.

    verl's FSDP engine gives every forward-only model (the KL reference) a hard-coded
    ``CPUOffloadPolicy(pin_memory=True)``; pinned host memory is a CUDA allocator feature,
    and on a CPU-only host torch refuses it ("Found no NVIDIA driver"). On the CPU device the
    parameters already live in host memory, so the same policy without pinning is exact.
    Only this process's engine module is affected, and only once the CPU platform is chosen.
    """
    from torch.distributed.fsdp import CPUOffloadPolicy
    from verl.workers.engine.fsdp import transformer_impl

    if getattr(transformer_impl.CPUOffloadPolicy, "cof_unpinned", False):
        return

    class UnpinnedCPUOffloadPolicy(CPUOffloadPolicy):
        cof_unpinned = True

        def __init__(self, pin_memory: bool = False):
            super().__init__(pin_memory=False)

    transformer_impl.CPUOffloadPolicy = UnpinnedCPUOffloadPolicy


def register_cpu() -> None:
    """Register the ``cpu`` platform and the ``hf`` rollout (idempotent, thread-safe)."""
    global _done
    with _lock:
        if _done:
            return
        from cof_plugins.verl.cpu.platform import register_platform

        register_platform()
        register_rollout()
        register_engines()
        _done = True


def use_cpu_platform(config: DictConfig) -> None:
    """Select the CPU platform in this process and in every Ray process of ``config``'s run.

    verl resolves its platform once, on first use: this runs before its trainer is imported.
    The Ray processes import ``AUTOLOAD_MODULE`` first (``VERL_USE_EXTERNAL_MODULES``) and get
    ``VERL_PLATFORM`` and ``FORWARDED_ENV`` through the job's runtime environment.
    """
    from cof_plugins.verl.cpu.platform import PLATFORM_ENV, PLATFORM_NAME

    os.environ[PLATFORM_ENV] = PLATFORM_NAME
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    register_cpu()
    key = f"{ENV_KEY}.{EXTERNAL_MODULES_ENV}"
    current = OmegaConf.select(config, key, default=None)
    modules = [m for m in str(current or "").split(",") if m]
    if AUTOLOAD_MODULE not in modules:
        modules.insert(0, AUTOLOAD_MODULE)
    OmegaConf.update(config, key, ",".join(modules), force_add=True)
    OmegaConf.update(config, f"{ENV_KEY}.{PLATFORM_ENV}", PLATFORM_NAME, force_add=True)
    for name in FORWARDED_ENV:
        if name in os.environ:
            OmegaConf.update(config, f"{ENV_KEY}.{name}", os.environ[name], force_add=True)
