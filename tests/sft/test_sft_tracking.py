"""GPU SFT recipes log to TensorBoard (no account) and say how to switch tracker."""

from __future__ import annotations

import pytest

from cof_plugins.llamafactory.recipes import validate_recipe

from .conftest import RECIPES
from .test_sft_train import cof

# Every recipe but the CPU ones (`use_cpu: true`: tiny models, a few steps, no curves).
GPU = sorted(p.name for p in RECIPES.glob("*.yaml") if "\nuse_cpu: true" not in p.read_text())


@pytest.mark.parametrize("name", GPU)
def test_gpu_recipes_report_to_tensorboard(name, tiny_model, tmp_path):
    overrides = [f"model_name_or_path={tiny_model}", f"output_dir={tmp_path}"]
    (_, _, training, _, _), _ = validate_recipe(RECIPES / name, overrides)
    assert training.report_to == ["tensorboard"]
    header = (RECIPES / name).read_text().split("### model")[0]
    assert "report_to=wandb" in header and "report_to=swanlab" in header


def test_the_tensorboard_key_writes_loss_curves(tiny_model, cof_data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    code = cof(
        "sft", str(RECIPES / "tiny_cpu.yaml"), f"model_name_or_path={tiny_model}",
        f"dataset_dir=cof:{cof_data}", f"output_dir={out}", "max_steps=2", "report_to=tensorboard",
    )  # fmt: skip
    assert code == 0
    runs = [p for p in (out / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1
    losses = EventAccumulator(str(runs[0])).Reload().Scalars("train/loss")
    assert [e.step for e in losses] == [1, 2]
