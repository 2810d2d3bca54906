"""verl's RL loop on a machine with no accelerator: a CPU platform and a transformers rollout.

Both plug into registries verl 0.9.1 already has (``PlatformRegistry``,
``RolloutReplicaRegistry``); ``register_cpu()`` adds them, idempotently, and
``cof_plugins.verl.cpu.autoload`` is the module to name in ``VERL_USE_EXTERNAL_MODULES`` so
that every Ray process has them before verl asks for its platform. A recipe selects them by
including ``recipes/rl/overlays/cpu.yaml`` (``trainer.device: cpu``, the ``hf`` rollout);
``cof rl`` then does the rest (``registration.use_cpu_platform``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cof_plugins.verl.cpu.registration import register_cpu

__all__ = ["register_cpu"]


def __getattr__(name: str) -> Any:
    if name != "register_cpu":
        raise AttributeError(f"module 'cof_plugins.verl.cpu' has no attribute {name!r}")
    from cof_plugins.verl.cpu.registration import register_cpu

    return register_cpu
