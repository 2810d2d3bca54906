"""Turn a verl RL checkpoint into a Hugging Face model that carries the CoF protocol.

verl's own model merger (``verl.model_merger``) gathers the sharded actor weights; this
module calls it through its public config class and then writes the CoF chat template and
the recipe's pixel budget into the processor (``cof_plugins.hf_checkpoint``), so the result
loads with transformers' Auto classes and renders prompts exactly as the rollouts did.
Users of the reference implementation had no such script.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cof_plugins.core.atomic import replace_dir
from cof_plugins.core.frame import PixelBudget

log = logging.getLogger(__name__)


def actor_dir(checkpoint: str | Path) -> Path:
    """Accept a step folder (``global_step_N``), its ``actor`` folder, or a run folder."""
    path = Path(checkpoint)
    if (path / "actor").is_dir():
        path = path / "actor"
    elif not (path / "huggingface").is_dir():
        steps = sorted(path.glob("global_step_*/actor"), key=lambda p: int(p.parent.name[12:]))
        if steps:
            path = steps[-1]
    if not (path / "huggingface").is_dir():
        raise FileNotFoundError(
            f"{checkpoint} is not a verl checkpoint: expected global_step_N/actor/huggingface "
            "inside it (trainer.default_local_dir of the RL run)"
        )
    return path


def export_rl_checkpoint(
    checkpoint: str | Path, out_dir: str | Path, budget: PixelBudget, backend: str = "fsdp"
) -> Path:
    """Merge the actor shards of ``checkpoint`` into ``out_dir`` and stamp the CoF protocol."""
    from verl.model_merger.base_model_merger import ModelMergerConfig

    from cof_plugins.hf_checkpoint import stamp_cof

    local = actor_dir(checkpoint)
    out = Path(out_dir)
    if backend == "fsdp":
        from verl.model_merger.fsdp_model_merger import FSDPModelMerger as Merger
    elif backend == "megatron":
        from verl.model_merger.megatron_model_merger import MegatronModelMerger as Merger
    else:
        raise ValueError(f"backend must be fsdp or megatron, got {backend!r}")
    with replace_dir(out) as stage:  # the model appears complete or not at all
        config = ModelMergerConfig(
            operation="merge",
            backend=backend,
            target_dir=str(stage),
            local_dir=str(local),
            hf_model_config_path=str(local / "huggingface"),
        )
        merger = Merger(config)
        merger.merge_and_save()
        merger.cleanup()
        stamp_cof(stage, budget)
    log.info("merged %s into %s", local, out)
    return out
