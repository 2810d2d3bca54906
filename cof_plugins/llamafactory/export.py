"""``cof export``: merge a CoF LoRA adapter into its base model as a plain HF checkpoint.

LLaMA-Factory's ``export_model`` does the merge. The result is then made self-describing
for every later stage (verl rollouts, vLLM, ``cof eval``): the tokenizer and processor carry
the canonical CoF chat template, and the image processor carries the recipe's pixel budget,
so any consumer that loads the folder with transformers' Auto classes sees the same frames
and the same prompt text as training did.

Settings come from, in order: explicit arguments, the recipe, the adapter folder's
``cof_sft_config.yaml`` (written by ``cof sft``), then defaults (the paper's budget).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from cof_plugins.core.atomic import replace_dir, write_json
from cof_plugins.core.frame import PixelBudget
from cof_plugins.llamafactory.config import CONFIG_FILE, RecipeError, load_recipe, read_config

log = logging.getLogger(__name__)
EXPORT_RECORD = "cof_export.json"


@dataclass(frozen=True)
class ExportPlan:
    """Everything one export needs, resolved."""

    base: str
    adapter: str | None
    template: str
    budget: PixelBudget
    out_dir: str


def _adapter_config(adapter: str | None) -> dict[str, Any]:
    path = Path(adapter) / CONFIG_FILE if adapter else None
    return read_config(path) if path is not None and path.is_file() else {}


def _family_template(base: str) -> str:
    """CoF template for a local base model, read from its config.json ``model_type``."""
    from cof_plugins.llamafactory import TEMPLATE_FOR_FAMILY

    config = Path(base) / "config.json"
    model_type = json.loads(config.read_text())["model_type"] if config.is_file() else None
    if model_type not in TEMPLATE_FOR_FAMILY:
        raise RecipeError(
            f"cannot tell the CoF template of base model {base!r} (model_type "
            f"{model_type!r}); pass --template, one of "
            f"{sorted(TEMPLATE_FOR_FAMILY.values())}"
        )
    return TEMPLATE_FOR_FAMILY[model_type]


def plan_export(
    out_dir: str | Path,
    *,
    adapter: str | Path | None = None,
    base: str | Path | None = None,
    recipe: str | Path | None = None,
    overrides: tuple[str, ...] = (),
    template: str | None = None,
    budget: PixelBudget | None = None,
) -> ExportPlan:
    """Resolve base, adapter, template and pixel budget (see the module docstring)."""
    from_recipe = load_recipe(recipe, overrides) if recipe else {}
    adapter = str(adapter or from_recipe.get("output_dir") or "") or None
    saved = {**_adapter_config(adapter), **from_recipe}
    base = str(base or saved.get("model_name_or_path") or "")
    if not base:
        raise RecipeError(
            "no base model: pass --base MODEL (or --recipe, or an adapter folder "
            f"written by `cof sft`, which holds {CONFIG_FILE})"
        )
    if adapter and not Path(adapter).is_dir():
        raise RecipeError(f"adapter folder {adapter!r} does not exist")
    if budget is None:
        budget = PixelBudget(
            min_pixels=int(saved.get("image_min_pixels", PixelBudget().min_pixels)),
            max_pixels=int(saved.get("image_max_pixels", PixelBudget().max_pixels)),
        )
    template = template or saved.get("template") or _family_template(base)
    return ExportPlan(base, adapter, template, budget, str(Path(out_dir).resolve()))


def export_args(plan: ExportPlan) -> dict[str, Any]:
    """Arguments for LLaMA-Factory's ``export_model`` (merge on CPU)."""
    args: dict[str, Any] = {
        "model_name_or_path": plan.base,
        "template": plan.template,
        "finetuning_type": "lora",
        "export_dir": plan.out_dir,
        "export_device": "cpu",
        "image_min_pixels": plan.budget.min_pixels,
        "image_max_pixels": plan.budget.max_pixels,
    }
    if plan.adapter and (Path(plan.adapter) / "adapter_config.json").is_file():
        args["adapter_name_or_path"] = plan.adapter
    elif plan.adapter:  # a full fine-tune: the folder itself is the model to re-save
        args.update(model_name_or_path=plan.adapter, finetuning_type="full")
    return args


def finalize(plan: ExportPlan, out_dir: str | Path | None = None) -> None:
    """Put the CoF chat template and the pixel budget into the exported processor.

    ``out_dir`` is where the folder will live (the record names it) when ``plan.out_dir``
    is the staging folder it is built in.
    """
    from cof_plugins.hf_checkpoint import stamp_cof

    stamp_cof(plan.out_dir, plan.budget)
    record = {**asdict(plan), "budget": asdict(plan.budget)}
    record["out_dir"] = str(out_dir or plan.out_dir)
    write_json(Path(plan.out_dir) / EXPORT_RECORD, record)


def export(plan: ExportPlan) -> Path:
    """Merge (or re-save) through LLaMA-Factory, then finalize; returns the output folder.

    The merged model is built in a staging folder beside ``plan.out_dir`` and renamed into
    place when complete (``core.atomic``); the caller checks whether it may be replaced.
    """
    from llamafactory.train.tuner import export_model

    from cof_plugins.llamafactory import register

    register()
    with replace_dir(plan.out_dir) as stage:
        staged = replace(plan, out_dir=str(stage))
        export_model(export_args(staged))
        finalize(staged, plan.out_dir)
    log.info("exported %s (+ %s) to %s", plan.base, plan.adapter, plan.out_dir)
    return Path(plan.out_dir)
